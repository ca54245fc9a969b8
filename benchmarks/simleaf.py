"""Simulated leaf agents for ``simulation.py``: many real ZooKeeper sessions per process, no Redis.

A SimLeaf does in ZooKeeper what a leaf agent does, with the agent's own code: a
``prodstate.zk.store.ZkStore`` (its session, ``register``, ``read_view`` and the watches it
leaves) and ``prodstate.core.decide.decide`` on a Snapshot whose Redis part is made up (a replica
in sync, following whatever the last ``Replicate`` named). A ``Register`` is carried out and
the view read again, as the agent does; a ``Replicate`` only records the new parent.

A worker process holds many SimLeafs. kazoo's threading handler gives each session three
threads (connection, callbacks, completions); the refreshes themselves run on a small thread
pool, started by one scheduler thread: right away for the first read, after the agent's random
reaction delay (``--jitter``) when a watch fires, and every ``refresh_interval`` otherwise.
As in the agent, a read is a full re-read (``read_view(full=True)``) once every
``refresh_interval`` and otherwise fetches only what a watch reported changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import logging
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import KazooException

from prodstate import __version__
from prodstate.core.actions import Register, Replicate
from prodstate.core.decide import decide
from prodstate.core.model import RedisState, Snapshot, Tier
from prodstate.core.rendezvous import reaction_delay
from prodstate.zk.store import StoreUnavailable, ZkStore

RETRY = 0.2  # seconds before a failed refresh is tried again (the agent's tick)
THREAD_STACK = 256 * 1024  # kazoo's idle threads need little stack; thousands of them exist


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker process simulates."""

    hosts: str
    cluster: str
    leaf_ids: tuple[str, ...]
    session_timeout: float
    jitter: float
    refresh_interval: float
    threads: int
    replid: str


#: An event sent to the parent: (kind, leaf id, monotonic time, parent address, branch ids seen).
Event = tuple[str, str, float, str, tuple[str, ...]]


class SimLeaf:
    """One simulated leaf: a ZooKeeper session and the parent its Redis would follow."""

    def __init__(self, node_id: str, config: WorkerConfig, wake: Callable[[SimLeaf], None]):
        self.node_id = node_id
        self.address = f"{node_id}.sim:6379"
        self.config = config
        self.master = ""
        self.store = ZkStore(
            config.hosts, config.cluster, config.session_timeout, lambda: wake(self)
        )
        self.busy = False
        self.wake_pending = False
        self.read_once = False
        self.last_started = -float("inf")
        self.full_at = -float("inf")
        self.expired = 0
        self.store.client.add_listener(self._count_expiry)

    def _count_expiry(self, state: str) -> None:
        if state == KazooState.LOST:
            self.expired += 1

    def snapshot(self, view: Any) -> Snapshot:
        redis = RedisState(
            reachable=True,
            role="slave",
            replid=self.config.replid,
            offset=1,
            master=self.master,
            link_up=bool(self.master),
        )
        return Snapshot(
            node_id=self.node_id,
            tier=Tier.LEAF,
            address=self.address,
            now=time.monotonic(),
            zk_state=self.store.state,
            suspended_since=self.store.suspended_since,
            session_timeout=self.config.session_timeout,
            session_id=self.store.session_id,
            redis=redis,
            branches=view.branches,
            candidates=view.candidates,
            in_election=False,
            root=view.root,
            root_confirmed_at=None,
            lineage=view.lineage,
            registered=view.registered,
        )

    def refresh(self) -> list[Event]:
        """Read the view and decide, as one agent tick does (re-reading after a Register)."""
        events: list[Event] = []
        for _ in range(3):
            now = time.monotonic()
            full = now - self.full_at >= self.config.refresh_interval
            view = self.store.read_view(self.node_id, Tier.LEAF, full=full)
            if full:
                self.full_at = now
            action = decide(self.snapshot(view)).action
            if isinstance(action, Register):
                self.store.register(replace(action.member, version=__version__))
                events.append(("registered", self.node_id, time.monotonic(), "", ()))
                continue
            if isinstance(action, Replicate):
                self.master = action.address
            seen = tuple(m.node_id for m in view.branches)
            events.append(("chose", self.node_id, time.monotonic(), self.master, seen))
            break
        return events


class LeafWorker:
    """Many SimLeafs in one process, their refreshes scheduled like the agent's."""

    def __init__(self, config: WorkerConfig, emit: Callable[[list[Event]], None]) -> None:
        self.config = config
        self.emit = emit
        self.leaves = [SimLeaf(i, config, self.wake) for i in config.leaf_ids]
        self.pool = ThreadPoolExecutor(config.threads, thread_name_prefix="refresh")
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, float, SimLeaf]] = []
        self.seq = itertools.count()
        self.stopped = False
        self.failures = 0
        self.expired_before_stop = 0
        self.scheduler = threading.Thread(target=self._schedule, name="scheduler", daemon=True)

    def start(self) -> None:
        self.scheduler.start()
        for leaf in self.leaves:
            leaf.store.start()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.expired_before_stop = sum(leaf.expired for leaf in self.leaves)  # closing is LOST too
        with ThreadPoolExecutor(16) as closer:  # closing a session is one round trip each
            list(closer.map(lambda leaf: leaf.store.stop(), self.leaves))

    def wake(self, leaf: SimLeaf) -> None:
        """A watch fired or the session changed state (called on kazoo's threads)."""
        with self.cond:
            if leaf.wake_pending:
                return
            leaf.wake_pending = True
            delay = reaction_delay(self.config.jitter) if leaf.read_once else 0.0
            self._push(time.monotonic() + delay, leaf)

    def _push(self, due: float, leaf: SimLeaf, scheduled_at: float | None = None) -> None:
        at = time.monotonic() if scheduled_at is None else scheduled_at
        heapq.heappush(self.heap, (due, next(self.seq), at, leaf))
        self.cond.notify()

    def _schedule(self) -> None:
        with self.cond:
            while not self.stopped:
                now = time.monotonic()
                while self.heap and self.heap[0][0] <= now:
                    _, _, scheduled_at, leaf = heapq.heappop(self.heap)
                    if leaf.last_started >= scheduled_at:
                        continue  # a refresh started since: it read what this one would
                    if leaf.busy:
                        self._push(now + 0.05, leaf, scheduled_at)
                        continue
                    leaf.busy, leaf.last_started, leaf.wake_pending = True, now, False
                    self.pool.submit(self._refresh, leaf)
                self.cond.wait(self.heap[0][0] - now if self.heap else 1.0)

    def _refresh(self, leaf: SimLeaf) -> None:
        retry = False
        try:
            self.emit(leaf.refresh())
            leaf.read_once = True
        except (StoreUnavailable, KazooException):
            retry = True
        except Exception:  # a bug here must show, and must not kill the leaf's schedule
            traceback.print_exc()
            retry = True
        with self.cond:
            leaf.busy = False
            if retry:
                self.failures += 1
                self._push(time.monotonic() + RETRY, leaf)
            self._push(time.monotonic() + self.config.refresh_interval, leaf)

    def stats(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "threads": threading.active_count(),
            "failures": self.failures,
            "expired": self.expired_before_stop,
            "max_rss_mb": usage.ru_maxrss / 1024,
        }


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphaned sessions)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_worker(config: WorkerConfig, commands: Connection, events: Queue) -> None:
    """Worker process: build the leaves, then obey ``start`` and ``stop`` from the parent."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    threading.stack_size(THREAD_STACK)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # expiries are counted, not logged
    worker = LeafWorker(config, events.put)
    commands.send("ready")
    while True:
        command = commands.recv()
        if command == "start":
            worker.start()
        elif command == "stats":
            commands.send(worker.stats())
        elif command == "stop":
            worker.stop()
            commands.send(worker.stats())
            return
