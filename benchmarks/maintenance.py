"""Operations without outages, measured with the client's confirmed writes (issue 16).

Targets: the longest gap between two confirmed writes when the root's agent is killed
(SIGKILL) and started again at once (same epoch, at most 0.5 s); for ``prodstate
switchover`` (at most 0.3 s, no confirmed write lost, no full resync); for the root's agent
stopped with SIGTERM (at most 0.3 s). And the time ``prodstate drain --wait`` takes to move
every leaf off the fullest non-root branch of a cluster of ``--drain-leaves`` leaves (2 of
its 3 branches take leaves, so that one holds about half), with the full resyncs it
caused (reported, no target).

Each run starts a fresh ``LocalCluster`` (ZooKeeper, a Redis and an agent per node, on
loopback, 2 s sessions), waits until every branch judges its copy fresh, then writes
through ``prodstate.Client`` (fenced writes confirmed by a branch) in a loop while the
operation runs.

    .venv/bin/python benchmarks/maintenance.py [--runs 3] [--drain-leaves 100] [--json F]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchkit import Workdir, check_output_paths, log, machine_line, table, terminate_as_interrupt

from prodstate.client import Client, WriteFailed
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.wait import wait_until

SESSION = 2.0
TARGETS = {"restart": 0.5, "switchover": 0.3, "sigterm": 0.3}


@dataclass
class Run:
    """One operation under load."""

    case: str
    gap: float | None = None
    epoch_before: int = 0
    epoch_after: int = 0
    confirmed: int = 0
    lost: int = 0
    full_resyncs: int = 0
    seconds: float | None = None
    leaves: int = 0
    notes: list[str] = field(default_factory=list)


class Writes(threading.Thread):
    """Confirmed writes in a loop; the end time of each one confirmed."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.done: list[tuple[str, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with Client(self.cluster.zk_hosts, self.cluster.cluster, timeout=15) as client:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                try:
                    client.set(f"bench:{i}", "v")
                except WriteFailed:
                    continue
                self.done.append((f"bench:{i}", time.monotonic()))

    def wait_for(self, n: int) -> None:
        target = len(self.done) + n
        wait_until(lambda: len(self.done) >= target, timeout=60, what=f"{n} confirmed writes")

    def gap_after(self, mark: float) -> float | None:
        ends = [t for _, t in self.done]
        window = [t for t in ends if t < mark][-1:] + [t for t in ends if t >= mark]
        return max((b - a for a, b in itertools.pairwise(window)), default=None)


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "prodstate", args[0], "--zk", cluster.zk_hosts]
    argv += ["--cluster", cluster.cluster, *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def under_load(case: str, workdir: Path) -> Run:
    """Restart, switchover or SIGTERM of the root's agent while writes go on."""
    with LocalCluster(workdir, branches=3, leaves=6, session_timeout=SESSION) as cluster:
        root = cluster.wait_settled(timeout=90).root
        assert root is not None
        before = cluster.full_syncs()
        writes = Writes(cluster)
        writes.start()
        writes.wait_for(200)
        mark = time.monotonic()
        agent = cluster.agents[root.node_id]
        if case == "restart":
            agent.kill()
            agent.start()
        elif case == "switchover":
            done = cli(cluster, "switchover", "--json")
            if done.returncode != 0:
                raise RuntimeError(f"switchover failed: {done.stdout}{done.stderr}")
        else:
            agent.stop()
            agent.start()
        writes.wait_for(200)
        writes.stop.set()
        writes.join(timeout=30)
        after = cluster.wait_for_tree(timeout=60).root
        assert after is not None
        run = Run(case, writes.gap_after(mark), root.epoch, after.epoch, len(writes.done))
        conn = cluster.redis[after.node_id].client()
        keys = [k for k, _ in writes.done]
        run.lost = sum(v is None for v in conn.mget(keys)) if keys else 0
        run.full_resyncs = sum(cluster.new_full_syncs(before).values())
        return run


def drain(workdir: Path, leaves: int, spread: str) -> Run:
    """Drain the non-root branch with the most leaves; time ``drain --wait``."""
    with LocalCluster(workdir, branches=3, leaves=leaves, session_timeout=SESSION) as cluster:
        report = cluster.wait_settled(timeout=600)
        assert report.root is not None
        counts = {
            b: sum(report.masters[n] == cluster.advertised(b) for n in cluster.names("leaf"))
            for b in cluster.names("branch")
            if b != report.root.node_id
        }
        victim = max(sorted(counts), key=lambda b: counts[b])
        before = cluster.full_syncs()
        done = cli(cluster, "drain", victim, "--spread", spread, "--wait", "--json")
        if done.returncode != 0:
            raise RuntimeError(f"drain failed: {done.stdout}{done.stderr}")
        doc = json.loads(done.stdout)
        run = Run("drain", seconds=doc["seconds"], leaves=doc["leaves"])
        # The tree stays drained: every leaf settled on its new parent, none syncing.
        leaves = [cluster.redis[n] for n in cluster.names("leaf")]
        wait_until(lambda: all(r.in_sync() for r in leaves), timeout=120)
        run.full_resyncs = sum(cluster.new_full_syncs(before).values())
        run.notes.append(f"spread {spread}")
        return run


def summary(runs: list[Run]) -> list[list[str]]:
    rows = [["case", "runs", "write gap s (median/max)", "epoch", "lost", "full resyncs",
             "target", "met"]]  # fmt: skip
    for case in ("restart", "switchover", "sigterm"):
        mine = [r for r in runs if r.case == case]
        if not mine:
            continue
        gaps = [r.gap for r in mine if r.gap is not None]
        epochs = sorted({r.epoch_after - r.epoch_before for r in mine})
        met = all(g <= TARGETS[case] for g in gaps) and not any(r.lost for r in mine)
        if case == "restart":
            met = met and epochs == [0]
        if case == "switchover":
            met = met and not any(r.full_resyncs for r in mine)
        rows.append([
            case, str(len(mine)),
            f"{statistics.median(gaps):.3f} / {max(gaps):.3f}" if gaps else "-",
            "+" + "/".join(map(str, epochs)), str(sum(r.lost for r in mine)),
            str(sum(r.full_resyncs for r in mine)), f"<= {TARGETS[case]} s", "yes" if met else "NO",
        ])  # fmt: skip
    for r in (r for r in runs if r.case == "drain"):
        rows.append(["drain", "1", f"{r.leaves} leaves in {r.seconds:.1f} s ({r.notes[0]})",
                     "-", "-", str(r.full_resyncs), "-", "-"])  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each case under load")
    parser.add_argument(
        "--drain-leaves",
        type=int,
        default=100,
        help="leaves in the drain run's cluster (0: no drain run)",
    )
    parser.add_argument("--spread", default="10s", help="the drain's --spread")
    parser.add_argument("--dir", type=Path, help="work dir (kept)")
    parser.add_argument("--json", type=Path, help="write the raw runs here")
    args = parser.parse_args()
    check_output_paths(parser, args.json)
    log(machine_line())
    runs: list[Run] = []
    with terminate_as_interrupt(), Workdir(args.dir) as work:
        for case in ("restart", "switchover", "sigterm"):
            for i in range(args.runs):
                run = under_load(case, work.path / f"{case}-{i}")
                moved = run.epoch_after - run.epoch_before
                log(f"{case} {i + 1}: gap {run.gap}s, epoch +{moved}, lost {run.lost}, "
                    f"full resyncs {run.full_resyncs}")  # fmt: skip
                runs.append(run)
        if args.drain_leaves:
            run = drain(work.path / "drain", args.drain_leaves, args.spread)
            log(
                f"drain: {run.leaves} leaves in {run.seconds:.1f}s, full resyncs {run.full_resyncs}"
            )
            runs.append(run)
    rows = summary(runs)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0 if all(row[-1] != "NO" for row in rows[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
