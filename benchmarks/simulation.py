"""Beyond one machine, by simulation: ZooKeeper load and convergence as the leaves grow.

For each N (``--leaves``, default 100 250 500 1000 2000) a fresh ZooKeeper (standalone, or a
3-node ensemble with ``--zk-nodes 3``) gets ``--branches`` simulated branches, each with its own
session and member znode, and a root claimed and published with the agent's own ZkStore calls;
then N simulated leaves (``simleaf.py``: the agent's ZkStore and decide code, no Redis) spread
over ``--workers`` processes register, watch and choose their parents. Measured per N:

* registration: seconds from "go" until all N are registered and have chosen a parent;
* steady state: ZooKeeper requests/s over ``--steady`` seconds (pings and periodic re-reads),
  watch count (``mntr``), the ZooKeeper JVM's resident memory;
* branch loss: a non-root branch's session is closed (its znodes go at once, as when a dead
  machine's session expires); seconds until each leaf has re-read the members without it and
  chosen its parent (p50/p99/max), requests ZooKeeper served meanwhile and its max latency;
  every orphan must move to its rendezvous choice, and no other leaf may move.

Then each figure is fitted as c * N^k (least squares in log-log) and predicted at ``--predict``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import queue
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchkit import Workdir, fmt, log, machine_line, percentile, table, terminate_as_interrupt
from failover import tick_time_for
from simleaf import Event, WorkerConfig, run_worker

from prodstate.core.model import Lineage, Member, RootRecord, Tier, ZkState
from prodstate.core.rendezvous import choose_parent
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import ZooKeeperEnsemble, ZooKeeperServer, four_letter_word
from prodstate.zk.paths import Layout
from prodstate.zk.store import ZkStore

CLUSTER = "sim"
REPLID = "5" * 40  # the root's replication id, published as the agent does


@dataclass
class Figures:
    """Everything measured for one N."""

    n: int
    register_s: float = 0.0  # go -> all N registered
    converge_s: float = 0.0  # go -> all N have chosen a parent
    register_requests: int = 0
    steady_rps: float = 0.0
    watches: int = 0
    znodes: int = 0
    rss_mb: float = 0.0
    herd_p50: float = 0.0
    herd_p99: float = 0.0
    herd_max: float = 0.0
    herd_requests: int = 0
    herd_max_latency_ms: int = 0
    orphans: int = 0
    wrong_moves: int = 0  # orphans not on their rendezvous choice + other leaves that moved
    failures: int = 0  # leaf refreshes that failed (ZooKeeper busy or unreachable) and retried
    expired: int = 0  # leaf sessions that expired (the simulator starved of CPU)
    register_zk_cpu: float = 0.0  # ZooKeeper's CPU seconds while the N registered
    steady_zk_cpu: float = 0.0  # its share of one core in the steady state
    herd_zk_cpu: float = 0.0  # its CPU seconds from the branch loss until every leaf chose
    worker_cpu_s: float = 0.0


# --- ZooKeeper --------------------------------------------------------------------------------


def servers(zk: ZooKeeperServer | ZooKeeperEnsemble) -> list[ZooKeeperServer]:
    return list(zk) if isinstance(zk, ZooKeeperEnsemble) else [zk]


def mntr(zk: ZooKeeperServer | ZooKeeperEnsemble) -> dict[str, int]:
    """``mntr`` numbers summed over the servers (``max`` latency: the largest)."""
    total: dict[str, int] = {}
    for server in servers(zk):
        for line in four_letter_word(server.host, server.client_port, "mntr").splitlines():
            key, _, value = line.partition("\t")
            try:
                number = int(float(value))
            except ValueError:
                continue
            total[key] = (
                max(total.get(key, 0), number) if "max" in key else total.get(key, 0) + number
            )
    return total


def reset_stats(zk: ZooKeeperServer | ZooKeeperEnsemble) -> None:
    for server in servers(zk):
        four_letter_word(server.host, server.client_port, "srst")


def cpu_seconds(zk: ZooKeeperServer | ZooKeeperEnsemble) -> float:
    """CPU time (user + system) the ZooKeeper JVM(s) used so far."""
    ticks = 0
    for server in servers(zk):
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(zk: ZooKeeperServer | ZooKeeperEnsemble) -> float:
    """Resident memory of the ZooKeeper JVM(s), MB."""
    total = 0
    for server in servers(zk):
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


# --- the simulated cluster ----------------------------------------------------------------------


def start_branches(hosts: str, count: int, session_timeout: float) -> dict[str, ZkStore]:
    """Register ``count`` branches, each with its own session; branch1 claims the root."""
    stores = {
        f"branch{i}": ZkStore(hosts, CLUSTER, session_timeout, lambda: None)
        for i in range(1, count + 1)
    }
    for store in stores.values():
        store.start()
    for name, store in stores.items():
        wait_until(
            lambda s=store: s.state is ZkState.CONNECTED, timeout=30, what=f"{name} connected"
        )
        store.register(Member(name, Tier.BRANCH, f"{name}.sim:6379"))
    root = stores["branch1"]
    view = root.read_view("branch1", Tier.BRANCH)
    record = RootRecord("branch1", "branch1.sim:6379", 1, run_id="sim")
    if not root.claim_root(record, Lineage(1, "branch1", record.address), view.lineage_version):
        raise RuntimeError("the simulated root could not claim the root znode")
    view = root.read_view("branch1", Tier.BRANCH)
    assert view.root is not None
    published = Lineage(1, "branch1", record.address).with_replid(REPLID)
    if not root.publish_replid(replace(view.root, replid=REPLID), published, view.lineage_version):
        raise RuntimeError("the simulated root could not publish its replication id")
    return stores


class Leaves:
    """The worker processes holding the simulated leaves, and what they reported."""

    def __init__(self, hosts: str, n: int, args: argparse.Namespace) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.events: multiprocessing.Queue[list[Event]] = ctx.Queue()
        ids = [f"leaf{i}" for i in range(1, n + 1)]
        self.pipes = []
        self.processes = []
        for w in range(min(args.workers, n)):
            config = WorkerConfig(
                hosts, CLUSTER, tuple(ids[w :: args.workers]), args.session_timeout,
                args.jitter, args.refresh_interval, args.threads, REPLID,
            )  # fmt: skip
            parent, child = ctx.Pipe()
            process = ctx.Process(target=run_worker, args=(config, child, self.events), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        try:
            for pipe in self.pipes:
                if not pipe.poll(120) or pipe.recv() != "ready":
                    raise RuntimeError("a leaf worker did not start")
        except BaseException:
            for process in self.processes:
                process.kill()
                process.join()
            raise
        self.ids = ids
        self.registered: dict[str, float] = {}
        self.chosen: dict[str, list[tuple[float, str, tuple[str, ...]]]] = {i: [] for i in ids}

    def start(self) -> None:
        for pipe in self.pipes:
            pipe.send("start")

    def drain(self, until: float) -> None:
        """Take the workers' events until the monotonic time ``until``."""
        while (left := until - time.monotonic()) > 0:
            try:
                batch = self.events.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            for kind, leaf, at, parent, seen in batch:
                if kind == "registered":
                    self.registered.setdefault(leaf, at)
                else:
                    self.chosen[leaf].append((at, parent, seen))
            for process in self.processes:
                if not process.is_alive():
                    raise RuntimeError(f"leaf worker {process.pid} died")

    def wait_for(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.drain(time.monotonic() + 0.1)

    def stop(self) -> dict[str, float]:
        """Stop the workers (closing their sessions); their summed stats."""
        totals = {"cpu_seconds": 0.0, "failures": 0.0, "expired": 0.0}
        for pipe in self.pipes:
            try:
                pipe.send("stop")
            except OSError:
                continue
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            try:
                if pipe.poll(60):
                    stats = pipe.recv()
                    for key in totals:
                        totals[key] += stats[key]
            except (OSError, EOFError):
                pass
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        return totals


def measure(n: int, args: argparse.Namespace, workdir: Path) -> Figures:
    figures = Figures(n)
    tick = tick_time_for(args.session_timeout)
    zk: ZooKeeperServer | ZooKeeperEnsemble
    if args.zk_nodes == 1:
        zk = ZooKeeperServer(workdir, tick_time=tick, heap_mb=args.zk_heap)
    else:
        zk = ZooKeeperEnsemble(workdir, size=args.zk_nodes, tick_time=tick)
    leaves: Leaves | None = None
    branches: dict[str, ZkStore] = {}
    try:
        zk.start()
        branches = start_branches(zk.hosts, args.branches, args.session_timeout)
        leaves = Leaves(zk.hosts, n, args)
        reset_stats(zk)
        cpu = cpu_seconds(zk)
        go = time.monotonic()
        leaves.start()
        leaves.wait_for(
            lambda: all(leaves.chosen[i] for i in leaves.ids), args.timeout, "all leaves"
        )
        figures.register_s = max(leaves.registered.values()) - go
        figures.converge_s = max(c[0][0] for c in leaves.chosen.values()) - go
        figures.register_requests = mntr(zk)["zk_packets_received"]
        figures.register_zk_cpu = cpu_seconds(zk) - cpu
        members = branches["branch1"].client.get_children(Layout(CLUSTER).members("leaf"))
        if len(members) != n:
            raise RuntimeError(f"{len(members)} leaf member znodes, expected {n}")

        reset_stats(zk)
        cpu, started = cpu_seconds(zk), time.monotonic()
        leaves.drain(started + args.steady)
        stats = mntr(zk)
        figures.steady_rps = stats["zk_packets_received"] / (time.monotonic() - started)
        figures.steady_zk_cpu = (cpu_seconds(zk) - cpu) / (time.monotonic() - started)
        figures.watches, figures.znodes = stats["zk_watch_count"], stats["zk_znode_count"]
        before = {i: c[-1][1] for i, c in leaves.chosen.items()}
        live = [b for b in branches if b != "branch1"]
        victim = max(live, key=lambda b: sum(1 for p in before.values() if p.startswith(f"{b}.")))
        remaining = [b for b in live if b != victim]

        reset_stats(zk)
        cpu, t0 = cpu_seconds(zk), time.monotonic()
        branches.pop(victim).stop()

        def seen_gone(leaf: str) -> float | None:
            return next((t for t, _, s in leaves.chosen[leaf] if t > t0 and victim not in s), None)

        leaves.wait_for(lambda: all(seen_gone(i) for i in leaves.ids), args.timeout, "the herd")
        herd = sorted(seen_gone(i) - t0 for i in leaves.ids)
        figures.herd_p50, figures.herd_p99, figures.herd_max = (
            statistics.median(herd), percentile(herd, 99), herd[-1],
        )  # fmt: skip
        figures.herd_zk_cpu = cpu_seconds(zk) - cpu
        stats = mntr(zk)
        figures.herd_requests = stats["zk_packets_received"]
        figures.herd_max_latency_ms = stats["zk_max_latency"]
        after = {
            i: next(p for t, p, s in leaves.chosen[i] if t > t0 and victim not in s)
            for i in leaves.ids
        }
        orphans = [i for i in leaves.ids if before[i].startswith(f"{victim}.")]
        figures.orphans = len(orphans)
        figures.wrong_moves = sum(
            1 for i in orphans if after[i] != f"{choose_parent(i, remaining)}.sim:6379"
        ) + sum(1 for i in leaves.ids if i not in orphans and after[i] != before[i])
        figures.rss_mb = rss_mb(zk)
    finally:
        if leaves is not None:
            totals = leaves.stop()
            figures.failures = int(totals["failures"])
            figures.expired = int(totals["expired"])
            figures.worker_cpu_s = totals["cpu_seconds"]
        for store in branches.values():
            store.stop()
        zk.stop()
    return figures


# --- fitting and reporting ----------------------------------------------------------------------

FITTED = {  # attribute: (label, unit)
    "converge_s": ("all registered and chose", "s"),
    "register_zk_cpu": ("registration: ZooKeeper CPU", "s"),
    "steady_rps": ("steady requests/s", "/s"),
    "watches": ("watches", ""),
    "rss_mb": ("ZooKeeper RSS", "MB"),
    "steady_zk_cpu": ("steady: ZooKeeper cores", ""),
    "herd_requests": ("branch loss: requests", ""),
    "herd_zk_cpu": ("branch loss: ZooKeeper CPU", "s"),
    "herd_p99": ("branch loss: p99 leaf", "s"),
    "herd_max": ("branch loss: last leaf", "s"),
}


def power_fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """(c, k) of y = c * x^k by least squares on logs; None with fewer than 2 usable points."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(points) < 2 or len({p[0] for p in points}) < 2:
        return None
    slope, intercept = statistics.linear_regression([p[0] for p in points], [p[1] for p in points])
    return math.exp(intercept), slope


def report(args: argparse.Namespace, results: list[Figures]) -> str:
    head = ["N", "all chose", "zk cpu", "steady req/s", "zk core", "watches", "RSS MB"]
    head += ["loss p50", "p99", "max", "requests", "zk cpu", "max lat ms", "orphans", "wrong"]
    head += ["retries", "expired"]
    rows = [head]
    for f in results:
        rows.append(
            [str(f.n), fmt(f.converge_s, 2), fmt(f.register_zk_cpu, 2), f"{f.steady_rps:.0f}",
             f"{f.steady_zk_cpu:.1%}", str(f.watches), f"{f.rss_mb:.0f}", fmt(f.herd_p50, 2),
             fmt(f.herd_p99, 2), fmt(f.herd_max, 2), str(f.herd_requests), fmt(f.herd_zk_cpu, 2),
             str(f.herd_max_latency_ms), str(f.orphans), str(f.wrong_moves), str(f.failures),
             str(f.expired)]
        )  # fmt: skip
    zk = (
        "standalone ZooKeeper" if args.zk_nodes == 1 else f"{args.zk_nodes}-node ZooKeeper ensemble"
    )
    lines = [
        f"simulated leaves against a real {zk}: {args.branches} branches (1 root), leaf session "
        f"{args.session_timeout:g} s, jitter {args.jitter:g} s, periodic re-read every "
        f"{args.refresh_interval:g} s, {args.workers} worker processes x {args.threads} refresh "
        f"threads; {machine_line()}",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "",
        table(rows),
        "",
        f"fit y = c * N^k over N = {', '.join(str(f.n) for f in results)}; "
        f"predicted at N = {args.predict}:",
    ]
    xs = [float(f.n) for f in results]
    fits: list[list[str]] = [["figure", "k", f"at {args.predict}"]]
    for attr, (label, unit) in FITTED.items():
        fit = power_fit(xs, [float(getattr(f, attr)) for f in results])
        if fit is not None:
            c, k = fit
            fits.append([label, f"{k:.2f}", f"{c * args.predict**k:.4g} {unit}".rstrip()])
    per_refresh = args.branches + 4  # the folder, every branch's member, its own, root, epoch
    lines += [
        table(fits),
        "",
        f"model: a leaf's full re-read is {per_refresh} requests (the branches' folder,"
        f" {args.branches} member znodes, its own, root, epoch; the folder's list too when a"
        " branch came or went) leaving as many watches; a branch lost costs no request (the"
        " watch each leaf left on its member znode fires); at"
        f" N = {args.predict} the full re-reads cost"
        f" ~{args.predict * per_refresh / args.refresh_interval:,.0f}/s,"
        f" the watches ~{args.predict * per_refresh:,}.",
        "assumptions: the same number of branches; every simulated session, the workers and"
        " ZooKeeper share this host, so the times (all chose, loss p50/p99/max) include the"
        " simulator's own CPU queueing and grow with it (a fleet has one leaf per machine),"
        " while requests, watches, ZooKeeper CPU and RSS are the server's own; one JVM with the"
        " harness's settings (serial GC, C1 only); no Redis (a leaf's move is its decision).",
    ]
    return "\n".join(lines)


def plot(results: list[Figures], args: argparse.Namespace) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not importable (pip install '.[bench]'): no PNG written")
        return
    xs = [f.n for f in results]
    grid = [
        ("seconds", ["converge_s", "herd_p99", "herd_max"]),
        ("requests", ["steady_rps", "herd_requests"]),
        ("ZooKeeper CPU seconds", ["register_zk_cpu", "herd_zk_cpu"]),
        ("count", ["watches"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    span = [min(xs), args.predict]
    for ax, (unit, attrs) in zip(axes.flat, grid, strict=True):
        for attr in attrs:
            ys = [getattr(f, attr) for f in results]
            (line,) = ax.plot(xs, ys, "o", label=FITTED[attr][0])
            fit = power_fit([float(x) for x in xs], [float(y) for y in ys])
            if fit is not None:
                c, k = fit
                ax.plot(
                    span,
                    [c * x**k for x in span],
                    "--",
                    color=line.get_color(),
                    label=f"fit N^{k:.2f}",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("simulated leaves")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    fig.suptitle(f"prodstate simulation: {args.branches} branches, jitter {args.jitter:g} s")
    fig.tight_layout()
    fig.savefig(args.png)
    log(f"plot written to {args.png}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="ZooKeeper load and convergence, simulated leaves (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--leaves", type=int, nargs="+", default=[100, 250, 500, 1000, 2000], help="values of N")
    add("--branches", type=int, default=10, help="simulated branches, the root among them")
    add("--zk-nodes", type=int, choices=(1, 3), default=1, help="standalone or a 3-node ensemble")
    add("--zk-heap", type=int, default=512, help="standalone ZooKeeper's -Xmx, MB")
    add("--session-timeout", type=float, default=10.0, help="leaf sessions, s (agent default)")
    add("--jitter", type=float, default=0.5, help="leaf reaction delay 0..jitter s (agent default)")
    add("--refresh-interval", type=float, default=60.0, help="full re-read, s (leaf default)")
    add("--steady", type=float, help="steady-state window, s [--refresh-interval]")
    add("--workers", type=int, default=4, help="worker processes holding the leaves")
    add("--threads", type=int, default=8, help="refresh threads per worker")
    add("--predict", type=int, default=10_000, help="N to predict at")
    add("--timeout", type=float, default=300.0, help="give up on a phase after this many seconds")
    add("--png", type=Path, default=Path("simulation.png"), help="plot file (needs matplotlib)")
    add("--dir", type=Path, help="keep ZooKeeper's work dirs (logs) here; default: a temp dir")
    add("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.steady is None:
        args.steady = args.refresh_interval  # every leaf's full re-read falls in it once
    if min(args.leaves) < 1 or args.branches < 3:
        parser.error(
            "--leaves must be positive and --branches at least 3 (a root and two to lose one)"
        )
    if args.workers < 1 or args.threads < 1 or args.steady <= 0 or args.refresh_interval <= 0:
        parser.error("--workers, --threads, --steady and --refresh-interval must be positive")
    if args.jitter < 0 or args.session_timeout < 1:
        parser.error("--jitter must not be negative and --session-timeout at least 1")
    args.leaves = sorted(set(args.leaves))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Figures] = []
    failed = False
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            for n in args.leaves:
                log(f"N = {n}: starting")
                try:
                    results.append(measure(n, args, workdir.path / f"n{n}"))
                except Exception as exc:  # keep the other sizes' figures
                    failed = workdir.failed = True
                    log(f"N = {n} FAILED: {type(exc).__name__}: {exc}".split("\n")[0])
                    continue
                log(f"N = {n}: {results[-1]}")
    except KeyboardInterrupt:
        log("interrupted: workers and ZooKeeper stopped")
        return 130
    if not results:
        return 1
    print(report(args, results))
    plot(results, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in results], indent=2) + "\n")
    wrong = sum(f.wrong_moves for f in results)
    if wrong:
        log(f"{wrong} leaves did not end on their rendezvous choice")
    return 1 if failed or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
