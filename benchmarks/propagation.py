"""Propagation benchmark: a write at the root -> on every leaf, prodstate against plain Redis.

Target (issue 6): the time until a write at the root is on every leaf, p50 and p99, for one root,
10 branches and 200 leaves managed by prodstate, within 1.1x of the same tree of plain Redis wired
by hand with REPLICAOF, measured in the same run.

Both trees run at once: a ``LocalCluster`` (ZooKeeper, a Redis and a ``prodstate agent`` per
node) and a second set of redis-servers wired by hand into the very shape the agents built (each
plain leaf under the counterpart of its prodstate twin's branch, i.e. as rendezvous hashing
spread them). Writes alternate between the trees, so CPU contention from the agents falls on
both alike. Every leaf of both trees publishes keyspace notifications; one thread holds a
PSUBSCRIBE connection to each leaf and, on an epoll loop, timestamps (``time.monotonic``) the
moment each leaf's notification for the write arrives. Run ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shlex
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import (
    RespReader,
    Workdir,
    check_output_paths,
    cpu_seconds,
    log,
    machine_line,
    ms,
    percentile,
    ratio_interval,
    resp_command,
    table,
    terminate_as_interrupt,
    tick_time_for,
)

from prodstate.testing.cluster import LocalCluster
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until

TARGET = 1.1  # prodstate's p50 and p99 at most this times plain Redis's
PATTERN = "__keyspace@0__:prop:*"  # the written keys' notifications, nothing else
#: What the agent sets on its Redis (prodstate.agent.config.AgentConfig.redis_settings), so
#: the plain tree replicates with the same settings; keyspace events for string commands on
#: both.
REPLICATION = {
    "repl-backlog-size": "64mb",
    "repl-backlog-ttl": "0",
    "repl-diskless-sync": "yes",
}
NOTIFY = {"notify-keyspace-events": "K$"}


@dataclass
class Tree:
    """One tree as the benchmark sees it: where to write, and the leaves to watch."""

    name: str
    root: str  # address
    leaves: dict[str, str]  # leaf name -> address
    all_leaves: list[float] = field(default_factory=list)  # per write: last leaf's arrival
    median_leaf: list[float] = field(default_factory=list)  # per write: median leaf's arrival
    timeouts: int = 0


class PlainTree:
    """A root, branches and leaves of plain redis-server, replication wired with REPLICAOF."""

    def __init__(self, workdir: Path, branches: int, parent_of: dict[str, int]) -> None:
        """``parent_of`` maps each leaf name to the index of its branch (0-based)."""
        config = {**REPLICATION, **NOTIFY}
        self.root = RedisServer(workdir, name="plain-root", config=config)
        self.branches = [
            RedisServer(workdir, name=f"plain-branch{i + 1}", config=config)
            for i in range(branches)
        ]
        self.leaves = {
            leaf: RedisServer(workdir, name=f"plain-{leaf}", config=config) for leaf in parent_of
        }
        self.parent_of = parent_of

    def servers(self) -> list[RedisServer]:
        return [self.root, *self.branches, *self.leaves.values()]

    def start(self) -> PlainTree:
        """Start every server, wire the tree and wait until every link is up."""
        for server in self.servers():
            server.start(wait=False)
        for server in self.servers():
            server.wait_ready()
        # Branches first: a branch that completes its own sync later drops its replicas.
        for branch in self.branches:
            self._replicaof(branch, self.root)
        self._wait_linked(self.branches)
        for leaf, index in self.parent_of.items():
            self._replicaof(self.leaves[leaf], self.branches[index])
        self._wait_linked(list(self.leaves.values()))
        return self

    @staticmethod
    def _wait_linked(replicas: list[RedisServer]) -> None:
        for server in replicas:
            wait_until(server.in_sync, timeout=60, what=f"{server.name} linked")

    @staticmethod
    def _replicaof(replica: RedisServer, master: RedisServer) -> None:
        with replica.client() as conn:
            conn.replicaof(master.host, master.port)

    def stop(self) -> None:
        for server in self.servers():
            server.stop()


class Observer:
    """PSUBSCRIBE connections to every leaf of both trees, served by one epoll loop."""

    def __init__(self, trees: list[Tree]) -> None:
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        for tree in trees:
            for leaf, address in tree.leaves.items():
                sock = open_socket(address)
                self.sockets.append(sock)
                sock.sendall(resp_command("PSUBSCRIBE", PATTERN))
                reader = RespReader()
                wait_until(lambda s=sock, r=reader: r.feed(s.recv(4096)), what="psubscribed")
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, (tree.name, leaf, reader))

    def wait_for(self, tree: str, key: bytes, count: int, timeout: float) -> list[float]:
        """Arrival times (monotonic) of ``key``'s notification on the leaves of ``tree``,
        until ``count`` leaves have it or ``timeout`` passes."""
        channel = b"__keyspace@0__:" + key
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(arrived) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = self.selector.select(left)
            now = time.monotonic()  # the data arrived before select returned
            for selected, _ in ready:
                name, leaf, reader = selected.data
                data = selected.fileobj.recv(65536)
                if not data:
                    raise ConnectionError(f"{name} {leaf} closed its subscription")
                for message in reader.feed(data):
                    if name == tree and message[2] == channel:
                        arrived.setdefault(leaf, now)
        return list(arrived.values())

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()


def mirror(cluster: LocalCluster, masters: dict[str, str], root: str) -> dict[str, int]:
    """Each leaf -> index of its branch among the non-root branches, as the agents placed it."""
    branches = sorted(b for b in cluster.names("branch") if b != root)
    index = {cluster.redis[b].address: i for i, b in enumerate(branches)}
    placed = {leaf: index.get(masters[leaf]) for leaf in cluster.names("leaf")}
    misplaced = [leaf for leaf, i in placed.items() if i is None]
    if misplaced:
        raise RuntimeError(f"leaves not under a non-root branch: {misplaced[:5]}")
    return {leaf: i for leaf, i in placed.items() if i is not None}


def open_socket(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def measure(
    trees: list[Tree], observer: Observer, writes: int, timeout: float, warmup: int
) -> None:
    """``warmup`` + ``writes`` SETs per tree, alternating trees (and which goes first in
    each round); the first ``warmup`` are not recorded."""
    roots = {tree.name: open_socket(tree.root) for tree in trees}
    try:
        for i in range(-warmup, writes):
            order = trees if i % 2 == 0 else trees[::-1]
            for tree in order:
                key = f"prop:{tree.name}:{i + warmup}".encode()
                t0 = time.monotonic()
                roots[tree.name].sendall(resp_command("SET", key, i))
                arrivals = observer.wait_for(tree.name, key, len(tree.leaves), timeout)
                reply = roots[tree.name].recv(64)  # "+OK\r\n", long since arrived
                if not reply.startswith(b"+OK"):
                    raise RuntimeError(f"SET at the {tree.name} root answered {reply!r}")
                if i < 0:
                    continue
                if len(arrivals) < len(tree.leaves):
                    tree.timeouts += 1
                    continue
                tree.all_leaves.append(max(arrivals) - t0)
                tree.median_leaf.append(statistics.median(arrivals) - t0)
            if i >= 0 and (i + 1) % max(1, writes // 10) == 0:
                log(f"{i + 1}/{writes} writes per tree")
    finally:
        for sock in roots.values():
            sock.close()


def plot(trees: list[Tree], path: Path) -> None:
    """CDF of the all-leaves latency of both trees, as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e .[bench]): no plot written")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for tree in trees:
        xs = sorted(v * 1000 for v in tree.all_leaves)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        (line,) = ax.step(xs, ys, where="post", label=f"{tree.name}: every leaf")
        xs = sorted(v * 1000 for v in tree.median_leaf)
        label = f"{tree.name}: median leaf"
        ax.step(xs, ys, where="post", color=line.get_color(), linestyle=":", label=label)
    leaves = len(trees[0].leaves)
    ax.set(xlabel="ms after the SET was sent (log scale)", ylabel="fraction of writes")
    ax.set_xscale("log")
    ax.set_title(f"write at the root -> on the leaves ({leaves} leaves)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"plot written to {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Root-to-leaf propagation against plain Redis (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--branches", type=int, default=10, help="branches besides the root")
    parser.add_argument("--leaves", type=int, default=200, help="leaves per tree")
    parser.add_argument("--writes", type=int, default=1000, help="writes per tree")
    parser.add_argument("--warmup", type=int, default=20, help="unrecorded writes per tree")
    parser.add_argument("--timeout", type=float, default=5.0, help="per write, seconds")
    parser.add_argument(
        "--session-timeout", type=float, default=10.0, help="agents' ZooKeeper session, seconds"
    )
    parser.add_argument("--agent-tick", type=float, default=0.2, help="agents' --tick, seconds")
    parser.add_argument(
        "--agent-batch", type=int, default=25, help="agents started at a time (0: all at once)"
    )
    parser.add_argument(
        "--png", default="propagation.png", help="plot file ('' for none; needs matplotlib)"
    )
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: temp dir")
    parser.add_argument("--json", type=Path, help="also write the raw latencies to this file")
    args = parser.parse_args(argv)
    args.png = Path(args.png) if args.png else None
    check_output_paths(parser, args.png, args.json)
    if args.branches < 1 or args.leaves < 1 or args.writes < 1 or args.warmup < 0:
        parser.error("--branches, --leaves and --writes must be at least 1, --warmup >= 0")
    if args.timeout <= 0 or args.agent_tick <= 0 or args.agent_batch < 0:
        parser.error("--timeout and --agent-tick must be positive, --agent-batch not negative")
    if args.session_timeout < 0.4:
        parser.error("--session-timeout must be at least 0.4")
    return args


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Tree], dict[str, float]]:
    """Start both trees, measure; the trees and the CPU cores each group used meanwhile."""
    log(f"starting prodstate: 1 root, {args.branches} branches, {args.leaves} leaves")
    started = time.monotonic()
    with LocalCluster(
        workdir / "prodstate",
        branches=args.branches + 1,
        leaves=args.leaves,
        session_timeout=args.session_timeout,
        tick_time=tick_time_for(args.session_timeout),
        agent_tick=args.agent_tick,
        agent_jitter=0.5,
        agent_batch=args.agent_batch or None,
        redis_config=NOTIFY,
    ) as cluster:
        report = cluster.wait_for_tree(timeout=300)
        assert report.root is not None
        log(f"prodstate tree formed in {time.monotonic() - started:.0f} s")
        parent_of = mirror(cluster, report.masters, report.root.node_id)
        plain = PlainTree(workdir / "plain", args.branches, parent_of)
        try:
            plain.start()
            log("plain tree wired; subscribing to every leaf")
            trees = [
                Tree(
                    "prodstate",
                    cluster.redis[report.root.node_id].address,
                    {leaf: cluster.redis[leaf].address for leaf in parent_of},
                ),
                Tree("plain", plain.root.address, {n: s.address for n, s in plain.leaves.items()}),
            ]
            observer = Observer(trees)
            groups = {
                "prodstate agents": [a.pid for a in cluster.agents.values()],
                "prodstate Redis": [s.pid for s in cluster.redis.values()],
                "plain Redis": [s.pid for s in plain.servers()],
                "ZooKeeper": [cluster.zookeeper.pid],  # type: ignore[union-attr]
                "this process": [os.getpid()],
            }
            before = {g: sum(cpu_seconds(p) for p in pids) for g, pids in groups.items()}
            wall = time.monotonic()
            try:
                log(f"measuring ({machine_line()})")
                measure(trees, observer, args.writes, args.timeout, args.warmup)
            finally:
                observer.close()
            wall = time.monotonic() - wall
            cores = {
                g: (sum(cpu_seconds(p) for p in pids) - before[g]) / wall
                for g, pids in groups.items()
            }
        finally:
            plain.stop()
        log("stopping the prodstate cluster")
    return trees, cores


def report(
    args: argparse.Namespace, trees: list[Tree], cores: dict[str, float]
) -> tuple[str, bool]:
    """The printed report, and whether prodstate's p50 and p99 met the target."""
    rows = [["tree", "writes", "timeouts", "p50 ms", "p99 ms", "max ms", "median leaf p50 ms"]]
    figures = {}
    for tree in trees:
        p50, p99 = percentile(tree.all_leaves, 50), percentile(tree.all_leaves, 99)
        figures[tree.name] = (p50, p99)
        rows.append(
            [
                tree.name,
                str(len(tree.all_leaves)),
                str(tree.timeouts),
                ms(p50),
                ms(p99),
                ms(max(tree.all_leaves)),
                ms(percentile(tree.median_leaf, 50)),
            ]
        )
    ratio50 = figures["prodstate"][0] / figures["plain"][0]
    ratio99 = figures["prodstate"][1] / figures["plain"][1]
    samples = {t.name: t.all_leaves for t in trees}
    low50, high50 = ratio_interval(samples["prodstate"], samples["plain"], 50)
    low99, high99 = ratio_interval(samples["prodstate"], samples["plain"], 99)
    met = ratio50 <= TARGET and ratio99 <= TARGET and not any(t.timeouts for t in trees)
    cpu_rows = [["CPU during the writes", "cores", "share of the machine"]]
    for group, used in cores.items():
        cpu_rows.append([group, f"{used:.2f}", f"{used / (os.cpu_count() or 1):.0%}"])
    lines = [
        f"prodstate propagation benchmark: 1 root, {args.branches} branches, {args.leaves} leaves"
        f" per tree; agent tick {args.agent_tick:g}s, session {args.session_timeout:g}s",
        f"{machine_line()} (at the end)",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "",
        "write at the root (SET) -> its keyspace notification seen from every leaf"
        " (writes alternate between the trees)",
        table(rows),
        "",
        f"prodstate / plain: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x (target <= {TARGET}x): "
        + ("met" if met else "MISSED"),
        f"90% bootstrap intervals of the ratios: p50 {low50:.2f}-{high50:.2f}x,"
        f" p99 {low99:.2f}-{high99:.2f}x",
        "",
        table(cpu_rows),
    ]
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            try:
                trees, cores = run(args, workdir.path)
            except Exception:
                workdir.failed = True
                raise
    except KeyboardInterrupt:
        log("interrupted: every server stopped")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    if any(not tree.all_leaves for tree in trees):
        log("FAILED: no write reached every leaf")
        return 1
    text, met = report(args, trees, cores)
    print(text)
    if args.png:
        plot(trees, args.png)
    if args.json:
        raw = {t.name: {"all_leaves": t.all_leaves, "median_leaf": t.median_leaf} for t in trees}
        args.json.write_text(json.dumps({"cores": cores, "latencies": raw}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
