"""Running a template's command (reload, restart) with a timeout, its outcome described."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

#: Bytes of the command's output kept for the log.
OUTPUT_TAIL = 2000
#: Seconds a command has to exit after SIGTERM (at its timeout) before SIGKILL.
KILL_GRACE = 2.0


@dataclass(frozen=True)
class Outcome:
    """How a command ended."""

    #: Exit status (128 + signal if killed by one, as a shell reports it); None if it
    #: could not be started.
    status: int | None
    timed_out: bool
    seconds: float
    #: The end of what it printed (stdout and stderr), or why it could not start.
    output: str

    @property
    def ok(self) -> bool:
        """True if it exited 0 in time."""
        return self.status == 0 and not self.timed_out

    def describe(self) -> str:
        """``exit 0 in 0.02s``, ``timed out after 30s (killed)``, ``exit 1 in 0.1s``."""
        if self.status is None:
            return f"could not start: {self.output}"
        if self.timed_out:
            return f"timed out after {self.seconds:.1f}s (killed, status {self.status})"
        return f"exit {self.status} in {self.seconds:.2f}s"


def run(
    command: str, timeout: float, env: dict[str, str] | None = None, capture: bool = True
) -> Outcome:
    """Run ``command`` with ``/bin/sh -c`` in a process group of its own; at ``timeout``
    the group gets SIGTERM, then SIGKILL. Its output is kept (``capture``) in a temporary
    file (a daemon the command leaves behind holding a pipe would otherwise hang the wait),
    or goes to this process's own stdout and stderr."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=out if capture else None,
                stderr=subprocess.STDOUT if capture else None,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        except OSError as exc:
            return Outcome(None, False, 0.0, exc.strerror or str(exc))
        timed_out = False
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            status = _stop(proc)
        seconds = time.monotonic() - started
        out.seek(0, os.SEEK_END)
        out.seek(max(0, out.tell() - OUTPUT_TAIL))
        output = out.read().decode("utf-8", "replace")
    if status < 0:
        status = 128 - status
    return Outcome(status, timed_out, seconds, " ".join(output.split()))


def _stop(proc: subprocess.Popen[bytes]) -> int:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()
