"""The supervisor of a deploy's command, as processes (no servers): statuses pass through,
signals reach the command's whole group, and the command ends when the deploy dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from prodstate.statedb.deploy_run import SHIM
from prodstate.testing import wait_until


def _shim(*command: str, grace: float = 1.0, **kw) -> subprocess.Popen[str]:
    argv = [sys.executable, "-I", SHIM, str(grace), "--", *command]
    return subprocess.Popen(argv, text=True, start_new_session=True, **kw)


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ")[1][0] == "Z"


def _pids(path: Path, count: int) -> list[int]:
    wait_until(lambda: len(path.read_text().split()) >= count if path.exists() else False)
    return [int(p) for p in path.read_text().split()]


def test_the_commands_status_passes_through():
    assert _shim(sys.executable, "-c", "raise SystemExit(3)").wait(timeout=30) == 3
    killed = _shim(sys.executable, "-c", "import os; os.kill(os.getpid(), 9)")
    assert killed.wait(timeout=30) == -signal.SIGKILL  # the shim dies of the same signal
    missing = _shim("/no/such/program", stderr=subprocess.PIPE)
    assert missing.wait(timeout=30) == 127
    assert "cannot run /no/such/program" in missing.stderr.read()


def test_a_signal_to_it_reaches_the_commands_children_too(tmp_path: Path):
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $$ $! > {pids}; wait"
    shim = _shim("sh", "-c", script)
    shell, child = _pids(pids, 2)
    shim.send_signal(signal.SIGTERM)
    assert shim.wait(timeout=30) == -signal.SIGTERM
    wait_until(lambda: _gone(shell) and _gone(child), what="the command's whole group to end")


def test_when_the_deploy_dies_the_command_ends_even_if_it_ignores_sigterm(tmp_path: Path):
    pids = tmp_path / "pids"
    command = textwrap.dedent(f"""
        import os, pathlib, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pathlib.Path({str(pids)!r}).write_text(str(os.getpid()))
        time.sleep(60)
    """)
    # The deploy: starts the shim, then dies at once without a word (as SIGKILL leaves it).
    deploy = textwrap.dedent(f"""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-I", {SHIM!r}, "0.5", "--", sys.executable,
                          "-c", {command!r}], start_new_session=True)
        while not os.path.exists({str(pids)!r}):
            time.sleep(0.01)
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", deploy], timeout=30, check=True)
    (pid,) = _pids(pids, 1)
    wait_until(lambda: _gone(pid), timeout=10, what="SIGKILL after the grace")
