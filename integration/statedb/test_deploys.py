"""``prodstate deploy`` and ``prodstate deploys`` against a real cluster: records reach a
leaf, locks and running deploys refuse a deploy, the log is searchable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

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
    assert "failed (exit 127)" in table.stdout and "v3" in table.stdout


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
        (
            ("--service", "ok", "--version", "v", *[f"--target=h{i}" for i in range(33)]),
            "33 targets: at most 32",
        ),
        (("--service", "ok", "--version", "v", "--who", "w" * 129), "at most 128"),
    ]:
        done = run("deploy", *args, "--", "true")
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    bad_since = run("deploys", "--since", "yesterday")
    assert bad_since.returncode == 2 and "neither a duration" in bad_since.stderr
    for since in ("99999999999d", "0001-01-01"):
        far = run("deploys", "--since", since)
        assert far.returncode == 2 and "Traceback" not in far.stderr, far.stderr
    far_errors = run("errors", "--since", "99999999999d")
    assert far_errors.returncode == 2 and "too long" in far_errors.stderr


#: A command that ends with status 0 only if process ``{pid}`` has ended (gone, or a zombie).
ENDED = (
    "import pathlib, sys; stat = pathlib.Path('/proc/{pid}/stat'); "
    "sys.exit(0 if not stat.exists() or stat.read_text().split(') ')[1][0] == 'Z' else 99)"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=str)
def test_a_signalled_deploy_ends_its_command_before_another_deploy_of_it_runs(
    infra, run, tmp_path, sig
):
    """SIGTERM and SIGINT (Ctrl-C: to the terminal's whole foreground group) are passed on
    and waited for, and recorded as aborted; after SIGKILL the command's supervisor ends it
    before the deploy's session, and with it the lock, goes, and the next deploy records
    the dead one as abandoned. Each time the second deploy, waiting for the lock, runs
    only once the first command has ended."""
    service = f"sig-{sig.name.lower()}"
    pidfile = tmp_path / "pid"
    script = (
        f"import os, pathlib, time; pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()));"
        " time.sleep(120)"
    )
    env = {**os.environ, "PRODSTATE_ZK": infra.zk_hosts, "PRODSTATE_CLUSTER": infra.cluster}
    argv = [sys.executable, "-m", "prodstate", "deploy", "--service", service]
    first = subprocess.Popen(
        [*argv, "--version", "v1", "--", sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, as a shell's foreground job
    )
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=30, what="it to run")
        pid = int(pidfile.read_text())
        if sig == signal.SIGINT:
            os.killpg(first.pid, sig)
        else:
            first.send_signal(sig)
        check = ENDED.format(pid=pid)
        second = run(
            "deploy", "--service", service, "--version", "v2", "--wait", "30",
            "--", sys.executable, "-c", check,
        )  # fmt: skip
        assert second.returncode == 0, second.stdout + second.stderr
    finally:
        out, err = first.communicate(timeout=30)
    if sig == signal.SIGKILL:
        assert first.returncode == -signal.SIGKILL
        assert "was abandoned" in second.stderr
        expected = "abandoned"
    else:
        assert first.returncode == 128 + sig, out + err
        assert "Aborted!" not in err and "Traceback" not in err
        expected = f"aborted ({sig.name})"
    wait_until(lambda: len(_deploys(run, "--service", service)) == 2, what="both on the leaf")
    newest, oldest = _deploys(run, "--service", service)
    assert (newest["version"], newest["outcome"]) == ("v2", "succeeded")
    assert oldest["version"] == "v1"
    table = run("deploys", "--service", service)
    assert expected in table.stdout, table.stdout


def test_a_command_killed_by_a_signal_is_recorded_so_and_exits_as_a_shell_says(infra, run):
    killed = run(
        "deploy", "--service", "selfkill", "--version", "v1",
        "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    )  # fmt: skip
    assert killed.returncode == 128 + signal.SIGKILL, killed.stderr
    assert "killed (SIGKILL)" in killed.stderr
    wait_until(lambda: _deploys(run, "--service", "selfkill"), what="the deploy on the leaf")
    (record,) = _deploys(run, "--service", "selfkill")
    assert (record["outcome"], record["exit_code"], record["signal"]) == ("killed", None, 9)


def test_the_holder_of_a_service_lock_deploys_under_it(run):
    assert run("lock", "acquire", "pay", "--reason", "release 7", "--holder", "ann").returncode == 0
    try:
        plain = run(
            "deploy", "--service", "pay", "--version", "7.0.1", "--who", "ann", "--", "true"
        )
        assert plain.returncode == 1 and "--under-lock" in plain.stderr
        other = run(
            "deploy", "--service", "pay", "--version", "7.0.1", "--who", "bob", "--under-lock",
            "--", "true",
        )  # fmt: skip
        assert other.returncode == 1 and "held by ann" in other.stderr
        mine = run(
            "deploy", "--service", "pay", "--version", "7.0.1", "--who", "ann", "--under-lock",
            "--", "true",
        )  # fmt: skip
        assert mine.returncode == 0, mine.stderr
    finally:
        assert run("lock", "release", "pay", "--holder", "ann").returncode == 0
