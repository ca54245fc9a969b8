"""Agent cost benchmark: what an idle agent takes from its machine and from ZooKeeper.

Figures (issue 6): the resident memory and CPU of an idle ``prodstate agent`` per tier (root,
branch, leaf), and the ZooKeeper requests each agent makes per minute.

A ``LocalCluster`` (ZooKeeper, a Redis and an agent per node, on loopback) forms its tree with the
agent's default tick, jitter, heartbeat interval and staleness threshold; then, for ``--idle``
seconds with nothing written, every agent's CPU time (its threads' run time,
``/proc/PID/task/*/schedstat``, in nanoseconds) and resident set (``/proc/PID/status``, sampled
each second) are read, and ZooKeeper's ``cons`` four-letter word gives each agent's session:
requests received (``recved``, pings included) and the last client request id (``lcxid``; kazoo
numbers every request but pings, so its advance counts the agent's real requests). ``mntr`` gives
the server's total as a cross-check.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import (
    Workdir,
    check_output_paths,
    log,
    machine_line,
    rss_bytes,
    run_seconds,
    table,
    terminate_as_interrupt,
    tick_time_for,
)

from prodstate.core.freshness import FreshnessPolicy
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.zk_server import ZooKeeperServer
from prodstate.zk.paths import Layout

MIB = 1024 * 1024
#: The agent's own heartbeat and staleness defaults (the harness's are scaled for tests).
DEFAULT_FRESHNESS = FreshnessPolicy()
#: One line of ``cons``: " /127.0.0.1:40000[1](queued=0,recved=12,sent=12,sid=0x1..,...)".
CONNECTION = re.compile(r"\((?P<fields>[^)]*sid=0x[0-9a-f]+[^)]*)\)")


@dataclass
class AgentFigures:
    """One agent over the idle interval."""

    name: str
    tier: str  # root, branch or leaf
    cpu_seconds: float = 0.0
    rss: list[int] = field(default_factory=list)  # bytes, one sample a second
    requests: int = 0  # lcxid advance: requests other than pings
    packets: int = 0  # recved advance: every packet, pings included


def sessions(zk: ZooKeeperServer) -> dict[int, dict[str, int]]:
    """Per session id: ``recved`` and ``lcxid`` from ``cons`` (summed over its connections)."""
    found: dict[int, dict[str, int]] = {}
    for match in CONNECTION.finditer(zk.four_letter_word("cons")):
        fields = dict(f.split("=", 1) for f in match["fields"].split(",") if "=" in f)
        sid = int(fields["sid"], 16)
        entry = found.setdefault(sid, {"recved": 0, "lcxid": 0})
        entry["recved"] += int(fields.get("recved", 0))
        entry["lcxid"] = max(entry["lcxid"], int(fields.get("lcxid", "0x0"), 16))
    return found


def mntr(zk: ZooKeeperServer) -> dict[str, str]:
    """ZooKeeper's ``mntr`` figures."""
    lines = zk.four_letter_word("mntr").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def session_ids(cluster: LocalCluster) -> dict[str, int]:
    """Node name -> the ZooKeeper session of its agent (its member znode's owner)."""
    zk = cluster.zk()
    owners = {}
    for name, tier in cluster.tiers.items():
        stat = zk.exists(Layout(cluster.cluster).member(tier, name))
        if stat is None:
            raise RuntimeError(f"{name} is not registered")
        owners[name] = stat.ephemeralOwner
    return owners


def measure(
    cluster: LocalCluster, idle: float, warmup: float = 0.0
) -> tuple[list[AgentFigures], int, float]:
    """Every agent's figures over ``idle`` seconds; also ZooKeeper's packet count and the
    interval's exact length."""
    report = cluster.wait_for_tree(timeout=120)
    assert report.root is not None
    if warmup > 0:
        log(f"warming up for {warmup:g} s: every agent's start-up reads behind it")
        time.sleep(warmup)  # a span of time to let pass, not a condition to wait for
        report = cluster.wait_for_tree(timeout=120)
        assert report.root is not None
    zk = cluster.zookeeper
    assert isinstance(zk, ZooKeeperServer)
    owners = session_ids(cluster)
    figures = [
        AgentFigures(n, "root" if n == report.root.node_id else t) for n, t in cluster.tiers.items()
    ]
    pids = {f.name: cluster.agents[f.name].pid for f in figures}
    cpu0 = {n: run_seconds(p) for n, p in pids.items()}
    zk0, packets0 = sessions(zk), int(mntr(zk)["zk_packets_received"])
    log(f"idle for {idle:g} s ({machine_line()})")
    started = time.monotonic()
    deadline = started + idle
    while (left := deadline - time.monotonic()) > 0:
        for f in figures:
            f.rss.append(rss_bytes(pids[f.name]))
        time.sleep(min(1.0, left))  # the measured interval itself: nothing to wait for
    interval = time.monotonic() - started
    zk1, packets1 = sessions(zk), int(mntr(zk)["zk_packets_received"])
    for f in figures:
        f.cpu_seconds = run_seconds(pids[f.name]) - cpu0[f.name]
        sid = owners[f.name]
        if sid not in zk0 or sid not in zk1:
            raise RuntimeError(f"{f.name}'s ZooKeeper session changed during the interval")
        f.requests = zk1[sid]["lcxid"] - zk0[sid]["lcxid"]
        f.packets = zk1[sid]["recved"] - zk0[sid]["recved"]
    dead = [n for n, a in cluster.agents.items() if not a.running]
    if dead:
        raise RuntimeError(f"agents exited during the interval: {dead}")
    return figures, packets1 - packets0, interval


def report(
    args: argparse.Namespace, figures: list[AgentFigures], zk_packets: int, interval: float
) -> str:
    """The printed report."""
    minutes = interval / 60
    rows = [
        [
            "tier",
            "agents",
            "RSS MiB mean",
            "RSS MiB max",
            "CPU % of a core",
            "ZK requests/min",
            "ZK packets/min (pings incl.)",
        ]
    ]
    for tier in ("root", "branch", "leaf"):
        group = [f for f in figures if f.tier == tier]
        if not group:
            continue
        rows.append(
            [
                tier,
                str(len(group)),
                f"{statistics.mean(statistics.mean(f.rss) for f in group) / MIB:.1f}",
                f"{max(max(f.rss) for f in group) / MIB:.1f}",
                f"{statistics.mean(f.cpu_seconds for f in group) / interval:.2%}",
                f"{statistics.mean(f.requests for f in group) / minutes:.1f}",
                f"{statistics.mean(f.packets for f in group) / minutes:.1f}",
            ]
        )
    per_agent = zk_packets / len(figures) / minutes
    return "\n".join(
        [
            f"prodstate agent cost benchmark: {args.branches} branches, {args.leaves} leaves, "
            f"idle {interval:.1f} s after {args.warmup:g} s; agent tick {args.agent_tick:g}s, "
            f"jitter {args.agent_jitter:g}s, session {args.session_timeout:g}s, heartbeat "
            f"{args.heartbeat_interval:g}s, stale after {args.stale_after:g}s",
            f"{machine_line()} (at the end)",
            f"command: {shlex.join([sys.executable, *sys.argv])}",
            "",
            table(rows),
            "",
            f"ZooKeeper mntr: {zk_packets} packets received in all, {per_agent:.1f} per agent per"
            " minute (this benchmark's own few four-letter words and client included)",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="RSS, CPU and ZooKeeper requests of idle agents (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--branches", type=int, default=3, help="branches, the root included")
    parser.add_argument("--leaves", type=int, default=12, help="leaves")
    parser.add_argument("--idle", type=float, default=60.0, help="measured interval, seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds between the tree forming and the measurement (an agent's second full "
        "read of ZooKeeper comes within its first refresh interval, 60 s)",
    )
    parser.add_argument(
        "--session-timeout", type=float, default=10.0, help="agents' ZooKeeper session, seconds"
    )
    parser.add_argument("--agent-tick", type=float, default=0.2, help="agents' --tick, seconds")
    parser.add_argument("--agent-jitter", type=float, default=0.5, help="agents' --jitter")
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=DEFAULT_FRESHNESS.heartbeat_interval,
        help="agents' --heartbeat-interval, seconds (the agent's default)",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_FRESHNESS.stale_after,
        help="agents' --stale-after, seconds (the agent's default)",
    )
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: temp dir")
    parser.add_argument("--json", type=Path, help="also write every agent's figures here")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.branches < 1 or args.leaves < 0:
        parser.error("--branches must be at least 1 and --leaves at least 0")
    if args.idle < 1:
        parser.error("--idle must be at least 1 second")
    if args.session_timeout < 0.4 or args.agent_tick <= 0 or args.agent_jitter < 0:
        parser.error("--session-timeout >= 0.4, --agent-tick > 0 and --agent-jitter >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            log(f"starting a cluster: {args.branches} branches, {args.leaves} leaves")
            try:
                with LocalCluster(
                    workdir.path / "agent-cost",
                    branches=args.branches,
                    leaves=args.leaves,
                    session_timeout=args.session_timeout,
                    tick_time=tick_time_for(args.session_timeout),
                    agent_tick=args.agent_tick,
                    agent_jitter=args.agent_jitter,
                    agent_heartbeat=args.heartbeat_interval,
                    agent_stale_after=args.stale_after,
                ) as cluster:
                    figures, zk_packets, interval = measure(cluster, args.idle, args.warmup)
            except Exception:
                workdir.failed = True
                raise
    except KeyboardInterrupt:
        log("interrupted: cluster stopped")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    print(report(args, figures, zk_packets, interval))
    if args.json:
        raw = [f.__dict__ for f in figures]
        args.json.write_text(json.dumps({"interval": interval, "agents": raw}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
