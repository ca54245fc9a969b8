"""Re-parenting benchmark: what moving a dead branch's leaves costs on the wire.

Target (issue 6): with a 100 MB dataset, the bytes sent to the leaves of a crashed branch as they
move to other branches are under 1% of what full resyncs would send (the dataset's RDB size times
the leaves moved).

A ``LocalCluster`` (ZooKeeper, a Redis and a ``prodstate agent`` per node, on loopback) forms its
tree; ``--dataset-mb`` of incompressible values is written at the root and reaches every node; the
root's RDB size is measured with ``BGSAVE``. Then the non-root branch with most leaves is crashed
(agent and Redis SIGKILLed together) and, once every orphan replicates from a live branch and a
later write reached it, the replication counters (``INFO``) are compared with their values just
before the kill: bytes the orphans received (``total_net_repl_input_bytes``), bytes their new
parents sent (``total_net_repl_output_bytes``), and the full and partial resyncs served.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchkit import (
    Workdir,
    check_output_paths,
    log,
    machine_line,
    table,
    terminate_as_interrupt,
    tick_time_for,
)

from prodstate.testing.cluster import LocalCluster
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until

TARGET = 0.01  # bytes sent to the orphans / full-resync bytes
MB = 1024 * 1024
BATCH_BYTES = 8 * MB  # values per pipelined batch while loading


@dataclass
class Result:
    """What the move cost, against what full resyncs would have cost."""

    dataset_bytes: int = 0  # values written
    used_memory: int = 0  # the root's used_memory after loading
    rdb_bytes: int = 0  # the root's RDB file: what one full resync sends
    load_seconds: float = 0.0
    root: str = ""
    victim: str = ""
    orphans: list[str] = field(default_factory=list)
    new_parents: dict[str, str] = field(default_factory=dict)  # orphan -> branch
    moved_seconds: float = 0.0  # kill -> every orphan linked to a live branch
    received: dict[str, int] = field(default_factory=dict)  # orphan -> replication bytes in
    parents_sent: dict[str, int] = field(default_factory=dict)  # new parent -> bytes out
    full_syncs: int = 0  # served by any live node after the kill
    partial_syncs: int = 0

    @property
    def full_resync_bytes(self) -> int:
        return self.rdb_bytes * len(self.orphans)

    @property
    def ratio(self) -> float:
        return sum(self.received.values()) / self.full_resync_bytes


def load(root: RedisServer, total: int, value_bytes: int) -> int:
    """Write ``total`` bytes of random values at ``root``; the bytes written."""
    written, i = 0, 0
    with root.client(decode_responses=False, socket_timeout=60) as conn:
        while written < total:
            with conn.pipeline(transaction=False) as pipe:
                batch = 0
                while batch < BATCH_BYTES and written < total:
                    size = min(value_bytes, total - written)
                    pipe.set(f"data:{i}", os.urandom(size))
                    batch, written, i = batch + size, written + size, i + 1
                pipe.execute()
    return written


def rdb_size(server: RedisServer) -> int:
    """Save ``server``'s dataset with BGSAVE and return the RDB file's size."""
    with server.client(socket_timeout=30) as conn:
        conn.bgsave()  # the child is forked before the reply: in progress from here on
        wait_until(
            lambda: not conn.info("persistence")["rdb_bgsave_in_progress"],
            timeout=120,
            what="BGSAVE to finish",
        )
        if conn.info("persistence")["rdb_last_bgsave_status"] != "ok":
            raise RuntimeError("BGSAVE failed")
    return (server.workdir / "dump.rdb").stat().st_size


def counters(server: RedisServer) -> dict[str, int]:
    """The replication counters compared before and after the move."""
    info = server.info()
    return {
        key: int(info[key])
        for key in (
            "total_net_repl_input_bytes",
            "total_net_repl_output_bytes",
            "sync_full",
            "sync_partial_ok",
        )
    }


def linked_to(server: RedisServer, forbidden: str) -> str | None:
    """The master ``server`` replicates from with its link up, unless it is ``forbidden``."""
    info = server.info("replication")
    if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
        return None
    master = f"{info['master_host']}:{info['master_port']}"
    return master if master != forbidden else None


def measure(cluster: LocalCluster, args: argparse.Namespace) -> Result:
    result = Result()
    report = cluster.wait_for_tree(timeout=120)
    assert report.root is not None
    root = result.root = report.root.node_id
    started = time.monotonic()
    log(f"loading {args.dataset_mb} MB at the root ({root})")
    result.dataset_bytes = load(cluster.redis[root], args.dataset_mb * MB, args.value_kb * 1024)
    cluster.confirmed_write("load:done", "1")
    cluster.wait_everywhere("load:done", "1", timeout=120)
    result.load_seconds = time.monotonic() - started
    result.used_memory = cluster.redis[root].info("memory")["used_memory"]
    result.rdb_bytes = rdb_size(cluster.redis[root])
    log(f"loaded in {result.load_seconds:.1f} s; RDB {result.rdb_bytes / MB:.1f} MB")

    report = cluster.wait_for_tree(timeout=60)
    by_address = {cluster.redis[n].address: n for n in cluster.redis}
    children: dict[str, list[str]] = {b: [] for b in cluster.names("branch") if b != root}
    for leaf in cluster.names("leaf"):
        parent = by_address.get(report.masters[leaf])
        if parent in children:
            children[parent].append(leaf)
    victim = result.victim = max(sorted(children), key=lambda b: len(children[b]))
    result.orphans = sorted(children[victim])
    if not result.orphans:
        raise RuntimeError("no non-root branch has a leaf: use more leaves")
    victim_address = cluster.redis[victim].address
    live = [n for n in cluster.redis if n != victim]
    before = {n: counters(cluster.redis[n]) for n in live}

    log(f"crashing {victim} ({len(result.orphans)} leaves)")
    t0 = time.monotonic()
    cluster.agents[victim].signal(signal.SIGKILL)
    cluster.redis[victim].signal(signal.SIGKILL)
    cluster.agents[victim].kill()  # reap both
    cluster.redis[victim].kill()
    for orphan in result.orphans:
        master = wait_until(
            lambda o=orphan: linked_to(cluster.redis[o], victim_address),
            timeout=args.timeout,
            what=f"{orphan} linked to a live branch",
        )
        result.new_parents[orphan] = by_address[master]
    result.moved_seconds = time.monotonic() - t0
    cluster.confirmed_write("moved", "1")
    cluster.wait_everywhere("moved", "1", timeout=args.timeout)
    cluster.wait_for_tree(timeout=args.timeout)

    after = {n: counters(cluster.redis[n]) for n in live}
    delta = {n: {k: after[n][k] - before[n][k] for k in after[n]} for n in live}
    result.received = {o: delta[o]["total_net_repl_input_bytes"] for o in result.orphans}
    result.parents_sent = {
        p: delta[p]["total_net_repl_output_bytes"] for p in sorted(set(result.new_parents.values()))
    }
    result.full_syncs = sum(d["sync_full"] for d in delta.values())
    result.partial_syncs = sum(d["sync_partial_ok"] for d in delta.values())
    return result


def report(args: argparse.Namespace, r: Result) -> tuple[str, bool]:
    """The printed report, and whether the target was met."""
    received = sum(r.received.values())
    met = r.ratio < TARGET and r.full_syncs == 0
    rows = [
        ["", "bytes", "per moved leaf", "of full resyncs"],
        ["full resyncs would send (RDB x moved leaves)", str(r.full_resync_bytes),
         str(r.rdb_bytes), "100%"],
        ["the moved leaves received (repl input bytes)", str(received),
         str(received // len(r.orphans)), f"{r.ratio:.4%}"],
        ["their new parents sent (repl output bytes)", str(sum(r.parents_sent.values())),
         "-", f"{sum(r.parents_sent.values()) / r.full_resync_bytes:.4%}"],
    ]  # fmt: skip
    parents = ", ".join(f"{p} {n}" for p, n in r.parents_sent.items())
    lines = [
        f"prodstate re-parenting benchmark: {args.branches} branches, {args.leaves} leaves, "
        f"dataset {args.dataset_mb} MB in {args.value_kb} KiB values; "
        f"session {args.session_timeout:g}s",
        f"{machine_line()} (at the end)",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "",
        f"dataset: {r.dataset_bytes} bytes of values, root used_memory {r.used_memory}, "
        f"RDB {r.rdb_bytes} bytes (loaded and on every node in {r.load_seconds:.1f} s)",
        f"crashed branch {r.victim} (root {r.root}); {len(r.orphans)} leaves moved in "
        f"{r.moved_seconds:.2f} s: " + ", ".join(f"{o}->{p}" for o, p in r.new_parents.items()),
        "",
        table(rows),
        "",
        f"resyncs served after the kill: full {r.full_syncs}, partial {r.partial_syncs}; "
        f"bytes sent by new parent: {parents}",
        f"target: under {TARGET:.0%} of the full-resync bytes and no full resync: "
        + ("met" if met else "MISSED"),
    ]
    return "\n".join(lines), met


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bytes sent when a crashed branch's leaves move (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset-mb", type=int, default=100, help="dataset written at the root")
    parser.add_argument("--value-kb", type=int, default=100, help="size of each value, KiB")
    parser.add_argument("--branches", type=int, default=3, help="branches, the root included")
    parser.add_argument("--leaves", type=int, default=9, help="leaves")
    parser.add_argument(
        "--session-timeout", type=float, default=2.0, help="agents' ZooKeeper session, seconds"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="for the move, seconds")
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: temp dir")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.dataset_mb < 1 or args.value_kb < 1:
        parser.error("--dataset-mb and --value-kb must be at least 1")
    if args.branches < 3:
        parser.error("--branches must be at least 3 (a root, a branch to kill, one to move to)")
    if args.leaves < 2:
        parser.error("--leaves must be at least 2")
    if args.session_timeout < 0.4 or args.timeout <= 0:
        parser.error("--session-timeout must be at least 0.4 and --timeout positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            log(f"starting a cluster: {args.branches} branches, {args.leaves} leaves")
            try:
                with LocalCluster(
                    workdir.path / "reparenting",
                    branches=args.branches,
                    leaves=args.leaves,
                    session_timeout=args.session_timeout,
                    tick_time=tick_time_for(args.session_timeout),
                ) as cluster:
                    result = measure(cluster, args)
            except Exception:
                workdir.failed = True
                raise
    except KeyboardInterrupt:
        log("interrupted: cluster stopped")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    text, met = report(args, result)
    print(text)
    if args.json:
        figures = {**asdict(result), "full_resync_bytes": result.full_resync_bytes}
        args.json.write_text(json.dumps({**figures, "ratio": result.ratio}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
