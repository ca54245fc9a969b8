"""A worker process of ``zk_sessions.py``: many simulated leaves (``zkleaf.py``) on one event loop.

The parent sends commands on a pipe and gets one answer to each:

* ``("start",)``: every leaf starts at once (connects, registers, reads, chooses);
* ``("cut", address, at)``: the Redis at ``address`` died at ``at`` (its replicas' heartbeat
  stops); ``("source", at)``: the root stopped writing heartbeats at ``at`` (None: it writes
  again); see ``zkleaf.DataPath``;
* ``("progress",)``: how many are connected, registered and have chosen a parent, with
  their sessions' drops and expiries, the loop's worst lag since the last ask and the
  process's CPU seconds so far;
* ``("times",)``: per leaf, when it first connected, registered, chose a parent and
  registered fresh, and when it last connected;
* ``("counts",)``: per leaf, its session's counters (``zkwire.Counts.snapshot``);
* ``("decisions", since)``: per leaf, its decisions from ``since`` on (older ones are
  forgotten);
* ``("parents",)``: per leaf, the address it replicates from ("" before its first choice);
* ``("trace", on)``: start noting every request with its time (``zkwire.Counts.trace``),
  or stop and return, per leaf, what was noted;
* ``("stop",)``: close every session; the worker's CPU seconds and peak RSS.

Times are ``time.monotonic()``, one clock for every process of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import random
import resource
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from zkleaf import DataPath, LeafConfig, SimLeaf

#: Sessions closed at once when stopping (each is one round trip).
CLOSE_BATCH = 500


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process simulates."""

    config: LeafConfig
    leaf_ids: tuple[str, ...]
    seed: int


class Worker:
    """The leaves of one process, and the answers to the parent's commands."""

    def __init__(self, plan: WorkerPlan, conn: Connection) -> None:
        self.conn = conn
        rng = random.Random(plan.seed)
        self.path = DataPath()
        self.leaves = [SimLeaf(i, plan.config, rng, self.path) for i in plan.leaf_ids]
        self.tasks: list[asyncio.Task[None]] = []
        self.lag = 0.0
        self.done: asyncio.Future[None] | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        loop.add_reader(self.conn.fileno(), self._readable)
        monitor = loop.create_task(self._watch_lag())
        self.conn.send("ready")
        try:
            await self.done
        finally:
            monitor.cancel()
            loop.remove_reader(self.conn.fileno())

    async def _watch_lag(self) -> None:
        """The loop's worst lateness: how long a ready callback waited to run."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.lag = max(self.lag, time.monotonic() - before - 0.1)

    def _readable(self) -> None:
        while self.conn.poll():
            try:
                command = self.conn.recv()
            except EOFError:
                self._finish()
                return
            if command[0] == "stop":
                asyncio.get_running_loop().create_task(self._stop())
            else:
                self.conn.send(self.answer(command))

    def answer(self, command: tuple[Any, ...]) -> Any:
        """The reply to every command but ``stop``."""
        kind = command[0]
        if kind == "start":
            loop = asyncio.get_running_loop()
            self.tasks = [loop.create_task(leaf.run()) for leaf in self.leaves]
            return "started"
        if kind == "cut":
            _, address, at = command
            self.path.dead[address] = at
            for leaf in self.leaves:
                if leaf.master == address:
                    leaf.data_path_changed(at)
            return "cut"
        if kind == "source":
            at = command[1]
            self.path.source_down = at
            for leaf in self.leaves:
                leaf.data_path_changed(at if at is not None else time.monotonic())
            return "source"
        if kind == "progress":
            lag, self.lag = self.lag, 0.0
            return {
                "connected": sum(1 for leaf in self.leaves if leaf.session.connected),
                "registered": sum(1 for leaf in self.leaves if leaf.registered_at is not None),
                "chose": sum(1 for leaf in self.leaves if leaf.chose_at is not None),
                "fresh": sum(1 for leaf in self.leaves if leaf.fresh_at is not None),
                "drops": sum(leaf.session.counts.drops for leaf in self.leaves),
                "expired": sum(leaf.session.counts.expired for leaf in self.leaves),
                "failures": sum(leaf.failures for leaf in self.leaves),
                "lag": lag,
                "cpu": time.process_time(),
            }
        if kind == "times":
            return {
                leaf.node_id: (
                    leaf.connected_at,
                    leaf.registered_at,
                    leaf.chose_at,
                    leaf.fresh_at,
                    leaf.reconnected_at,
                )
                for leaf in self.leaves
            }
        if kind == "counts":
            return {leaf.node_id: leaf.session.counts.snapshot() for leaf in self.leaves}
        if kind == "parents":
            return {leaf.node_id: leaf.master for leaf in self.leaves}
        if kind == "trace":
            traces = {}
            for leaf in self.leaves:
                traces[leaf.node_id] = leaf.session.counts.trace or []
                leaf.session.counts.trace = [] if command[1] else None
            return traces
        if kind == "decisions":
            since = command[1]
            found = {}
            for leaf in self.leaves:
                leaf.decisions = [d for d in leaf.decisions if d[0] >= since]
                found[leaf.node_id] = list(leaf.decisions)
            return found
        raise ValueError(f"unknown command {kind!r}")

    async def _stop(self) -> None:
        for start in range(0, len(self.leaves), CLOSE_BATCH):
            batch = self.leaves[start : start + CLOSE_BATCH]
            await asyncio.gather(*(leaf.stop() for leaf in batch), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.conn.send(
            {"cpu_seconds": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}
        )
        self._finish()

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphaned sessions)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_worker(plan: WorkerPlan, conn: Connection) -> None:
    """Worker process entry point."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    asyncio.run(Worker(plan, conn).serve())
