"""The figures of ``propagation.py``'s runs, from the latencies and windows alone (no servers).

Per run: each tree's p50 and p99 and their ratios; over the runs: the spread of the ratios
against the targets on their medians; over all writes of all runs: both trees' CDF; and for
each tree's writes from its p99 up, with as many writes around its median to compare, which
groups of processes ran and waited while they were in flight.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchkit import ms, nearest_rank, percentile, table
from proctrace import OTHER, OWN_GROUP, SAMPLER_GROUP, Usage, Window

PRODSTATE, PLAIN = "prodstate", "plain"
TARGETS = {50: 1.05, 99: 1.1}  # prodstate / plain, on the median over the runs
CDF_POINTS = (10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
#: The process groups, in the order they are shown.
AGENTS, PRODSTATE_REDIS, PLAIN_REDIS = "prodstate agents", "prodstate Redis", "plain Redis"
ZOOKEEPER = "ZooKeeper"
GROUPS = (AGENTS, PRODSTATE_REDIS, PLAIN_REDIS, ZOOKEEPER, OWN_GROUP, SAMPLER_GROUP, OTHER)


@dataclass
class Write:
    """One write: until its last leaf and its median leaf had it; what ran meanwhile."""

    latency: float
    median_leaf: float
    window: Window | None = None


@dataclass
class TreeRun:
    """One tree's writes in one run."""

    writes: list[Write] = field(default_factory=list)
    timeouts: int = 0

    def latencies(self) -> list[float]:
        return [w.latency for w in self.writes]


@dataclass
class Run:
    """One side-by-side run of fresh trees."""

    trees: dict[str, TreeRun]
    load: float  # 1-minute load average when the writes began
    whole: Window | None = None  # what ran over all the writes
    #: Each snapshot's wall and CPU seconds, and the times its thread blocked or was preempted.
    snapshots: list[tuple[float, float, int, int]] = field(default_factory=list)
    tasks: int = 0  # tasks (threads) the sampler read at the end

    def ratio(self, q: float) -> float:
        """prodstate's ``q``-th percentile over plain Redis's."""
        ours, theirs = self.trees[PRODSTATE].latencies(), self.trees[PLAIN].latencies()
        return percentile(ours, q) / percentile(theirs, q)


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Minimum, median and maximum."""
    return min(values), statistics.median(values), max(values)


def runs_table(runs: Sequence[Run]) -> str:
    """One line per run: the load, each tree's p50/p99/max in ms, the ratios, timeouts."""
    rows = [["run", "load", "runnable", "prodstate p50", "p99", "max", "plain p50", "p99", "max"]]
    rows[0] += ["ratio p50", "p99", "timeouts"]
    for number, run in enumerate(runs, 1):
        runnable = f"{run.whole.runnable:.1f}" if run.whole is not None else "-"
        row = [str(number), f"{run.load:.1f}", runnable]
        for name in (PRODSTATE, PLAIN):
            values = run.trees[name].latencies()
            row += [
                ms(percentile(values, 50), 1),
                ms(percentile(values, 99), 1),
                ms(max(values), 1),
            ]
        row += [f"{run.ratio(50):.2f}x", f"{run.ratio(99):.2f}x"]
        row.append("/".join(str(run.trees[n].timeouts) for n in (PRODSTATE, PLAIN)))
        rows.append(row)
    return table(rows)


def verdict(runs: Sequence[Run]) -> tuple[list[str], bool]:
    """The ratios' spread over the runs, each median against its target; whether both met."""
    lines, met = [], True
    for q, target in TARGETS.items():
        low, median, high = spread([run.ratio(q) for run in runs])
        ok = median <= target
        met = met and ok
        lines.append(
            f"p{q} ratio over {len(runs)} runs: min {low:.2f}x, median {median:.2f}x,"
            f" max {high:.2f}x (target: median <= {target}x): {'met' if ok else 'MISSED'}"
        )
    return lines, met


def cdf_table(samples: dict[str, Sequence[float]], points: Iterable[float] = CDF_POINTS) -> str:
    """Percentiles (ms) of each sample side by side, then the max; with two samples, the
    first's over the second's."""
    names = list(samples)
    ratio = len(names) == 2
    rows = [["percentile", *(f"{n} ms" for n in names)] + (["ratio"] if ratio else [])]
    for label, pick in [*((f"p{q:g}", q) for q in points), ("max", 100.0)]:
        values = [percentile(samples[n], pick) for n in names]
        rows.append([label, *(ms(v, 1) for v in values)])
        if ratio:
            rows[-1].append(f"{values[0] / values[1]:.2f}x")
    rows.append(["writes", *(str(len(samples[n])) for n in names)] + ([""] if ratio else []))
    return table(rows)


def slow_and_median(writes: Sequence[Write], least: int = 10) -> tuple[list[Write], list[Write]]:
    """The p99 write and those slower (slowest first), and as many of the writes nearest the
    median (at least ``least``) to compare them with."""
    ordered = sorted(writes, key=lambda w: w.latency)
    slow = ordered[nearest_rank(len(ordered), 99) - 1 :][::-1]
    count = min(len(ordered), max(least, len(slow)))
    middle = len(ordered) // 2
    start = max(0, min(middle - count // 2, len(ordered) - count))
    return slow, ordered[start : start + count]


def groups_of(windows: Iterable[Window]) -> list[str]:
    """The groups present, in ``GROUPS`` order, others after them."""
    seen = {g for w in windows for g in w.groups}
    return [g for g in GROUPS if g in seen] + sorted(seen - set(GROUPS))


def mean_cores(windows: Sequence[Window], group: str) -> Usage:
    """A group's mean CPU (cores) and mean tasks waiting for a CPU over the windows."""
    shares = [
        Usage(u.cpu / w.seconds, u.wait / w.seconds)
        for w in windows
        if w.seconds > 0
        for u in [w.groups.get(group, Usage())]
    ]
    return Usage(statistics.fmean(u.cpu for u in shares), statistics.fmean(u.wait for u in shares))


def compare_table(slow: Sequence[Window], median: Sequence[Window]) -> str:
    """Each group's mean cores and waiting tasks during the slow and the median writes."""
    rows = [["group", "slow: CPU cores", "waiting tasks", "median: CPU cores", "waiting tasks"]]
    for group in groups_of([*slow, *median]):
        row = [group]
        for windows in (slow, median):
            used = mean_cores(windows, group)
            row += [f"{used.cpu:.2f}", f"{used.wait:.2f}"]
        rows.append(row)
    for label, figure in (
        ("all: runnable tasks", lambda w: w.runnable),
        ("steal (cores)", lambda w: w.steal / w.seconds),
        ("window ms", lambda w: w.seconds * 1000),
    ):
        row = [label]
        for windows in (slow, median):
            row += [f"{statistics.fmean(figure(w) for w in windows):.2f}", ""]
        rows.append(row)
    return table(rows)


def slow_writes_table(slow: Sequence[tuple[int, int, Write]]) -> str:
    """Per slow write (run, index, write): latency, window, CPU ms by group, the run queue,
    steal, and the busiest processes."""
    windows = [w.window for _, _, w in slow if w.window is not None]
    groups = groups_of(windows)
    rows = [["run", "write", "ms", "window", *groups, "runnable", "steal", "busiest (CPU ms)"]]
    for run, index, write in slow:
        window = write.window
        if window is None:
            continue
        row = [str(run), str(index), ms(write.latency, 1), ms(window.seconds, 1)]
        row += [ms(window.groups.get(g, Usage()).cpu, 1) for g in groups]
        busiest = ", ".join(f"{label} {ms(u.cpu, 1)}" for label, u in window.top)
        row += [f"{window.runnable:.1f}", ms(window.steal, 1), busiest]
        rows.append(row)
    return table(rows)


def attribution(runs: Sequence[Run]) -> list[str]:
    """For each tree: its writes from its p99 up one by one, then their groups against the median
    writes'."""
    lines: list[str] = []
    for name in (PRODSTATE, PLAIN):
        numbered = [
            (number, index, write)
            for number, run in enumerate(runs, 1)
            for index, write in enumerate(run.trees[name].writes)
        ]
        if not numbered or any(w.window is None for _, _, w in numbered):
            continue
        slow, median = slow_and_median([w for _, _, w in numbered])
        slow_ids = {id(w) for w in slow}
        listed = sorted((n for n in numbered if id(n[2]) in slow_ids), key=lambda n: -n[2].latency)
        lines += [
            "",
            f"{name}: its {len(slow)} slowest writes over all runs (its p99 and up), and what ran"
            " while each was in flight (CPU ms by group; window: from the snapshot before the write"
            " to the one after it)",
            slow_writes_table(listed),
            "",
            f"{name}: mean over those {len(slow)} writes against the {len(median)} writes"
            " nearest its median",
            compare_table(
                [w.window for w in slow if w.window], [w.window for w in median if w.window]
            ),
        ]
    return lines


def cpu_table(runs: Sequence[Run], cpus: int) -> str:
    """Each group's CPU over all the runs' writes, as cores and as a share of the machine."""
    wholes = [run.whole for run in runs if run.whole is not None]
    seconds = sum(w.seconds for w in wholes)
    rows = [["CPU during the writes", "cores", "share of the machine"]]
    for group in groups_of(wholes):
        used = sum(w.groups.get(group, Usage()).cpu for w in wholes) / seconds
        rows.append([group, f"{used:.2f}", f"{used / cpus:.0%}"])
    read = sum(sum(u.cpu for u in w.groups.values()) for w in wholes)
    busy = sum(w.busy for w in wholes)
    steal = sum(w.steal for w in wholes)
    rows.append(["all tasks read", f"{read / seconds:.2f}", f"{read / seconds / cpus:.0%}"])
    rows.append(["busy by /proc/stat", f"{busy / seconds:.2f}", f"{busy / seconds / cpus:.0%}"])
    rows.append(["steal by /proc/stat", f"{steal / seconds:.2f}", f"{steal / seconds / cpus:.0%}"])
    return table(rows)


def sampler_line(runs: Sequence[Run]) -> str:
    """What the snapshots cost: their count, duration and CPU, and what kept them long."""
    taken = [s for run in runs for s in run.snapshots]
    wholes = [run.whole for run in runs if run.whole is not None]
    if not taken or not wholes:
        return "sampler: no snapshots"
    cpu = sum(w.groups.get(SAMPLER_GROUP, Usage()).cpu for w in wholes)
    seconds = sum(w.seconds for w in wholes)
    walls = [wall for wall, _, _, _ in taken]
    return (
        f"sampler: {len(taken)} snapshots of up to {max(run.tasks for run in runs)} tasks,"
        f" taken between writes (none while a write is in flight):"
        f" {ms(statistics.median(walls), 1)} ms each at the median"
        f" ({ms(statistics.median(c for _, c, _, _ in taken), 1)} ms of CPU),"
        f" {ms(max(walls), 1)} ms at most; its thread blocked"
        f" {statistics.fmean(b for _, _, b, _ in taken):.1f} and was preempted"
        f" {statistics.fmean(p for _, _, _, p in taken):.1f} times a snapshot;"
        f" {cpu:.1f} s of CPU, {cpu / seconds:.0%} of one core over the writes"
    )


def as_json(run: Run) -> dict[str, Any]:
    """A run's latencies (seconds), timeouts, load, windows and snapshots, in write order."""

    def window(w: Window | None) -> object:
        return w.as_json() if w is not None else None

    return {
        "load": run.load,
        "whole": window(run.whole),
        "snapshots": run.snapshots,
        "tasks": run.tasks,
        "trees": {
            name: {
                "timeouts": tree.timeouts,
                "all_leaves": [w.latency for w in tree.writes],
                "median_leaf": [w.median_leaf for w in tree.writes],
                "windows": [window(w.window) for w in tree.writes],
            }
            for name, tree in run.trees.items()
        },
    }


def from_json(data: dict[str, Any]) -> Run:
    """A run from ``as_json``'s dict."""

    def window(w: dict[str, Any] | None) -> Window | None:
        return Window.from_json(w) if w is not None else None

    trees = {
        name: TreeRun(
            [
                Write(latency, median, window(w))
                for latency, median, w in zip(
                    tree["all_leaves"], tree["median_leaf"], tree["windows"], strict=True
                )
            ],
            tree["timeouts"],
        )
        for name, tree in data["trees"].items()
    }
    snapshots = [
        (wall, cpu, blocked, preempted) for wall, cpu, blocked, preempted in data["snapshots"]
    ]
    return Run(trees, data["load"], window(data["whole"]), snapshots, data["tasks"])
