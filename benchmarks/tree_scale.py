"""The tree view at fleet size: how long ``prodstate status`` and the dashboard take to
arrange and show a tree of ``--branches`` branches and ``--leaves`` leaves (no servers:
the records are built in memory, as ``build_status`` receives them from ZooKeeper and
every node's Redis).

    .venv/bin/python benchmarks/tree_scale.py [--branches 40] [--leaves 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from prodstate.core.model import Lineage, Member, RedisState, RootRecord, Tier
from prodstate.core.rendezvous import choose_parent
from prodstate.core.tree import TreeStatus, arrange, build_status
from prodstate.statedb.dashboard.tree import tree_view

NOW = 1_800_000_000.0


def address(node: str) -> str:
    return f"{node}.example.net:6379"


def fleet(branches: int, leaves: int) -> Callable[[], TreeStatus]:
    """``build_status`` of a healthy tree (b0 the root, every leaf on its rendezvous
    branch), ready to call."""
    names = [f"b{i}" for i in range(branches)]
    leaf_names = [f"leaf{i}" for i in range(leaves)]
    root = RootRecord("b0", address("b0"), epoch=3, replid="r" * 40, run_id="run-b0")
    members = {
        "branch": {b: Member(b, Tier.BRANCH, address(b), b != "b0") for b in names},
        "leaf": {n: Member(n, Tier.LEAF, address(n)) for n in leaf_names},
    }
    states = {"b0": RedisState(True, "master", run_id="run-b0", offset=5000)}
    for b in names[1:]:
        states[b] = RedisState(True, "slave", offset=4990, master=address("b0"), link_up=True)
    for n in leaf_names:
        parent = choose_parent(n, names[1:]) or "b0"
        states[n] = RedisState(True, "slave", offset=4900, master=address(parent), link_up=True)
    lineage = Lineage(3, "b0", address("b0"), ("r" * 40,))
    beats: dict[str, float | None] = {node: NOW - 0.5 for node in states}
    return lambda: build_status(root, lineage, members, states, beats, NOW, 10.0)


def timed(what: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median, min and max seconds of ``runs`` calls."""
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        what()
        took.append(time.perf_counter() - start)
    return statistics.median(took), min(took), max(took)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branches", type=int, default=40)
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.branches < 2 or args.leaves < 0 or args.runs < 1:
        parser.error("at least 2 branches, 0 leaves and 1 run")
    build = fleet(args.branches, args.leaves)
    status = build()
    print(f"{len(status.nodes)} nodes ({args.branches} branches)")
    print(f"{'step':<34}{'median s':>10}{'min s':>8}{'max s':>8}")
    steps: dict[str, Callable[[], object]] = {
        "build_status (expected parents)": build,
        "arrange (status and dashboard)": lambda: arrange(status),
        "status text (prodstate status)": status.render_text,
        "dashboard tree view": lambda: tree_view(status),
    }
    for name, step in steps.items():
        median, low, high = timed(step, args.runs)
        print(f"{name:<34}{median:>10.3f}{low:>8.3f}{high:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
