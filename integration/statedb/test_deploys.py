"""``prodstate deploy`` and ``prodstate deploys`` against a real cluster: records reach a
leaf, locks and running deploys refuse a deploy, the log is searchable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prodstate.statedb.keys import SERVICES, loads
from prodstate.testing import wait_until


def _deploys(run, *args):
    done = run("deploys", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_deploy_is_recorded_with_its_outcome_and_output(infra, run):
    script = "import sys; print('migrating'); print('<b>done</b>'); sys.exit(0)"
    done = run(
        "deploy",
        "--service",
        "web",
        "--version",
        "20110502",
        "--target",
        "web-0",
        "--target",
        "web-1",
        "--who",
        "ann",
        "--",
        sys.executable,
        "-c",
        script,
    )
    assert done.returncode == 0, done.stderr
    assert "migrating" in done.stdout  # the output passes through
    leaf = infra.redis["leaf1"].client()
    current = wait_until(lambda: loads(leaf.hget(SERVICES, "web")), what="the version on the leaf")
    assert current["version"] == "20110502" and current["targets"] == ["web-0", "web-1"]
    (record,) = _deploys(run, "--service", "web")
    assert record["outcome"] == "succeeded" and record["exit_code"] == 0
    assert record["output"] == "migrating\n<b>done</b>"
    assert record["who"] == "ann" and record["targets"] == ["web-0", "web-1"]


def test_a_failed_deploy_keeps_the_previous_version_and_its_exit_status(infra, run):
    ok = run("deploy", "--service", "api", "--version", "v1", "--", "true")
    assert ok.returncode == 0, ok.stderr
    failed = run(
        "deploy",
        "--service",
        "api",
        "--version",
        "v2",
        "--",
        sys.executable,
        "-c",
        "import sys; print('error: migration missing'); sys.exit(3)",
    )
    assert failed.returncode == 3
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: len(_deploys(run, "--service", "api")) == 2, what="both deploys on leaf")
    assert loads(leaf.hget(SERVICES, "api"))["version"] == "v1"
    newest, oldest = _deploys(run, "--service", "api")
    assert (newest["version"], newest["outcome"], newest["exit_code"]) == ("v2", "failed", 3)
    assert oldest["version"] == "v1"
    assert [d["version"] for d in _deploys(run, "--grep", "MIGRATION MISSING")] == ["v2"]
    assert _deploys(run, "--service", "api", "--version", "v1")[0]["outcome"] == "succeeded"
    assert _deploys(run, "--service", "api", "--since", "2099-01-01") == []
    assert len(_deploys(run, "--service", "api", "--until", "1h")) == 0
    assert len(_deploys(run, "--service", "api", "--since", "1h")) == 2
    missing = run("deploy", "--service", "api", "--version", "v3", "--", "no-such-command-x")
    assert missing.returncode == 127 and "cannot run no-such-command-x" in missing.stderr
    wait_until(lambda: len(_deploys(run, "--service", "api")) == 3, what="the third deploy")
    table = run("deploys", "--service", "api", "--limit", "1")
    assert "failed (127)" in table.stdout and "v3" in table.stdout


def test_a_locked_service_refuses_to_deploy(run):
    assert (
        run("lock", "acquire", "db", "--reason", "migration 42", "--holder", "ann").returncode == 0
    )
    try:
        refused = run("deploy", "--service", "db", "--version", "v2", "--", "true")
        assert refused.returncode == 1
        assert "held by ann" in refused.stderr and "migration 42" in refused.stderr
        assert _deploys(run, "--service", "db") == []  # nothing ran, nothing recorded
    finally:
        assert run("lock", "release", "db", "--holder", "ann").returncode == 0


def test_two_deploys_of_a_service_never_overlap(infra, run, tmp_path):
    started = tmp_path / "started"
    script = (
        f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); "
        f"[time.sleep(0.05) for _ in iter(lambda: pathlib.Path({str(started)!r}).exists(), False)]"
    )
    env = {"PRODSTATE_ZK": infra.zk_hosts, "PRODSTATE_CLUSTER": infra.cluster}
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prodstate",
            "deploy",
            "--service",
            "cache",
            "--version",
            "v1",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(started.exists, timeout=30, what="the first deploy to run")
        second = run("deploy", "--service", "cache", "--version", "v2", "--", "true")
        assert second.returncode == 1
        assert "a deploy of cache is running" in second.stderr
    finally:
        started.unlink()  # lets the first deploy finish
        first.communicate(timeout=30)
    assert first.returncode == 0
    assert run("deploy", "--service", "cache", "--version", "v2", "--", "true").returncode == 0


def test_bad_deploy_input_is_a_message_and_exit_2(run):
    for args, message in [
        (("--service", "a b", "--version", "v"), "service name"),
        (("--service", "ok", "--version", "has space"), "version"),
        (("--service", "ok", "--version", "v", "--target", "x/y"), "target name"),
    ]:
        done = run("deploy", *args, "--", "true")
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    bad_since = run("deploys", "--since", "yesterday")
    assert bad_since.returncode == 2 and "neither a duration" in bad_since.stderr
