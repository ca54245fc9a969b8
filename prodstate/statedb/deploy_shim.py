"""The supervisor of a deploy's command: ``python -I deploy_shim.py GRACE -- COMMAND...``.

Standard library only, and run by its path, so that it starts at once. ``prodstate
deploy`` starts it in a session of its own; it runs COMMAND in a process group of its
own and:

* passes SIGTERM, SIGINT and SIGHUP on to that whole group (a Ctrl-C at the terminal
  reaches ``prodstate deploy``, which passes it here);
* if ``prodstate deploy`` dies, SIGKILL included (the kernel's parent-death signal says
  so), ends the group: SIGTERM, then SIGKILL after GRACE seconds, which is shorter than
  the deploy's ZooKeeper session, so the service's deploy lock never goes while the
  command runs;
* exits as COMMAND did: with its status, or killed by the same signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

#: ``prctl`` option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: What is passed on to the command's group; SIGUSR1 here means "the deploy died".
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
ORPHANED = signal.SIGUSR1
#: Exit statuses of a command that cannot be run, as a shell gives them.
NOT_EXECUTABLE, NOT_FOUND = 126, 127


def main(argv: list[str]) -> int:
    """Run the command; its exit status (see the module's docstring)."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: deploy_shim.py GRACE -- COMMAND...", file=sys.stderr)
        return 2
    grace, command = float(argv[0]), argv[2:]
    parent = os.getppid()
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, ORPHANED)
    group: list[int] = []
    pending: list[int] = []
    orphaned = [os.getppid() != parent]  # the deploy died before the signal was set

    def pass_on(sig: int, _frame: object = None) -> None:
        if group:
            with contextlib.suppress(ProcessLookupError):  # the group is gone already
                os.killpg(group[0], sig)
        else:
            pending.append(sig)

    def on_orphaned(_sig: int, _frame: object) -> None:
        orphaned[0] = True

    for sig in FORWARDED:
        signal.signal(sig, pass_on)
    signal.signal(ORPHANED, on_orphaned)
    try:
        child = subprocess.Popen(command, process_group=0)
    except OSError as exc:
        print(f"prodstate: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return NOT_FOUND if isinstance(exc, FileNotFoundError) else NOT_EXECUTABLE
    group.append(child.pid)
    for sig in pending:
        pass_on(sig)
    ending_at: float | None = None
    while True:
        if orphaned[0] and ending_at is None:
            pass_on(signal.SIGTERM)
            ending_at = time.monotonic() + grace
        if ending_at is not None and time.monotonic() >= ending_at:
            pass_on(signal.SIGKILL)
        try:
            status = child.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            continue
    if orphaned[0]:
        pass_on(signal.SIGKILL)  # what is left of the group goes with the deploy
    if status < 0:
        for sig in (*FORWARDED, ORPHANED):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
