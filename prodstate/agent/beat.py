"""The root's heartbeat writer: a thread that writes ``prodstate:time`` every interval
while the last decision was ``Heartbeat`` (the root serving).

The loop's ticks wait on ZooKeeper: with a slow link to it, a full re-read takes seconds,
and a heartbeat written only between ticks would make the whole tree look stale. The
decision still governs the writes: any other decision (a fence, a step-down, a repair)
stops them until the root serves again, and a fenced Redis refuses them anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prodstate.redis.control import RedisControl
from prodstate.redis.link import RedisError

log = logging.getLogger("prodstate.agent.beat")


class HeartbeatWriter:
    """Writes the heartbeat into ``control``'s Redis every ``interval`` while serving, and
    passes the round trip of each write Redis accepted to ``written`` (seconds)."""

    def __init__(
        self,
        control: RedisControl,
        interval: float,
        written: Callable[[float], None] | None = None,
    ) -> None:
        self.control = control
        self.interval = interval
        self._written = written
        self._serving = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._refused_logged = False
        self._allowed = False

    def start(self) -> None:
        """Allow writing: the thread itself starts at the first ``serve(True)``, so an
        agent that never serves as root never runs it."""
        self._allowed = True

    def serve(self, serving: bool) -> None:
        """Write from now on (True), or stop at once (False)."""
        if serving:
            self._serving.set()
            if self._allowed and not self._stop.is_set() and not self._thread.is_alive():
                self._thread.start()
        else:
            self._serving.clear()

    @property
    def serving(self) -> bool:
        return self._serving.is_set()

    def stop(self) -> None:
        self._serving.clear()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.control.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._serving.wait(timeout=self.interval):
                continue
            started = time.monotonic()
            try:
                written = self.control.heartbeat(time.time())
            except (RedisError, OSError) as exc:
                log.debug("heartbeat not written", extra={"error": repr(exc)})
                written = False
            if written and self._written is not None:
                self._written(time.monotonic() - started)
            if not written and not self._refused_logged:
                log.warning("the root's Redis refused or missed a heartbeat write")
            self._refused_logged = not written
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
