"""A child process the harness owns: start, kill, pause, resume, stop, restart.

Every process runs in its own session (so signals reach it and nothing else)
and, where util-linux's ``setpriv`` is available, with a parent-death signal,
so that even a SIGKILLed test run leaves no server behind. Processes still
running when the interpreter exits are killed by an ``atexit`` hook.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prodstate.testing.wait import wait_until

_lock = threading.Lock()
_live: dict[int, ManagedProcess] = {}
_history: list[ManagedProcess] = []
_SETPRIV = shutil.which("setpriv")


class ProcessError(RuntimeError):
    """A managed process failed to start or become ready."""


class ManagedProcess:
    """One server or agent process with its log file and readiness check."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self.env = env
        self._ready = ready
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        """The running process's pid, or None."""
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process exists (also when paused)."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True) -> ManagedProcess:
        """Start the process and, unless ``wait`` is false, wait until it is ready."""
        if self.running:
            raise ProcessError(f"{self.name} is already running")
        argv = self.argv
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        env = None if self.env is None else {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        self.paused = False
        with _lock:
            _live[self.proc.pid] = self
            _history.append(self)
        if wait:
            self.wait_ready()
        return self

    def is_ready(self) -> bool:
        """True when the process is running and its readiness check passes."""
        if not self.running:
            return False
        return self._ready() if self._ready else True

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ready; raise ProcessError (with the log tail) if it exits or times out."""

        def ready_or_dead() -> bool:
            if not self.running:
                raise ProcessError(
                    f"{self.name} exited with {self.returncode()} before it was ready\n"
                    + self.log_tail()
                )
            return self.is_ready()

        try:
            wait_until(
                ready_or_dead,
                timeout=timeout or self.ready_timeout,
                what=f"{self.name} to be ready",
                ignore=(OSError, ConnectionError),
            )
        except TimeoutError as exc:
            raise ProcessError(f"{exc}\n{self.log_tail()}") from None

    def returncode(self) -> int | None:
        """Exit status once the process has ended (negative: killed by that signal)."""
        return self.proc.poll() if self.proc is not None else None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process's whole session."""
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        self.signal(signal.SIGKILL)
        self._reap(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process freezes, its sockets stay open."""
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after pause()."""
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if the process has not exited within ``timeout``."""
        if not self.running:
            self._reap(timeout=0)
            return
        self.signal(signal.SIGTERM)
        if self.paused:
            self.resume()
        try:
            assert self.proc is not None
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
        self._reap(timeout=10)

    def restart(self, wait: bool = True) -> ManagedProcess:
        """Stop (if running) and start again with the same arguments and data."""
        self.stop()
        return self.start(wait=wait)

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of this process's log, headed by its name."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"----- {self.name} ({self.log_path}) -----\n{tail}\n"

    def _reap(self, timeout: float) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        if self.proc.poll() is not None:
            with _lock:
                _live.pop(self.proc.pid, None)


def live_processes() -> list[ManagedProcess]:
    """Every managed process that is still running."""
    with _lock:
        return [p for p in _live.values() if p.running]


def process_history() -> list[ManagedProcess]:
    """Every managed process started in this interpreter, oldest first."""
    with _lock:
        return list(_history)


def stop_all(timeout: float = 5.0) -> None:
    """Stop every managed process still running (used at exit and by fixtures)."""
    for proc in reversed(live_processes()):
        proc.stop(timeout=timeout)


atexit.register(stop_all)
