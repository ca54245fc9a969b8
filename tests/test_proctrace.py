"""benchmarks/proctrace.py: what ran between two /proc readings, from dicts, and the sampler on
this very process (no server)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.bench_modules import load

proctrace = load("proctrace")
Usage = proctrace.Usage


def test_parse_schedstat_and_stat():
    assert proctrace.parse_schedstat(b"1500 250 7\n") == (1500, 250)
    stat = b"cpu  100 2 30 9999 5 1 4 8 0 0\ncpu0 50 1 15 5000 2 0 2 4 0 0\n"
    assert proctrace.parse_stat(stat) == (100 + 2 + 30 + 1 + 4, 8)


def test_process_usage_sums_threads_seen_in_both_readings():
    before = {(10, 10): (0, 0), (10, 11): (0, 0), (20, 20): (5_000, 100)}
    after = {
        (10, 10): (3_000_000_000, 500_000_000),
        (10, 11): (1_000_000_000, 0),
        (20, 20): (4_000, 100),  # went back: counts as nothing
        (30, 30): (9_000_000_000, 0),  # born in between: left out
    }
    usage = proctrace.process_usage(before, after)
    assert usage[10].cpu == pytest.approx(4.0)
    assert usage[10].wait == pytest.approx(0.5)
    assert usage[20] == Usage(0.0, 0.0)
    assert 30 not in usage


def test_attribute_sums_groups_and_names_the_busiest():
    usage = {1: Usage(0.010, 0.001), 2: Usage(0.030, 0.0), 3: Usage(0.005, 0.02), 4: Usage()}
    window = proctrace.attribute(
        usage, 0.05, {1: "agents", 2: "agents"}, {2: "agent root"}, top=3, steal=0.01
    )
    assert window.groups["agents"].cpu == pytest.approx(0.040)
    assert window.groups["other"] == Usage(0.005, 0.02)
    assert [label for label, _ in window.top] == ["agent root", "pid 1", "pid 3"]
    assert window.runnable == pytest.approx((0.045 + 0.021) / 0.05)
    assert window.as_json()["steal"] == 0.01
    assert proctrace.attribute({4: Usage()}, 0.05, {}, {}).top == []  # nothing ran


@pytest.mark.parametrize(
    ("argv", "label"),
    [
        ([], "kworker/0:1"),
        (["/v/bin/python", "-m", "prodstate", "agent", "--zk", "x"], "python -m prodstate agent"),
        (["java", "-Xmx1g", "-cp", "a.jar:b.jar", "org.apache.zk.Main", "z.cfg"], "java Main"),
        (["/usr/bin/python3", "-u", "/srv/tool.py", "arg"], "python3 tool.py"),
        (["redis-server", "127.0.0.1:6379"], "redis-server 127.0.0.1:6379"),
    ],
)
def test_command_label(argv, label):
    assert proctrace.command_label(argv, "kworker/0:1") == label


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_sampler_sees_this_process_a_named_session_and_its_own_cost():
    spin = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"
    shell = subprocess.Popen(
        ["sh", "-c", f"{shlex.quote(sys.executable)} -c {shlex.quote(spin)} & wait"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 5
        while not children(shell.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        (spinner,) = children(shell.pid)  # in the shell's session, named by the shell's pid
        with proctrace.Sampler({shell.pid: "busy"}, {shell.pid: "shell"}) as sampler:
            before = sampler.snapshot()
            burn(0.05)
            after = sampler.snapshot()
            window = sampler.window(before, after)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    assert sampler.group_of[spinner] == "busy"
    assert sampler.label_of[spinner].startswith("shell child ")
    busy = window.groups["busy"]
    assert busy.cpu + busy.wait > 0  # runnable throughout: on a CPU or waiting for one
    assert window.groups["benchmark"].cpu >= 0.04
    assert window.groups["sampler"].cpu == pytest.approx(before.cost)
    assert window.seconds == pytest.approx(after.time - before.time)
    assert before.wall >= before.cost > 0


def test_sampler_reads_only_tasks_that_ran_since_the_last_full_snapshot():
    stop = threading.Event()
    idle = threading.Thread(target=stop.wait)
    idle.start()
    try:
        with proctrace.Sampler({}, {}, full_every=3600) as sampler:
            first = sampler.snapshot(full=True)
            burn(0.01)
            sampler.snapshot(full=True)  # the idle thread did not run in between: dormant
            partial = sampler.snapshot()
            tasks = dict(zip(sampler.tasks, partial.raw, strict=False))
            main = (sampler.tasks[0][0], threading.get_native_id())
            assert tasks[main] is not None
            assert tasks[(main[0], idle.native_id)] is None
            assert sum(r is not None for r in first.raw) > sum(r is not None for r in partial.raw)
    finally:
        stop.set()
        idle.join()
