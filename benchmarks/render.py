"""Render benchmark: a change at the root -> the file rewritten on a leaf, and renders per burst.

A ``LocalCluster`` (ZooKeeper, a Redis and a ``prodstate agent`` per node); one
``prodstate render`` process on a leaf, its template reading one key and one set. Latency:
``--writes`` SETs at the root, one at a time, each timed (``time.monotonic``) from just before
the SET to the moment the leaf's file is a new inode holding the value (polled every 0.2 ms).
Bursts: ``--bursts`` times, ``--burst-size`` SADDs at the root spread over ``--burst-seconds``,
then the renders (files written) counted until the file holds the burst's last member; once
with the default wait (0: render as soon as a change arrives, one render at a time) and once
with ``--wait``. Run ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from benchkit import (
    Workdir,
    check_output_paths,
    log,
    machine_line,
    ms,
    percentile,
    table,
    terminate_as_interrupt,
)

from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ManagedProcess
from prodstate.testing.wait import wait_until

TEMPLATE = (
    "value {{ get('bench:value') }}\n"
    "{% for m in smembers('bench:set') %}member {{ m }}\n{% endfor %}"
)


class Renderer(ManagedProcess):
    """``prodstate render`` of the benchmark's template on one node."""

    def __init__(self, workdir: Path, redis: str, agent: str, wait: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        template = workdir / "bench.j2"
        template.write_text(TEMPLATE)
        self.output = workdir / "bench.conf"
        argv = [sys.executable, "-m", "prodstate", "render", "--redis", redis, "--agent", agent]
        argv += ["--template", f"{template}:{self.output}", "--wait", wait]
        super().__init__(f"render-{wait.replace(':', '-')}", argv, workdir, ready=self._ready)

    def _ready(self) -> bool:
        return self.log_path.exists() and "subscribed to keyspace" in self.log_path.read_text()

    def writes(self) -> int:
        """Files written so far, once the log has caught up: the renderer logs a write just
        after the rename, so the count is read again until it holds for 0.3 s (nothing
        else changes the data meanwhile)."""
        count, since = -1, time.monotonic()
        while True:
            now = self.log_path.read_text().count("wrote the file")
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= 0.3:
                return count
            time.sleep(0.01)


def inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def latency(cluster: LocalCluster, renderer: Renderer, writes: int) -> list[float]:
    """Seconds from each SET at the root to the leaf's file rewritten with it."""
    root = cluster.root_name()
    assert root is not None
    delays = []
    with cluster.redis[root].client() as conn:
        for i in range(writes):
            value = f"w{i}"
            before = inode(renderer.output)
            started = time.monotonic()
            conn.set("bench:value", value)
            deadline = started + 10
            while True:
                now = time.monotonic()
                if inode(renderer.output) != before and value in renderer.output.read_text():
                    delays.append(now - started)
                    break
                if now > deadline:
                    raise TimeoutError(f"{value} not rendered within 10 s")
                time.sleep(0.0002)
            time.sleep(0.02)
    return delays


def bursts(
    cluster: LocalCluster, renderer: Renderer, count: int, size: int, seconds: float
) -> list[int]:
    """Files written for each burst of ``size`` SADDs spread over ``seconds``."""
    root = cluster.root_name()
    assert root is not None
    renders = []
    with cluster.redis[root].client() as conn:
        for b in range(count):
            conn.delete("bench:set")
            wait_until(lambda: "member" not in renderer.output.read_text(), timeout=30)
            before = renderer.writes()
            started = time.monotonic()
            for i in range(size):
                conn.sadd("bench:set", f"b{b}-{i:05d}")
                pause = started + (i + 1) * seconds / size - time.monotonic()
                if pause > 0.001:
                    time.sleep(pause)
            last = f"member b{b}-{size - 1:05d}\n"
            wait_until(lambda last=last: last in renderer.output.read_text(), timeout=30)
            renders.append(renderer.writes() - before)
    return renders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=200, help="timed single writes")
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--burst-size", type=int, default=1000)
    parser.add_argument("--burst-seconds", type=float, default=1.0)
    parser.add_argument("--wait", default="200ms:1s", help="the debounced renderer's --wait")
    parser.add_argument("--leaves", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="work dir (kept)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    check_output_paths(parser, args.json)
    log(machine_line())
    figures: dict[str, object] = {}
    with (
        terminate_as_interrupt(),
        Workdir(args.dir) as work,
        LocalCluster(work.path / "cluster", branches=2, leaves=args.leaves) as cluster,
    ):
        cluster.wait_for_tree(timeout=60)
        leaf = "leaf1"
        agent = cluster.agents[leaf].metrics_url.removeprefix("http://")
        address = cluster.redis[leaf].address
        rows = [["case", "p50", "p99", "max", "renders per burst (min/median/max)"]]
        for wait in ("0", args.wait):
            folder = (
                work.path / f"render-{wait.replace(':', '-')}"
            )  # no colon: --template splits there
            renderer = Renderer(folder, address, agent, wait).start()
            try:
                wait_until(renderer.output.exists, timeout=30)
                if wait == "0":
                    delays = latency(cluster, renderer, args.writes)
                    figures["latency"] = delays
                    log(f"latency: {len(delays)} writes")
                per_burst = bursts(
                    cluster, renderer, args.bursts, args.burst_size, args.burst_seconds
                )
                figures[f"renders_per_burst wait={wait}"] = per_burst
                log(f"wait {wait}: renders per burst {per_burst}")
            finally:
                renderer.stop()
            spread = f"{min(per_burst)}/{statistics.median(per_burst):g}/{max(per_burst)}"
            if wait == "0":
                p50, p99 = percentile(delays, 50), percentile(delays, 99)
                rows.append([f"wait {wait}", ms(p50), ms(p99), ms(max(delays)), spread])
            else:
                rows.append([f"wait {wait}", "", "", "", spread])
    print(
        f"{args.writes} writes at the root, file rewritten on a leaf; {args.bursts} bursts of "
        f"{args.burst_size} changes in {args.burst_seconds:g}s"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
