"""``prodstate dev``: the local cluster run as a user runs it, then stopped by a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodstate.testing import wait_until

PRODSTATE = [sys.executable, "-m", "prodstate"]
EXPORT = re.compile(r"export PRODSTATE_ZK=(\S+) PRODSTATE_CLUSTER=(\S+)")
TREE = re.compile(r"^root \S+ \(\S+\)  epoch \d+  healthy$", re.MULTILINE)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PRODSTATE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODSTATE_")}
    return {**env, **extra}


def processes_under(path: Path) -> list[str]:
    """Processes (other than this one) whose command line or working folder is under ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if str(path) in cmdline or cwd.startswith(str(path)):
            found.append(f"{entry.name}: {cmdline.strip()} (in {cwd})")
    return found


class DevUp:
    """``prodstate dev up`` in its own session, its output in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.out_path = tmp_path / "dev-up.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [*PRODSTATE, "dev", "up", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env or clean_env(),
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 120) -> re.Match[str]:
        def seen() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"dev up exited with {self.proc.returncode}:\n{self.output()}")
            return pattern.search(self.output())

        return wait_until(seen, timeout=timeout, what=pattern.pattern)

    def wait_for_tree(self) -> None:
        self.wait_for(EXPORT)
        self.wait_for(TREE)

    def stop(self, signum: int, timeout: float = 60) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Last resort: its servers get a parent-death signal."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def dev_up(tmp_path: Path) -> Iterator[list[DevUp]]:
    """Started DevUp runs go in this list; any still running at the end are killed."""
    runs: list[DevUp] = []
    yield runs
    for run in runs:
        run.kill()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PRODSTATE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_up_write_read_then_ctrl_c_leaves_nothing(tmp_path: Path, dev_up: list[DevUp]) -> None:
    workdir = tmp_path / "cluster"
    run = DevUp(tmp_path, "--branches", "2", "--leaves", "2", "--dir", str(workdir))
    dev_up.append(run)
    run.wait_for_tree()
    zk, cluster = run.wait_for(EXPORT).groups()
    leaf = run.wait_for(re.compile(r"get greeting --redis (\S+)")).group(1)
    assert re.search(
        rf"^  leaf1 +leaf +{re.escape(leaf)} +http://127\.0\.0\.1:\d+/metrics$",
        run.output(),
        re.MULTILINE,
    )
    assert processes_under(workdir), "the servers should be running under --dir"

    env = clean_env(PRODSTATE_ZK=zk, PRODSTATE_CLUSTER=cluster)
    written = cli("set", "k", "v", env=env)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == "OK"
    wait_until(
        lambda: cli("get", "k", "--redis", leaf, env=env).stdout.strip() == "v",
        timeout=30,
        what="k on the leaf",
    )
    status = cli("status", env=env)
    assert status.returncode == 0, status.stdout + status.stderr

    assert run.stop(signal.SIGINT) == 0, run.output()
    out = run.output()
    assert "SIGINT: stopping everything" in out
    assert "stopped 4 agents, 4 Redis servers and ZooKeeper" in out
    assert not processes_under(workdir)
    assert (workdir / "zookeeper").is_dir(), "--dir is kept"


def test_sigterm_stops_and_removes_the_temporary_folder(
    tmp_path: Path, dev_up: list[DevUp]
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    run = DevUp(tmp_path, "--branches", "1", "--leaves", "0", env=clean_env(TMPDIR=str(temp)))
    dev_up.append(run)
    run.wait_for_tree()
    assert processes_under(temp)

    assert run.stop(signal.SIGTERM) == 0, run.output()
    out = run.output()
    assert "SIGTERM: stopping everything" in out
    assert "stopped 1 agent, 1 Redis server and ZooKeeper" in out
    assert not processes_under(temp)
    assert list(temp.iterdir()) == []


def test_startup_failure_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = clean_env(TMPDIR=str(temp), PRODSTATE_ZOOKEEPER_JARS=str(tmp_path / "none"))
    result = cli("dev", "up", "--branches", "1", "--leaves", "1", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "could not start the local cluster" in result.stderr
    assert "zookeeper.jar not found" in result.stderr
    assert list(temp.iterdir()) == []


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--branches", "0"], ["--leaves", "-1"], ["--refresh", "0"]):
        result = cli("dev", "up", *args, env=clean_env(TMPDIR=str(tmp_path)))
        assert result.returncode == 2, args
        assert "Invalid value" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_demo_failover_elects_a_new_root(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = subprocess.run(
        [*PRODSTATE, "dev", "demo", "failover", "--branches", "2", "--leaves", "1"],
        env=clean_env(TMPDIR=str(temp)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    old = re.search(r"^root (\S+) \(\S+\) epoch (\d+); wrote demo:before$", result.stdout, re.M)
    new = re.search(r"new root (\S+) \(\S+\) epoch (\d+)$", result.stdout, re.M)
    assert old and new, result.stdout
    assert new.group(1) != old.group(1)
    assert int(new.group(2)) > int(old.group(2))
    assert "first confirmed write (demo:after) at the new root" in result.stdout
    assert "demo:before and demo:after on all 2 surviving nodes" in result.stdout
    assert list(temp.iterdir()) == []
    assert not processes_under(temp)
