"""A deploy's command run under its supervisor (:mod:`prodstate.statedb.deploy_shim`): its
output passed through and its tail kept; SIGTERM, SIGINT and SIGHUP sent to ``prodstate
deploy`` passed on to the command's process group and waited for, so that the deploy
ends, and its lock goes, only once the command has."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from types import FrameType

import click

from prodstate.statedb import deploy_shim
from prodstate.statedb.deploys import Outcome, OutputTail

#: The supervisor, run by its path (it imports only the standard library).
SHIM = os.path.abspath(deploy_shim.__file__)
#: Seconds the supervisor of a deploy whose process died (SIGKILL, a crash) gives the
#: command after SIGTERM, before SIGKILL: less than the deploy's ZooKeeper session (5 s),
#: whose end releases the service's deploy lock.
ORPHAN_GRACE = 2.0


def run_supervised(command: list[str], tail: OutputTail, grace: float = ORPHAN_GRACE) -> Outcome:
    """Run ``command`` (output on stdout, stderr merged, its tail kept in ``tail``) and
    return how it ended; a command that cannot be found is not started (exit 127)."""
    if shutil.which(command[0]) is None and not os.path.exists(command[0]):
        message = f"cannot run {command[0]}: command not found"
        tail.add(message)
        click.echo(f"prodstate: {message}", err=True)
        return Outcome(deploy_shim.NOT_FOUND)
    received: list[int] = []
    started: list[subprocess.Popen[str]] = []

    def pass_on(sig: int, _frame: FrameType | None) -> None:
        received.append(sig)
        if started:
            with contextlib.suppress(ProcessLookupError):
                started[0].send_signal(sig)

    previous = {sig: signal.signal(sig, pass_on) for sig in deploy_shim.FORWARDED}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", SHIM, str(grace), "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # not in the terminal's group: signals come through here
        )
        started.append(proc)
        for sig in received:  # arrived while it was being started
            proc.send_signal(sig)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            tail.add(line)
        returncode = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return Outcome(returncode, received[0] if received else None)
