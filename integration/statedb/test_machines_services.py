"""``prodstate machine`` and ``prodstate service`` against a real cluster: records written
through the root arrive on a leaf, and the queries read them there."""

from __future__ import annotations

import json
import subprocess
import sys

from prodstate.statedb.keys import MACHINES, SERVICES, instances
from prodstate.statedb.keys import errors as errors_key
from prodstate.testing import wait_until


def _json(done):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_machine_report_reaches_the_leaf_and_lists(infra, run):
    reported = _json(run("machine", "report", "--host", "web-0", "--json"))
    assert reported["cpus"] >= 1 and reported["memory_bytes"] > 0
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.hget(MACHINES, "web-0"), what="the machine on the leaf")
    (listed,) = [m for m in _json(run("machine", "list", "--json")) if m["host"] == "web-0"]
    assert listed["stale"] is False and listed["kernel"] == reported["kernel"]
    shown = run("machine", "show", "web-0")
    assert shown.returncode == 0 and "memory" in shown.stdout and "STALE" not in shown.stdout

    def shown_stale():
        shown = _json(run("machine", "show", "web-0", "--json", "--stale-after", "1"))
        return shown if shown["stale"] else None

    stale = wait_until(
        shown_stale,
        timeout=15,
        what="the report to count as stale",
        interval=0.2,
    )
    assert stale["host"] == "web-0" and stale["stale"] and stale["age"] >= 1
    unknown = run("machine", "show", "nosuch")
    assert unknown.returncode == 1 and "unknown machine nosuch" in unknown.stderr


def test_phone_home_and_queries(infra, run):
    assert (
        run(
            "service", "started", "offline-tasks", "--host", "worker-0", "--version", "20110502"
        ).returncode
        == 0
    )
    assert run("service", "started", "offline-tasks", "--host", "worker-1").returncode == 0
    assert run("service", "started", "web", "--host", "worker-0").returncode == 0
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.hlen(instances("web")) == 1, what="the last record on the leaf")
    assert sorted(_json(run("service", "where", "offline-tasks", "--json"))) == [
        "worker-0",
        "worker-1",
    ]
    assert sorted(_json(run("service", "on", "worker-0", "--json"))) == ["offline-tasks", "web"]

    assert run("service", "stopped", "offline-tasks", "--host", "worker-0").returncode == 0
    wait_until(
        lambda: sorted(_json(run("service", "where", "offline-tasks", "--json"))) == ["worker-1"],
        what="the stop on the leaf",
    )
    every = _json(run("service", "where", "offline-tasks", "--all", "--json"))
    assert every["worker-0"]["state"] == "stopped" and every["worker-0"]["version"] == "20110502"
    listed = _json(run("service", "list", "--json"))
    assert listed["offline-tasks"]["running_on"] == ["worker-1"]
    assert "web" in listed
    table = run("service", "list")
    assert "offline-tasks" in table.stdout and "worker-1" in table.stdout
    bad = run("service", "started", "bad name")
    assert bad.returncode == 2 and "service name" in bad.stderr and "Traceback" not in bad.stderr


def test_discovery_finds_running_processes_and_their_end(infra, run, tmp_path):
    marker = "prodstate-discovery-probe-7f3a"
    patterns = tmp_path / "patterns.toml"
    patterns.write_text(f'[services]\nprobe = "{marker}"\nnothing = "no-such-process-zz9"\n')
    probe = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", marker], stdin=subprocess.PIPE
    )
    try:
        found = run("service", "discover", "--patterns", str(patterns), "--host", "disc-0")
        assert found.returncode == 0, found.stderr
        assert found.stdout.splitlines() == ["running: probe"]
        on_leaf = wait_until(
            lambda: _json(run("service", "on", "disc-0", "--json")), what="the probe on the leaf"
        )
        assert on_leaf["probe"]["source"] == "discovery"
        again = run("service", "discover", "--patterns", str(patterns), "--host", "disc-0")
        assert "no change on disc-0" in again.stdout
    finally:
        probe.communicate(b"", timeout=10)
    gone = run("service", "discover", "--patterns", str(patterns), "--host", "disc-0")
    assert gone.stdout.splitlines() == ["stopped: probe"]
    wait_until(
        lambda: _json(run("service", "on", "disc-0", "--json")) == {}, what="the stop on the leaf"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[services]\nx = "("')
    refused = run("service", "discover", "--patterns", str(bad))
    assert refused.returncode == 2 and "bad regular expression" in refused.stderr


def test_a_retired_machine_is_forgotten_everywhere(infra, run):
    assert run("machine", "report", "--host", "old-0").returncode == 0
    assert run("service", "started", "batch", "--host", "old-0").returncode == 0
    assert run("service", "started", "batch", "--host", "new-0").returncode == 0
    wait_until(
        lambda: sorted(_json(run("service", "where", "batch", "--json"))) == ["new-0", "old-0"],
        what="both instances on the leaf",
    )
    forgot = run("machine", "forget", "old-0")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == "forgot old-0 and its 1 service record(s)"
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: not leaf.hexists(MACHINES, "old-0"), what="the forget on the leaf")
    assert _json(run("service", "where", "batch", "--all", "--json")).keys() == {"new-0"}
    assert _json(run("service", "on", "old-0", "--json")) == {}
    assert run("machine", "show", "old-0").returncode == 1
    again = run("machine", "forget", "old-0")
    assert again.returncode == 1 and "unknown machine old-0" in again.stderr
    bad = run("machine", "forget", "../x")
    assert bad.returncode == 2 and "host name" in bad.stderr and "Traceback" not in bad.stderr


def test_a_retired_service_is_forgotten_and_a_typo_creates_none(infra, run):
    phantom = run("service", "stopped", "never-was", "--host", "h-typo")
    assert phantom.returncode == 1, phantom.stderr
    assert "never-was was never recorded on h-typo" in phantom.stderr
    assert "never-was" not in _json(run("service", "list", "--json"))

    assert run("service", "started", "retired", "--host", "r-0").returncode == 0
    assert run("error", "report", "retired", "boom", "--host", "r-0").returncode == 0
    wait_until(
        lambda: list(_json(run("service", "where", "retired", "--json"))) == ["r-0"],
        what="the instance on the leaf",
    )
    running = run("service", "forget", "retired")
    assert running.returncode == 1 and "still runs on r-0" in running.stderr
    assert run("service", "stopped", "retired", "--host", "r-0").returncode == 0
    forgot = run("service", "forget", "retired")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == "forgot retired and its 1 instance record(s)"
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: not leaf.hexists(SERVICES, "retired"), what="the forget on the leaf")
    assert _json(run("service", "where", "retired", "--all", "--json")) == {}
    assert "retired" not in _json(run("service", "on", "r-0", "--all", "--json"))
    assert not leaf.exists(errors_key("retired"))
    again = run("service", "forget", "retired")
    assert again.returncode == 1 and "unknown service retired" in again.stderr
