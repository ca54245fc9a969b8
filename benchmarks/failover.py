"""Failover benchmark: how long writes stop when a root or a branch machine dies.

Targets (from the agent issue):

* root killed -> first acknowledged write on the new root within session timeout + 1 s;
* a dead branch's leaves receive writes again within session timeout + 1 s;
* full resyncs 0.

Every run starts a fresh local cluster (``prodstate.testing.cluster.LocalCluster``: a real
ZooKeeper, one redis-server and one ``prodstate agent`` per node, all on loopback), forms the
tree, kills a node's agent and Redis with SIGKILL (a machine crash) and measures from outside,
polling every ~10 ms. Run ``python benchmarks/failover.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from benchkit import (
    Workdir,
    check_output_paths,
    fmt,
    log,
    median_of,
    table,
    terminate_as_interrupt,
    tick_time_for,
)
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from prodstate.client import Client
from prodstate.core.model import DataError, RootRecord
from prodstate.redis.connect import connect
from prodstate.testing.cluster import LocalCluster
from prodstate.zk.paths import Layout

POLL = 0.01  # seconds between polls; no loop below sleeps longer than this
WAIT_MS = 100  # WAIT timeout for the acknowledged write (returns as soon as a replica acks)
SEED_KEYS = 200  # keys written before the kill and checked on every node afterwards


# --- figures ----------------------------------------------------------------------------------


@dataclass
class RootRun:
    """One root failover: seconds after the kill (t0) at which each thing was first seen."""

    run: int
    old_root: str = ""
    new_root: str = ""
    new_epoch: int = 0
    failover: float | None = None  # first write acknowledged by >= 1 replica on the new root
    root_gone: float | None = None  # root znode first seen missing (the old session expired)
    claimed: float | None = None  # the new root znode's ctime (ZooKeeper's clock)
    replid_published: float | None = None  # the root znode's mtime when the write succeeded
    new_root_seen: float | None = None  # first poll that read a new root
    write_accepted: float | None = None  # first SET the new root accepted
    errors: dict[str, float] = field(default_factory=dict)  # first error of each kind, when
    full_resyncs: dict[str, int] = field(default_factory=dict)
    data_intact: bool | None = None  # seed keys and the failover write on every live node
    error: str = ""  # why the run failed, if it did


@dataclass
class BranchRun:
    """One branch loss: seconds after the kill (t0), per orphaned leaf."""

    run: int
    victim: str = ""
    orphans: list[str] = field(default_factory=list)
    last_orphan: float | None = None  # max over orphans of first post-kill counter value
    median_orphan: float | None = None
    unregistered: float | None = None  # the dead branch's member znode first seen missing
    received: dict[str, float] = field(default_factory=dict)  # orphan -> first new value
    repointed: dict[str, float] = field(default_factory=dict)  # orphan -> ROLE names new master
    root_write_errors: int = 0  # root writes that failed after the kill (should be 0)
    full_resyncs: dict[str, int] = field(default_factory=dict)
    error: str = ""


# --- helpers ----------------------------------------------------------------------------------


def client_for(address: str, timeout: float = 0.3) -> redis.Redis:
    """A redis-py client with short timeouts and no retries, for polling."""
    return connect(address, timeout)


def read_root(zk: KazooClient, path: str) -> tuple[RootRecord | None, Any]:
    """The root record (synced first) and its stat; (None, None) if absent or malformed."""
    zk.sync(path)
    try:
        raw, stat = zk.get(path)
    except NoNodeError:
        return None, None
    try:
        return RootRecord.from_json(raw), stat
    except DataError:
        return None, stat


def crash(cluster: LocalCluster, name: str) -> None:
    """SIGKILL a node's agent and Redis together (a machine crash); reaping comes later."""
    cluster.agents[name].signal(signal.SIGKILL)
    cluster.redis[name].signal(signal.SIGKILL)


def reap(cluster: LocalCluster, name: str) -> None:
    cluster.agents[name].kill()
    cluster.redis[name].kill()


def error_kind(exc: BaseException) -> str:
    """A short name for a Redis error: NOREPLICAS, ReadOnlyError, ConnectionError..."""
    if type(exc) is redis.ResponseError and str(exc).split():
        return str(exc).split()[0]
    return type(exc).__name__


def seed(cluster: LocalCluster, tag: str) -> dict[str, str]:
    """Write SEED_KEYS keys at the root, confirmed, and wait until every node holds them."""
    values = {f"seed:{i}": f"{tag}-{i}" for i in range(SEED_KEYS)}
    with Client(cluster.zk_hosts, cluster.cluster, timeout=30) as client:
        client.write("MSET", *(item for pair in values.items() for item in pair))
    cluster.confirmed_write("seed:done", tag)
    cluster.wait_everywhere("seed:done", tag)
    return values


def holds(cluster: LocalCluster, values: dict[str, str]) -> bool:
    """True if every running Redis holds exactly ``values``."""
    keys = list(values)
    expected = [values[k] for k in keys]
    for server in cluster.redis.values():
        if server.running:
            with server.client(socket_timeout=2) as conn:
                if conn.mget(keys) != expected:
                    return False
    return True


# --- measurement 1: root failover --------------------------------------------------------------


def measure_root_failover(cluster: LocalCluster, run: int, timeout: float) -> RootRun:
    result = RootRun(run)
    report = cluster.wait_for_tree(timeout=90)
    assert report.root is not None
    old = result.old_root = report.root.node_id
    values = seed(cluster, f"root{run}")
    before = cluster.full_syncs()
    zk = cluster.zk()
    path = Layout(cluster.cluster).root
    clients: dict[str, redis.Redis] = {}
    key, value = "failover", f"run{run}"

    wall0, t0 = time.time(), time.monotonic()
    crash(cluster, old)
    try:
        while True:
            now = time.monotonic()
            if now - t0 > timeout:
                raise TimeoutError(f"no acknowledged write on a new root within {timeout:.0f} s")
            try:
                record, stat = read_root(zk, path)
            except KazooException as exc:
                result.errors.setdefault(type(exc).__name__, now - t0)
                time.sleep(POLL)
                continue
            if record is None or record.node_id == old:
                if stat is None and result.root_gone is None:
                    result.root_gone = now - t0
                time.sleep(POLL)
                continue
            if result.new_root_seen is None:
                result.new_root_seen = now - t0
                result.claimed = stat.ctime / 1000 - wall0
            conn = clients.get(record.address)
            if conn is None:
                conn = clients[record.address] = client_for(record.address, 0.5)
            try:
                conn.set(key, value)
                if result.write_accepted is None:
                    result.write_accepted = time.monotonic() - t0
                if conn.wait(1, WAIT_MS) >= 1:
                    result.failover = time.monotonic() - t0
                    result.new_root, result.new_epoch = record.node_id, record.epoch
                    result.replid_published = stat.mtime / 1000 - wall0
                    break
            except redis.RedisError as exc:
                result.errors.setdefault(error_kind(exc), time.monotonic() - t0)
            time.sleep(POLL)
    finally:
        for conn in clients.values():
            conn.close()
        reap(cluster, old)

    cluster.wait_for_tree(timeout=60)
    result.full_resyncs = cluster.new_full_syncs(before)
    try:
        cluster.wait_everywhere(key, value, timeout=20)
        result.data_intact = holds(cluster, values)
    except TimeoutError:
        result.data_intact = False
    return result


# --- measurement 2: branch loss ----------------------------------------------------------------


class CounterWriter(threading.Thread):
    """SET counter i at the root every ~10 ms; ``mark()`` says which values follow an instant."""

    def __init__(self, address: str) -> None:
        super().__init__(name="counter-writer", daemon=True)
        self.address = address
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.i = 0
        self.sent: dict[int, float] = {}  # value -> monotonic time the SET was sent
        self.failed: list[tuple[int, float]] = []

    def run(self) -> None:
        conn = client_for(self.address, 0.5)
        try:
            while not self.stop_event.is_set():
                with self.lock:
                    self.i += 1
                    i, self.sent[i] = self.i, time.monotonic()
                try:
                    conn.set("counter", i)
                except redis.RedisError:
                    self.failed.append((i, time.monotonic()))
                self.stop_event.wait(POLL)
        finally:
            conn.close()

    def mark(self, crash_now: Callable[[], None]) -> tuple[float, int]:
        """Take t0 and the last value sent before it, then call ``crash_now``.

        Every value greater than the returned one was sent after t0.
        """
        with self.lock:
            t0 = time.monotonic()
            last = self.i
        crash_now()
        return t0, last

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


def measure_branch_loss(cluster: LocalCluster, run: int, timeout: float) -> BranchRun:
    result = BranchRun(run)
    report = cluster.wait_for_tree(timeout=90)
    assert report.root is not None
    root = report.root.node_id
    leaves = cluster.names("leaf")
    children = {
        b: sorted(leaf for leaf in leaves if report.masters[leaf] == cluster.redis[b].address)
        for b in cluster.names("branch")
        if b != root
    }
    if not children or not any(children.values()):
        raise RuntimeError("no non-root branch has a leaf: use more leaves")
    victim = result.victim = max(sorted(children), key=lambda b: len(children[b]))
    orphans = result.orphans = children[victim]
    victim_address = cluster.redis[victim].address
    member = Layout(cluster.cluster).member("branch", victim)
    zk = cluster.zk()
    clients = {leaf: client_for(cluster.redis[leaf].address) for leaf in orphans}
    before = cluster.full_syncs()

    writer = CounterWriter(cluster.redis[root].address)
    writer.start()
    try:

        def flowing() -> bool:
            first = min(writer.sent, default=None)
            return first is not None and all(
                int(c.get("counter") or 0) >= first for c in clients.values()
            )

        deadline = time.monotonic() + 20
        while not flowing():
            if time.monotonic() > deadline:
                raise TimeoutError("counter writes did not reach the orphans-to-be before the kill")
            time.sleep(POLL)

        t0, last_before = writer.mark(lambda: crash(cluster, victim))
        while len(result.received) < len(orphans):
            now = time.monotonic()
            if now - t0 > timeout:
                missing = sorted(set(orphans) - set(result.received))
                raise TimeoutError(f"orphans {missing} got no new write within {timeout:.0f} s")
            if result.unregistered is None:
                zk.sync(member)
                if zk.exists(member) is None:
                    result.unregistered = time.monotonic() - t0
            for leaf in orphans:
                if leaf in result.received:
                    continue
                try:
                    with clients[leaf].pipeline(transaction=False) as pipe:
                        counter, role = pipe.get("counter").execute_command("ROLE").execute()
                except redis.RedisError:
                    continue
                seen = time.monotonic() - t0
                if leaf not in result.repointed and role[0] == "slave":
                    master = f"{role[1]}:{role[2]}"
                    if master != victim_address:
                        result.repointed[leaf] = seen
                if counter is not None and int(counter) > last_before:
                    result.received[leaf] = seen
            time.sleep(POLL)
    finally:
        writer.stop()
        for conn in clients.values():
            conn.close()
        reap(cluster, victim)

    times = list(result.received.values())
    result.last_orphan = max(times)
    result.median_orphan = statistics.median(times)
    result.root_write_errors = sum(1 for i, _ in writer.failed if i > last_before)
    cluster.wait_for_tree(timeout=60)
    result.full_resyncs = cluster.new_full_syncs(before)
    return result


# --- running and reporting ----------------------------------------------------------------------


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[RootRun], list[BranchRun], bool]:
    """Every run of the chosen measurements; the last item says whether any run failed."""
    tick = tick_time_for(args.session_timeout)
    roots: list[RootRun] = []
    branches: list[BranchRun] = []
    failed = False
    plan: list[tuple[str, Callable[[LocalCluster, int, float], Any], list[Any], type]] = []
    if args.measure in ("all", "root"):
        plan.append(("root", measure_root_failover, roots, RootRun))
    if args.measure in ("all", "branch"):
        plan.append(("branch", measure_branch_loss, branches, BranchRun))
    for kind, measure, results, empty in plan:
        for run in range(1, args.runs + 1):
            log(f"{kind} run {run}/{args.runs}: starting a cluster")
            try:
                with LocalCluster(
                    workdir / f"{kind}-{run}",
                    branches=args.branches,
                    leaves=args.leaves,
                    session_timeout=args.session_timeout,
                    tick_time=tick,
                ) as cluster:
                    result = measure(cluster, run, args.timeout)
            except Exception as exc:  # one failed run must not lose the others' figures
                failed = True
                result = empty(run, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            results.append(result)
            log(f"{kind} run {run}/{args.runs}: {summary(result)}")
    return roots, branches, failed


def summary(result: RootRun | BranchRun) -> str:
    if result.error:
        return f"FAILED: {result.error}"
    if isinstance(result, RootRun):
        errors = ", ".join(f"{kind} {seconds:.3f}" for kind, seconds in result.errors.items())
        return (
            f"{result.old_root} -> {result.new_root} (epoch {result.new_epoch}): "
            f"{result.failover:.3f} s; root gone {fmt(result.root_gone)}, "
            f"claimed {fmt(result.claimed)}, write accepted {fmt(result.write_accepted)}; "
            f"errors seen {errors or '-'}; full resyncs {sum(result.full_resyncs.values())}; "
            f"data intact {result.data_intact}"
        )
    return (
        f"{result.victim} lost, {len(result.orphans)} orphans: last {result.last_orphan:.3f} s, "
        f"median {result.median_orphan:.3f} s; unregistered {fmt(result.unregistered)}, "
        f"re-pointed {fmt(min(result.repointed.values(), default=None))}.."
        f"{fmt(max(result.repointed.values(), default=None))}; "
        f"root write errors {result.root_write_errors}; "
        f"full resyncs {sum(result.full_resyncs.values())}"
    )


HEADER = ["", "runs", "min", "p50", "max", "target", "verdict", "full resyncs"]


def row(
    name: str, times: list[float | None], target: float, resyncs: int
) -> tuple[list[str], bool]:
    """A table row; the bool says whether the time target was met in every run."""
    done = [t for t in times if t is not None]
    met = bool(times) and len(done) == len(times) and max(done) <= target
    figures = [min(done), statistics.median(done), max(done)] if done else [None] * 3
    failed = len(times) - len(done)
    runs = f"{len(done)}" + (f" (+{failed} failed)" if failed else "")
    cells = [name, runs, *(fmt(f) for f in figures), f"{target:.3f}"]
    return [*cells, "met" if met else "missed", str(resyncs)], met


def report(
    args: argparse.Namespace, roots: list[RootRun], branches: list[BranchRun]
) -> tuple[str, bool]:
    """The printed report and whether every target was met."""
    target = args.session_timeout + 1.0
    tick = tick_time_for(args.session_timeout)
    load = os.getloadavg()[0]
    lines = [
        f"prodstate failover benchmark: branches={args.branches} leaves={args.leaves} "
        f"session_timeout={args.session_timeout:g}s zk_tick={tick}ms runs={args.runs} "
        f"cpus={os.cpu_count()} load1_at_end={load:.2f}",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "seconds after SIGKILL of the node's agent and Redis; target = session timeout + 1 s;"
        " full resyncs must be 0",
    ]
    all_met = True
    if roots:
        resyncs = sum(sum(r.full_resyncs.values()) for r in roots)
        main, met = row("first acked write", [r.failover for r in roots], target, resyncs)
        intact = sum(1 for r in roots if r.data_intact)
        all_met &= met and resyncs == 0 and intact == len(roots)

        def phase(attr: str) -> str:
            return fmt(median_of([getattr(r, attr) for r in roots]))

        lines += [
            "",
            "1. root failover: root killed -> first write acknowledged (WAIT 1) on the new root",
            table([HEADER, main]),
            f"   data written before the kill on every node afterwards: {intact}/{len(roots)} runs",
            "   phases (p50 s after kill): root znode gone "
            f"{phase('root_gone')}, new root claimed (znode ctime) {phase('claimed')}, "
            f"seen by writer {phase('new_root_seen')}, first SET accepted "
            f"{phase('write_accepted')}, acknowledged {phase('failover')}",
        ]
        for r in roots:
            lines.append(f"   run {r.run}: {summary(r)}")
    if branches:
        resyncs = sum(sum(b.full_resyncs.values()) for b in branches)
        last, met = row("last orphan", [b.last_orphan for b in branches], target, resyncs)
        median, _ = row("median orphan", [b.median_orphan for b in branches], target, resyncs)
        errors = sum(b.root_write_errors for b in branches)
        all_met &= met and resyncs == 0
        repointed = median_of([max(b.repointed.values(), default=None) for b in branches])
        received = median_of([b.last_orphan for b in branches])
        lines += [
            "",
            "2. branch loss: non-root branch killed -> each orphaned leaf holds a value the root"
            " wrote after the kill",
            table([HEADER, last, median]),
            f"   phases (p50 s after kill): branch unregistered "
            f"{fmt(median_of([b.unregistered for b in branches]))}, last orphan re-pointed "
            f"{fmt(repointed)}, last orphan received {fmt(received)}"
            f"; root writes failed after the kill: {errors}",
        ]
        for b in branches:
            lines.append(f"   run {b.run}: {summary(b)}")
    lines += ["", f"overall: {'all targets met' if all_met else 'TARGETS MISSED'}"]
    return "\n".join(lines), all_met


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Root failover and branch loss on local clusters (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement")
    parser.add_argument("--branches", type=int, default=3, help="branches per cluster")
    parser.add_argument("--leaves", type=int, default=12, help="leaves per cluster")
    parser.add_argument(
        "--session-timeout", type=float, default=2.0, help="agents' ZooKeeper session, seconds"
    )
    parser.add_argument(
        "--measure", choices=("all", "root", "branch"), default="all", help="what to measure"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="give up on a run after this many seconds"
    )
    parser.add_argument(
        "--dir", type=Path, help="keep the clusters' work dirs (logs) here; default: a temp dir"
    )
    parser.add_argument("--json", type=Path, help="also write the per-run figures to this file")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.branches < 3:
        parser.error("--branches must be at least 3 (a root and two branches that keep leaves)")
    if args.leaves < 1:
        parser.error("--leaves must be at least 1")
    if args.session_timeout < 0.4:
        parser.error("--session-timeout must be at least 0.4")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            roots, branches, failed = run_all(args, workdir.path)
            workdir.failed = failed
    except KeyboardInterrupt:
        log("interrupted: clusters stopped")
        return 130
    text, met = report(args, roots, branches)
    print(text)
    if args.json:
        data = {
            "config": {
                "branches": args.branches,
                "leaves": args.leaves,
                "session_timeout": args.session_timeout,
                "zk_tick_ms": tick_time_for(args.session_timeout),
                "target": args.session_timeout + 1.0,
                "cpus": os.cpu_count(),
                "command": [sys.executable, *sys.argv],
            },
            "root_failover": [asdict(r) for r in roots],
            "branch_loss": [asdict(b) for b in branches],
            "all_targets_met": met,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if met and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
