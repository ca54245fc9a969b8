"""Propagation benchmark: a write at the root -> on every leaf, prodstate against plain Redis.

Target (issue 20): the time until a write at the root is on every leaf, for one root, 10
branches and 200 leaves managed by prodstate, against the same tree of plain Redis wired by
hand with REPLICAOF in the same run: over at least 5 runs of fresh trees, the median of the
runs' p50 ratios within 1.05x and of their p99 ratios within 1.1x.

Each run starts both trees at once: a ``LocalCluster`` (ZooKeeper, a Redis and a ``prodstate
agent`` per node) and a second set of redis-servers wired by hand into the very shape the
agents built (each plain leaf under the counterpart of its prodstate twin's branch, i.e. as
rendezvous hashing spread them). Writes alternate between the trees, so CPU contention from
the agents falls on both alike. Every leaf of both trees publishes keyspace notifications; one
thread holds a PSUBSCRIBE connection to each leaf and, on an epoll loop, timestamps
(``time.monotonic``) the moment each leaf's notification for the write arrives. Between two
writes, never during one, ``proctrace.Sampler`` reads every task's CPU and run-queue wait, so
each write's window says what ran while it was in flight. The figures are made by
``propagation_report``. Run ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import propagation_report as figures
from benchkit import (
    KeyspaceObserver,
    Workdir,
    check_output_paths,
    log,
    machine_line,
    ms,
    open_socket,
    percentile,
    resp_command,
    terminate_as_interrupt,
    tick_time_for,
)
from proctrace import Sampler, Snapshot, Window

from prodstate.agent.config import replication_settings
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until

PATTERN = "__keyspace@0__:prop:*"  # the written keys' notifications, nothing else
#: What the agent sets on its Redis, so the plain tree replicates with the same settings;
#: keyspace events for string commands on both.
REPLICATION = replication_settings()
NOTIFY = {"notify-keyspace-events": "K$"}


@dataclass
class Tree:
    """One tree as the benchmark sees it: where to write, the leaves to watch, the writes."""

    name: str
    root: str  # address
    leaves: dict[str, str]  # leaf name -> address
    run: figures.TreeRun = field(default_factory=figures.TreeRun)


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


def mirror(cluster: LocalCluster, masters: dict[str, str], root: str) -> dict[str, int]:
    """Each leaf -> index of its branch among the non-root branches, as the agents placed it."""
    branches = sorted(b for b in cluster.names("branch") if b != root)
    index = {cluster.redis[b].address: i for i, b in enumerate(branches)}
    placed = {leaf: index.get(masters[leaf]) for leaf in cluster.names("leaf")}
    misplaced = [leaf for leaf, i in placed.items() if i is None]
    if misplaced:
        raise RuntimeError(f"leaves not under a non-root branch: {misplaced[:5]}")
    return {leaf: i for leaf, i in placed.items() if i is not None}


def measure(
    trees: list[Tree],
    observer: KeyspaceObserver,
    sampler: Sampler,
    args: argparse.Namespace,
) -> tuple[list[Snapshot], int, list[tuple[figures.Write, int]]]:
    """``--warmup`` + ``--writes`` SETs per tree, alternating trees (and which goes first in
    each round); the first ``--warmup`` are not recorded. With ``--attribution`` a snapshot is
    taken after every write (warm-up included, so the sampler knows its dormant tasks before
    the recorded writes): each write's window is from the snapshot before it to the one after.
    Returns the snapshots, the index of the one before the first recorded write (a full one,
    as is the last, after the last write), and each write with the index of the snapshot after
    it."""
    roots = {tree.name: open_socket(tree.root) for tree in trees}
    snapshots: list[Snapshot] = [sampler.snapshot()]
    start = 0  # the snapshot before the first recorded write
    around: list[tuple[figures.Write, int]] = []  # each write, and the snapshot after it
    try:
        for i in range(-args.warmup, args.writes):
            if i == 0:
                if not args.attribution:
                    snapshots.append(sampler.snapshot(full=True))
                start = len(snapshots) - 1
            order = trees if i % 2 == 0 else trees[::-1]
            for tree in order:
                key = f"prop:{tree.name}:{i + args.warmup}".encode()
                t0 = time.monotonic()
                roots[tree.name].sendall(resp_command("SET", key, i))
                arrivals = observer.wait_for(tree.name, key, len(tree.leaves), args.timeout)
                reply = roots[tree.name].recv(64)  # "+OK\r\n", long since arrived
                if not reply.startswith(b"+OK"):
                    raise RuntimeError(f"SET at the {tree.name} root answered {reply!r}")
                if args.attribution:  # full before the recorded writes, for the whole run
                    snapshots.append(sampler.snapshot(full=i == -1 and tree is order[-1]))
                if i < 0:
                    continue
                if len(arrivals) < len(tree.leaves):
                    tree.run.timeouts += 1
                    continue
                write = figures.Write(max(arrivals) - t0, statistics.median(arrivals) - t0)
                tree.run.writes.append(write)
                if args.attribution:
                    around.append((write, len(snapshots) - 1))
            if i >= 0 and (i + 1) % max(1, args.writes // 10) == 0:
                log(f"{i + 1}/{args.writes} writes per tree")
        snapshots.append(sampler.snapshot(full=True))  # every task, for the whole run
    finally:
        for sock in roots.values():
            sock.close()
    return snapshots, start, around


def attribute(
    sampler: Sampler,
    snapshots: list[Snapshot],
    start: int,
    around: list[tuple[figures.Write, int]],
) -> tuple[Window, list[tuple[float, float, int, int]]]:
    """Each write's window; what ran over all recorded writes, and what each snapshot taken
    for them cost (wall and CPU seconds, times blocked and preempted)."""
    for write, after in around:
        write.window = sampler.window(snapshots[after - 1], snapshots[after])
    taken = snapshots[start:]
    whole = sampler.window(taken[0], taken[-1], cost=sum(s.cost for s in taken[:-1]))
    return whole, [(s.wall, s.cost, s.blocked, s.preempted) for s in taken]


def plot(runs: list[figures.Run], leaves: int, path: Path) -> None:
    """CDF of both trees' latencies over all runs, as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e .[bench]): no plot written")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in (figures.PRODSTATE, figures.PLAIN):
        writes = [w for run in runs for w in run.trees[name].writes]
        ys = [(i + 1) / len(writes) for i in range(len(writes))]
        xs = sorted(w.latency * 1000 for w in writes)
        (line,) = ax.step(xs, ys, where="post", label=f"{name}: every leaf")
        xs = sorted(w.median_leaf * 1000 for w in writes)
        label = f"{name}: median leaf"
        ax.step(xs, ys, where="post", color=line.get_color(), linestyle=":", label=label)
    ax.set(xlabel="ms after the SET was sent (log scale)", ylabel="fraction of writes")
    ax.set_xscale("log")
    ax.set_title(f"write at the root -> on the leaves ({leaves} leaves, {len(runs)} runs)")
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
    parser.add_argument("--runs", type=int, default=5, help="runs, each with fresh trees")
    parser.add_argument("--writes", type=int, default=300, help="writes per tree and run")
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
        "--attribution",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="snapshot every process's CPU between writes (what ran during each write)",
    )
    parser.add_argument(
        "--png", default="propagation.png", help="plot file ('' for none; needs matplotlib)"
    )
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: temp dir")
    parser.add_argument(
        "--json", type=Path, help="also write every latency and window to this file"
    )
    parser.add_argument(
        "--from",
        dest="from_json",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="measure nothing: report the runs of these --json files together",
    )
    args = parser.parse_args(argv)
    args.png = Path(args.png) if args.png else None
    check_output_paths(parser, args.png, args.json)
    missing = [str(path) for path in args.from_json or [] if not path.is_file()]
    if missing:
        parser.error(f"--from: no such file: {', '.join(missing)}")
    if min(args.branches, args.leaves, args.runs, args.writes) < 1 or args.warmup < 0:
        parser.error("--branches, --leaves, --runs and --writes must be at least 1, --warmup >= 0")
    if args.timeout <= 0 or args.agent_tick <= 0 or args.agent_batch < 0:
        parser.error("--timeout and --agent-tick must be positive, --agent-batch not negative")
    if args.session_timeout < 0.4:
        parser.error("--session-timeout must be at least 0.4")
    return args


def run_once(args: argparse.Namespace, workdir: Path) -> figures.Run:
    """Start both trees, measure, stop them: one run."""
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
                    figures.PRODSTATE,
                    cluster.redis[report.root.node_id].address,
                    {leaf: cluster.redis[leaf].address for leaf in parent_of},
                ),
                Tree(
                    figures.PLAIN,
                    plain.root.address,
                    {n: s.address for n, s in plain.leaves.items()},
                ),
            ]
            observer = KeyspaceObserver({t.name: t.leaves for t in trees}, PATTERN)
            members = [
                *((a.pid, figures.AGENTS, f"agent {n}") for n, a in cluster.agents.items()),
                *((s.pid, figures.PRODSTATE_REDIS, f"redis {n}") for n, s in cluster.redis.items()),
                *((s.pid, figures.PLAIN_REDIS, f"redis {s.name}") for s in plain.servers()),
                (cluster.zookeeper.pid, figures.ZOOKEEPER, "ZooKeeper"),  # type: ignore[union-attr]
            ]
            group_of = {pid: group for pid, group, _ in members if pid is not None}
            label_of = {pid: label for pid, _, label in members if pid is not None}
            load = os.getloadavg()[0]
            try:
                with Sampler(group_of, label_of) as sampler:
                    log(f"measuring ({machine_line()})")
                    snapshots, start, around = measure(trees, observer, sampler, args)
            finally:
                observer.close()
        finally:
            plain.stop()
        log("stopping the prodstate cluster")
    whole, costs = attribute(sampler, snapshots, start, around)  # on a quiet machine
    return figures.Run({t.name: t.run for t in trees}, load, whole, costs, len(sampler.tasks))


def report(args: argparse.Namespace, runs: list[figures.Run]) -> tuple[str, bool]:
    """The printed report, and whether the medians of the ratios met their targets."""
    verdict, met = figures.verdict(runs)
    timeouts = sum(t.timeouts for run in runs for t in run.trees.values())
    pooled = {n: [w.latency for r in runs for w in r.trees[n].writes] for n in runs[0].trees}
    median_leaf = {
        n: percentile([w.median_leaf for r in runs for w in r.trees[n].writes], 50)
        for n in runs[0].trees
    }
    lines = [
        f"prodstate propagation benchmark: 1 root, {args.branches} branches, {args.leaves} leaves"
        f" per tree; {len(runs)} runs of fresh trees, {args.writes} writes per tree each;"
        f" agent tick {args.agent_tick:g}s, session {args.session_timeout:g}s",
        f"{machine_line()} (at the end)",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "",
        "write at the root (SET) -> its keyspace notification seen from every leaf"
        " (writes alternate between the trees); ms; load: the 1-minute load average as the"
        " run's writes began (the trees' start-up still in it); runnable: the mean number of"
        " tasks running or waiting to run over the writes",
        figures.runs_table(runs),
        "",
        *verdict,
        *([f"MISSED: {timeouts} writes never reached every leaf"] if timeouts else []),
        "",
        "all runs' writes together, every leaf:",
        figures.cdf_table(pooled),
        "median leaf, p50 ms: " + ", ".join(f"{n} {ms(v, 1)}" for n, v in median_leaf.items()),
        "",
        figures.cpu_table(runs, os.cpu_count() or 1),
        figures.sampler_line(runs),
        *figures.attribution(runs),
    ]
    return "\n".join(lines), met and not timeouts


def write_json(args: argparse.Namespace, runs: list[figures.Run]) -> None:
    """``--json``: the options and every run so far (rewritten after each run)."""
    if args.json:
        options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        data = {"args": options, "runs": [figures.as_json(run) for run in runs]}
        args.json.write_text(json.dumps(data) + "\n")


def measure_runs(args: argparse.Namespace, runs: list[figures.Run]) -> int | None:
    """``--runs`` runs of fresh trees, each added to ``runs`` when done; the exit status if one
    failed (1) or was interrupted (130)."""
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            for number in range(1, args.runs + 1):
                log(f"run {number} of {args.runs}")
                try:
                    run = run_once(args, workdir.path / f"run{number}")
                except Exception:
                    workdir.failed = True
                    raise
                if any(not tree.writes for tree in run.trees.values()):
                    raise RuntimeError("no write reached every leaf")
                runs.append(run)
                write_json(args, runs)
                log(f"run {number}: ratio p50 {run.ratio(50):.2f}x, p99 {run.ratio(99):.2f}x")
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'Ctrl-C'}): every server stopped")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs: list[figures.Run] = []
    if args.from_json:
        for path in args.from_json:
            saved = json.loads(path.read_text())
            runs += [figures.from_json(run) for run in saved["runs"]]
        for key in ("branches", "leaves", "writes", "agent_tick", "session_timeout"):
            setattr(args, key, saved["args"][key])  # the report names the measured trees
        failed = None
    else:
        failed = measure_runs(args, runs)
    if not runs:
        return failed or 1
    text, met = report(args, runs)  # of the runs done, also when a later one failed
    print(text)
    if failed is not None:
        print(f"INCOMPLETE: {len(runs)} of {args.runs} runs done")
    if args.png:
        plot(runs, args.leaves, args.png)
    return failed or (0 if met else 1)


if __name__ == "__main__":
    sys.exit(main())
