"""Fault-injection harness: a recording writer, a leaf staleness monitor, post-scenario checks."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Self

import redis

from prodstate.client import Client, WriteFailed, WriteUncertain
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster

CONFIRMED, FAILED, UNKNOWN = "confirmed", "failed", "unknown"


@dataclass(frozen=True)
class Write:
    """One write attempt: its key/value, outcome, when it started/ended, the root epoch used."""

    key: str
    value: str
    status: str
    started: float
    ended: float
    epoch: int | None


class Writer:
    """A thread writing unique keys through the client and logging every outcome."""

    def __init__(self, cluster: LocalCluster, prefix: str = "f", timeout: float = 15.0) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.timeout = timeout
        self.log: list[Write] = []
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="fault-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 10)

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with Client(
                self.cluster.zk_hosts, self.cluster.cluster, timeout=self.timeout
            ) as client:
                i = 0
                while not self._stop.is_set():
                    i += 1
                    key, value = f"{self.prefix}:{i}", f"v{i}"
                    client.confirmed_epoch = None
                    started = time.monotonic()
                    try:
                        client.set(key, value)
                        status = CONFIRMED
                    except WriteUncertain:
                        status = UNKNOWN
                    except WriteFailed:
                        status = FAILED
                    except Exception:  # anything unexpected: may have been applied
                        status = UNKNOWN
                    epoch = client.confirmed_epoch if status == CONFIRMED else None
                    self.log.append(Write(key, value, status, started, time.monotonic(), epoch))
        except BaseException as exc:  # reported by the checks
            self.error = exc

    # --- queries -----------------------------------------------------------------------------

    def mark(self, name: str) -> float:
        """Remember when something happened (e.g. "inject"), on the writer's clock."""
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def confirmed(self) -> list[Write]:
        return [w for w in list(self.log) if w.status == CONFIRMED]

    def count(self, status: str) -> int:
        return sum(1 for w in list(self.log) if w.status == status)

    def wait_for_more(self, n: int = 200, timeout: float = 90.0) -> None:
        """Wait until ``n`` more writes than now are confirmed."""
        floor = self.count(CONFIRMED) + n
        wait_until(
            lambda: self.count(CONFIRMED) >= floor or self.error,
            timeout=timeout,
            what=f"{n} more confirmed writes",
        )
        if self.error is not None:
            raise RuntimeError(f"writer died: {self.error!r}")

    def failover_seconds(self, mark: str = "inject") -> float | None:
        """From ``mark`` to the first confirmed write after it: at a newer root if the root
        changed, else the first confirmed write started after ``mark``."""
        at = self.marks.get(mark)
        if at is None:
            return None
        confirmed = self.confirmed()
        before = [w.epoch for w in confirmed if w.ended < at and w.epoch is not None]
        after = [w for w in confirmed if w.ended >= at]
        newer = [w.ended for w in after if before and w.epoch is not None and w.epoch > before[-1]]
        if newer:
            return min(newer) - at
        started = [w.ended for w in after if w.started >= at]
        return min(started) - at if started else None

    def longest_gap(self, mark: str = "inject") -> float | None:
        """The longest time between two confirmed writes from the last one before ``mark``
        on: how long writers waited across the fault (None before the mark is set)."""
        at = self.marks.get(mark)
        if at is None:
            return None
        ends = sorted(w.ended for w in self.confirmed())
        before = [e for e in ends if e < at]
        after = [e for e in ends if e >= at]
        window = before[-1:] + after
        return max((b - a for a, b in itertools.pairwise(window)), default=None)


class Sampler:
    """Calls ``sample`` every ``interval`` seconds in a thread, between ``with`` and its end;
    ``close`` runs once the thread stops."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.sample()
        finally:
            self.close()

    def sample(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what sampling held (nothing by default)."""


class StaleMonitor(Sampler):
    """Samples leaves: a leaf is stale while it lacks a write confirmed over ``grace`` s ago.

    The stale seconds of a leaf are the summed sample intervals during which it answered
    (a down Redis serves nothing, so it is not stale) without that write.
    """

    def __init__(
        self, cluster: LocalCluster, writer: Writer, grace: float = 1.0, interval: float = 0.1
    ) -> None:
        super().__init__(interval, "stale-monitor")
        self.cluster = cluster
        self.writer = writer
        self.grace = grace
        self.stale: dict[str, float] = {}
        self._conns: dict[str, redis.Redis] = {}
        self._last = time.monotonic()

    def sample(self) -> None:
        now = time.monotonic()
        step, self._last = now - self._last, now
        due = [w for w in self.writer.confirmed() if w.ended <= now - self.grace]
        if not due:
            return
        probe = due[-1]
        for name in self.cluster.names("leaf"):
            server = self.cluster.redis[name]
            if not server.running:
                continue
            conn = self._conns.setdefault(name, server.client(socket_timeout=0.5))
            try:
                value = conn.get(probe.key)
            except redis.RedisError:
                continue  # not answering: unavailable, not stale
            if value != probe.value:
                self.stale[name] = self.stale.get(name, 0.0) + step

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()

    @property
    def worst(self) -> float:
        return max(self.stale.values(), default=0.0)


@dataclass
class FaultResult:
    """What one scenario run did to the data."""

    scenario: str
    confirmed: int
    failed: int
    unknown: int
    lost: int
    full_resyncs: int
    failover_seconds: float | None
    roots_seen: list[int]
    epochs_monotonic: bool
    stale_seconds: float | None = None
    #: From the fault to the cut part of the tree holding a write confirmed after it, and
    #: from the end of the fault to a healthy tree (scenarios that mark them).
    fresh_seconds: float | None = None
    heal_seconds: float | None = None
    #: The longest wait between two confirmed writes across the fault.
    gap_seconds: float | None = None
    lost_by_node: dict[str, int] = field(default_factory=dict)
    diverged: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.epochs_monotonic and not self.diverged

    def line(self) -> str:
        failover = "-" if self.failover_seconds is None else f"{self.failover_seconds:.2f}s"
        stale = "-" if self.stale_seconds is None else f"{self.stale_seconds:.2f}s"
        fresh = "-" if self.fresh_seconds is None else f"{self.fresh_seconds:.2f}s"
        heal = "-" if self.heal_seconds is None else f"{self.heal_seconds:.2f}s"
        gap = "-" if self.gap_seconds is None else f"{self.gap_seconds:.2f}s"
        return (
            f"{self.scenario}: confirmed={self.confirmed} failed={self.failed} "
            f"unknown={self.unknown} lost={self.lost} full_resyncs={self.full_resyncs} "
            f"failover={failover} write_gap={gap} stale={stale} fresh_again={fresh} "
            f"healed={heal} "
            f"roots_seen={self.roots_seen} "
            f"epochs_monotonic={self.epochs_monotonic} diverged={self.diverged or 'none'}"
        )


def _chunks(items: list[Write], size: int = 500) -> Iterator[list[Write]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _converged(cluster: LocalCluster, root: str, last: Write | None) -> bool:
    """Every running node at the root's replication offset, or holding the last confirmed key."""
    running = [n for n, s in cluster.redis.items() if s.running]
    offsets = {n: cluster.redis[n].info("replication")["master_repl_offset"] for n in running}
    if all(o == offsets[root] for o in offsets.values()):
        return True
    if last is None:
        return False
    return all(cluster.redis[n].client().get(last.key) == last.value for n in running)


def _writer_keys(conn: redis.Redis, prefix: str) -> set[str]:
    return set(conn.scan_iter(match=f"{prefix}:*", count=1000))


def _dataset_diff(cluster: LocalCluster, root: str, prefix: str) -> dict[str, str]:
    """Nodes whose dataset differs from the root's (DBSIZE, then the writer's key set)."""
    with cluster.redis[root].client() as conn:
        root_size, root_keys = conn.dbsize(), _writer_keys(conn, prefix)
    diff = {}
    for name, server in cluster.redis.items():
        if name == root or not server.running:
            continue
        with server.client() as conn:
            size, keys = conn.dbsize(), _writer_keys(conn, prefix)
        if size != root_size or keys != root_keys:
            diff[name] = (
                f"dbsize {size} vs {root_size}, "
                f"{len(root_keys - keys)} keys missing, {len(keys - root_keys)} extra"
            )
    return diff


def check_after(
    cluster: LocalCluster,
    writer: Writer,
    log_marks: dict[str, int],
    scenario: str = "",
    heal_timeout: float = 60.0,
    stale_seconds: float | None = None,
) -> FaultResult:
    """Wait for the tree to heal and replication to converge, then count what was lost."""
    report = cluster.wait_for_tree(timeout=heal_timeout)
    assert report.root is not None
    root = report.root.node_id
    confirmed = writer.confirmed()
    last = confirmed[-1] if confirmed else None
    wait_until(
        lambda: _converged(cluster, root, last),
        timeout=heal_timeout,
        what="replication to converge",
        ignore=(redis.RedisError,),
    )
    lost_keys: set[str] = set()
    lost_by_node: dict[str, int] = {}
    for name, server in cluster.redis.items():
        if not server.running:
            continue
        with server.client() as conn:
            missing = [
                w.key
                for chunk in _chunks(confirmed)
                for w, got in zip(chunk, conn.mget([w.key for w in chunk]), strict=True)
                if got != w.value
            ]
        if missing:
            lost_by_node[name] = len(missing)
            lost_keys.update(missing)
    diverged: dict[str, str] = {}
    try:  # the last heartbeat or an unknown write may still be on its way
        wait_until(
            lambda: not _dataset_diff(cluster, root, writer.prefix),
            timeout=15,
            what="datasets equal to the root's",
            ignore=(redis.RedisError,),
        )
    except TimeoutError:
        diverged = _dataset_diff(cluster, root, writer.prefix)
    epochs = [w.epoch for w in confirmed]
    known = [e for e in epochs if e is not None]
    monotonic = len(known) == len(epochs) and all(a <= b for a, b in itertools.pairwise(known))
    return FaultResult(
        scenario=scenario,
        confirmed=len(confirmed),
        failed=writer.count(FAILED),
        unknown=writer.count(UNKNOWN),
        lost=len(lost_keys),
        full_resyncs=sum(cluster.full_syncs_logged(log_marks).values()),
        failover_seconds=writer.failover_seconds(),
        gap_seconds=writer.longest_gap(),
        roots_seen=sorted({*known, report.root.epoch}),
        epochs_monotonic=monotonic,
        stale_seconds=stale_seconds,
        lost_by_node=lost_by_node,
        diverged=diverged,
    )
