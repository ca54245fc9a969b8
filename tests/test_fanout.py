"""benchmarks/fanout.py: --replicas, the per-write figures, the table and the scaling line, from
made-up measurements (no server)."""

from __future__ import annotations

import argparse
import os

import pytest

from tests.bench_modules import load

fanout = load("fanout")
Result = fanout.Result


def result(replicas, latencies, **kwargs):
    return Result(
        replicas,
        writes=kwargs.pop("writes", len(latencies)),
        latencies=latencies,
        median_latencies=[v / 2 for v in latencies],
        **kwargs,
    )


def test_parse_replicas_keeps_the_order_given():
    assert fanout.parse_replicas("10,50,100,200") == [10, 50, 100, 200]
    assert fanout.parse_replicas(" 7 , 3") == [7, 3]
    assert fanout.parse_replicas("1") == [1]


@pytest.mark.parametrize("text", ["", "10,", "ten", "10;50", "0", "5,-1", "3,10,3", "2.5"])
def test_parse_replicas_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        fanout.parse_replicas(text)


def test_options_and_their_defaults():
    args = fanout.parse_args([])
    assert args.replicas == [10, 50, 100, 200]
    assert (args.writes, args.warmup, args.value_size, args.timeout) == (500, 20, 100, 5.0)
    assert args.dir is None and args.json is None
    assert fanout.parse_args(["--replicas", "3,10", "--writes", "100"]).replicas == [3, 10]


@pytest.mark.parametrize(
    "argv",
    [
        ["--replicas", "0"],
        ["--replicas", "a,b"],
        ["--writes", "0"],
        ["--warmup", "-1"],
        ["--value-size", "-1"],
        ["--timeout", "0"],
        ["--json", "/no/such/folder/fanout.json"],
    ],
)
def test_bad_input_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        fanout.parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_per_write_figures():
    r = result(4, [0.001, 0.002, 0.003, 0.010], writes=5, timeouts=1, cpu_seconds=0.002)
    assert r.cpu_per_write == pytest.approx(0.0004)  # every write sent, the timed-out one too
    assert r.cpu_per_write_replica == pytest.approx(0.0001)
    assert r.latency(50) == 0.002 and r.latency(99) == 0.010 and r.latency(100) == 0.010
    assert r.median_replica(50) == 0.001
    empty = Result(3, writes=10, timeouts=10, cpu_seconds=0.001)
    assert empty.latency(50) is None and empty.median_replica(50) is None


def test_table_has_a_row_per_replica_count():
    results = [
        result(10, [0.001] * 99 + [0.005], cpu_seconds=0.005, used_memory=1024 * 1024),
        result(
            50,
            [0.002] * 100,
            cpu_seconds=0.010,
            used_memory=2 * 1024 * 1024,
            replication_buffers=20 * 1024,
            omem=[16 * 1024, 20 * 1024],
            timeouts=2,
            writes=102,
        ),
    ]
    lines = fanout.results_table(results).splitlines()
    assert lines[0].split()[:3] == ["replicas", "CPU", "us/write"]
    assert lines[1].split() == [
        "10",
        "50.0",
        "5.00",
        "1.00",
        "1.00",
        "5.00",
        "0.50",
        "1024",
        "0",
        "0",
        "0",
    ]
    assert lines[2].split() == [
        "50",
        "98.0",
        "1.96",
        "2.00",
        "2.00",
        "2.00",
        "1.00",
        "2048",
        "20",
        "20",
        "2",
    ]
    cells = fanout.results_table([Result(3, writes=1, timeouts=1)]).splitlines()[1].split()
    assert cells[3:7] == ["-", "-", "-", "-"]


def test_slope_is_least_squares():
    assert fanout.slope([10.0, 50.0, 100.0], [1.0, 5.0, 10.0]) == pytest.approx(0.1)
    assert fanout.slope([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(0.5)


def test_scaling_line_per_added_replica():
    results = [
        result(n, [0.001 + n * 1e-5] * 10, cpu_seconds=10 * (20 + 2 * n) * 1e-6, used_memory=m)
        for n, m in ((10, 1_000 * 1024), (110, 1_200 * 1024))
    ]
    line = fanout.scaling_line(results)
    assert line.startswith("each added replica (least squares over N = 10, 110):")
    assert "branch CPU +2.00 us per write" in line
    assert "p50 to every replica +0.010 ms" in line
    assert "used_memory +2.0 KiB" in line
    assert "nothing to say" in fanout.scaling_line(results[:1])
    no_writes = [Result(n, writes=1, timeouts=1, cpu_seconds=1e-6) for n in (3, 10)]
    assert "p50" not in fanout.scaling_line(no_writes)


def test_report_flags_timeouts():
    args = fanout.parse_args(["--replicas", "3,10", "--writes", "2"])
    text = fanout.report(args, [result(3, [0.001, 0.002], cpu_seconds=1e-4)])
    assert "MISSED" not in text and "replicas" in text
    text = fanout.report(args, [result(3, [0.001], writes=2, timeouts=1, cpu_seconds=1e-4)])
    assert "MISSED: 1 writes" in text


def test_process_cpu_of_this_process_and_of_none():
    run, wait = fanout.process_cpu(os.getpid())
    assert run > 0 and wait >= 0
    assert fanout.process_cpu(None) == (0.0, 0.0)
