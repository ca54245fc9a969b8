"""benchmarks/propagation_report.py: the runs' ratios, the CDF table and the slow writes'
attribution, from made-up latencies and windows (no server)."""

from __future__ import annotations

import json

import pytest

from tests.bench_modules import load

report = load("propagation_report")
proctrace = load("proctrace")
Usage, Window, Write = proctrace.Usage, proctrace.Window, report.Write


def tree(latencies, window=None):
    return report.TreeRun([Write(v, v / 2, window) for v in latencies])


def run(prodstate, plain, **kwargs):
    return report.Run({"prodstate": tree(prodstate), "plain": tree(plain)}, load=1.0, **kwargs)


def test_spread():
    assert report.spread([3.0, 1.0, 2.0, 10.0]) == (1.0, 2.5, 10.0)


def test_ratios_per_run_and_the_verdict_on_their_medians():
    plain = [float(i) for i in range(1, 101)]
    runs = [
        run([v * 1.04 for v in plain], plain),
        run([v * 1.2 for v in plain], plain),  # one bad run does not move the median
        run(plain, plain),
    ]
    assert runs[0].ratio(50) == pytest.approx(1.04)
    lines, met = report.verdict(runs)
    assert met
    assert lines[0].startswith("p50 ratio over 3 runs: min 1.00x, median 1.04x, max 1.20x")
    lines, met = report.verdict([run([v * 1.06 for v in plain], plain)])
    assert not met and "MISSED" in lines[0] and lines[1].endswith("met")  # p99: 1.06 <= 1.1
    assert "3" in report.runs_table(runs).splitlines()[3].split()[0]


def test_cdf_table_percentiles_max_and_ratio():
    text = report.cdf_table(
        {"a": [i / 1000 for i in range(1, 1001)], "b": [i / 2000 for i in range(1, 1001)]}
    )
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()}
    assert rows["p50"] == ["500.0", "250.0", "2.00x"]
    assert rows["p99.9"] == ["999.0", "499.5", "2.00x"]
    assert rows["max"] == ["1000.0", "500.0", "2.00x"]
    assert rows["writes"] == ["1000", "1000"]
    assert list(rows)[1:4] == ["p10", "p25", "p50"]


def test_slow_writes_are_those_at_or_above_p99_and_the_median_sample_surrounds_the_median():
    writes = [Write(float(v), 0.0) for v in range(1, 301)]
    slow, median = report.slow_and_median(writes)
    assert [w.latency for w in slow] == [300.0, 299.0, 298.0, 297.0]  # p99 of 300: the 297th
    assert len(median) == 10 and min(w.latency for w in median) <= 150 <= max(
        w.latency for w in median
    )
    slow, median = report.slow_and_median(writes[:50])  # p99 of 50 is the max
    assert [w.latency for w in slow] == [50.0] and len(median) == 10


def window(seconds, agents, other, top=()):
    return Window(
        seconds,
        {"prodstate agents": Usage(agents, 0.01), "other": Usage(other, 0.0)},
        list(top),
        steal=0.002,
    )


def test_attribution_lists_the_slow_writes_and_compares_them_with_the_median():
    fast = window(0.01, 0.005, 0.001)
    slow = window(0.1, 0.09, 0.05, [("java QuorumPeerMain [7]", Usage(0.04))])
    latencies = [0.01] * 197 + [0.1, 0.1, 0.1]  # p99 of 200: the 198th
    prodstate = report.TreeRun(
        [Write(v, v, slow if v == 0.1 else fast) for v in latencies], timeouts=1
    )
    runs = [report.Run({"prodstate": prodstate, "plain": tree(latencies)}, load=1.0)]
    text = "\n".join(report.attribution(runs))
    lines = text.splitlines()
    assert "prodstate: its 3 slowest writes over all runs (its p99 and up)" in text
    assert "plain" not in text  # no windows (--no-attribution): nothing to attribute
    listed = next(line for line in lines if line.startswith("1 "))
    assert listed.split()[:4] == ["1", "197", "100.0", "100.0"]
    assert "java QuorumPeerMain [7] 40.0" in listed
    compare = lines[lines.index(next(n for n in lines if n.startswith("group"))) :]
    agents = compare[1].split()
    assert agents[:2] == ["prodstate", "agents"]
    assert agents[2:] == ["0.90", "0.10", "0.50", "1.00"]  # slow: cores, waiting; median


def test_cpu_table_and_sampler_line_over_the_runs():
    whole = Window(
        10.0,
        {"prodstate agents": Usage(8.0), "sampler": Usage(1.0), "other": Usage(2.0)},
        [],
        steal=0.5,
        busy=12.0,
    )
    snapshots = [(0.004, 0.003, 0, 1), (0.006, 0.005, 2, 0), (0.010, 0.004, 1, 2)]
    runs = [run([1.0], [1.0], whole=whole, snapshots=snapshots, tasks=900)]
    rows = {line[:22].strip(): line[22:].split() for line in report.cpu_table(runs, 2).splitlines()}
    assert rows["prodstate agents"] == ["0.80", "40%"]
    assert rows["all tasks read"] == ["1.10", "55%"]
    assert rows["busy by /proc/stat"] == ["1.20", "60%"]
    line = report.sampler_line(runs)
    assert "3 snapshots of up to 900 tasks" in line
    assert "6.0 ms each at the median (4.0 ms of CPU), 10.0 ms at most" in line
    assert "blocked 1.0 and was preempted 1.0 times a snapshot" in line
    assert "10% of one core" in line


def test_a_run_survives_its_json_whole():
    window = Window(0.02, {"other": Usage(0.01, 0.002)}, [("java [7]", Usage(0.01, 0.002))])
    original = report.Run(
        {"prodstate": tree([0.01, 0.02], window), "plain": report.TreeRun([], timeouts=2)},
        load=3.5,
        whole=Window(9.0, {"sampler": Usage(0.5)}, [], steal=0.1, busy=17.0),
        snapshots=[(0.004, 0.003, 1, 0)],
        tasks=42,
    )
    assert report.from_json(json.loads(json.dumps(report.as_json(original)))) == original
