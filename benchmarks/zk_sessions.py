"""10,000 real ZooKeeper sessions: the fleet's load on a 3-node ensemble (or one with observers).

A ``ZooKeeperEnsemble`` (3 voting servers, ``--observers`` more), ``--branches`` real branch
agents with their Redis (a ``LocalCluster`` of branches only, on the voting servers), and
``--leaves`` simulated leaves (``zkleaf.py``: the leaf agent's ZooKeeper traffic, each with
its own session, on asyncio over ``--workers`` processes; on the observers when there are
some). Measured, in order:

1. **storm**: every leaf starts at once; time until all are connected, registered, have
   chosen a parent and registered fresh; requests, the servers' peak outstanding requests
   and latency;
2. **steady**: ``--steady`` s at rest: requests and pings per second, watches, znodes, the
   servers' resident memory and CPU, and each tier's requests per minute;
3. **herd**: the agent of the non-root branch with most leaves is SIGKILLed (its Redis keeps
   serving); when its session expires its member znode goes and the watch every leaf left
   on it fires: the requests, and the time until each of its leaves has re-homed;
4. **crash**: the same for a machine (agent and Redis SIGKILLed): its leaves' copies go
   stale at once, and they move on the data path's evidence before ZooKeeper tells;
5. **root failover**: the root's machine crashes; expiry, claim, publication of the new
   root, every leaf under it, the requests of leaves and branches;
6. **restart**: every server stopped and started again on its data; time until every
   session is back, and whether any expired.

Targets (the exit status is 0 when all are met, 1 otherwise): no session expires in the
storm, at rest or across the restart; a branch loss costs at most 2 requests per affected
leaf, and (herd) re-homes them all within 5 s of the member znode going.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from benchkit import Workdir, check_output_paths, log, machine_line, terminate_as_interrupt
from kazoo.exceptions import KazooException
from zkfleet import BranchCluster, Fleet
from zkleaf import LeafConfig
from zkmonitor import Monitor
from zkphases import Run, branch_loss, ensemble_restart, root_failover, steady, storm
from zkreport import report, targets
from zkworker import WorkerPlan

from prodstate.core.model import DataError
from prodstate.testing.secure import SecureSetup
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import ZooKeeperEnsemble
from prodstate.zk.acl import prodstate_acl

CLUSTER = "fleet"
PHASES = ("storm", "steady", "herd", "crash", "root", "restart")
#: JVM options of the servers: the production collector, full JIT (the harness's quick-start
#: options are for tests).
SERVER_JVM = ("-XX:+UseG1GC",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="10,000 ZooKeeper sessions against an ensemble (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--leaves", type=int, default=10_000, help="simulated leaves (one session each)")
    add("--branches", type=int, default=10, help="real branch agents, the root among them")
    add("--observers", type=int, default=0, help="observers besides the 3 voters (for leaves)")
    add("--workers", type=int, default=2, help="processes holding the simulated leaves")
    add("--session-timeout", type=float, default=10.0, help="agents' sessions, s")
    add("--leaf-session-timeout", type=float, help="leaves' sessions, s [--session-timeout]")
    add("--tick-time", type=int, default=2000, help="ZooKeeper tickTime, ms")
    add("--zk-heap", type=int, default=1024, help="each server's -Xmx, MB")
    add("--zk-setting", action="append", default=[], metavar="KEY=VALUE",
        help="a zoo.cfg line for every server (repeatable)")  # fmt: skip
    add("--secured", action="store_true", help="agents authenticate and set their ACLs")
    add("--jitter", type=float, default=0.5, help="leaves' reaction delay 0..jitter s")
    add("--refresh-interval", type=float, default=60.0, help="leaves' full re-read, s")
    add("--sync-delay", type=float, default=5.0, help="s a leaf's first full sync takes")
    add("--steady", type=float, default=60.0, help="steady-state window, s")
    add(
        "--phases",
        default=",".join(PHASES),
        help="phases to run, in order, from " + ",".join(PHASES),
    )
    add("--timeout", type=float, default=240.0, help="give up on a phase after this many s")
    add("--seed", type=int, default=20, help="seed of the leaves' random delays")
    add("--dir", type=Path, help="keep work dirs (server and agent logs) here")
    add("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.phases[0] != "storm":
        parser.error("the storm comes first: it starts the leaves")
    if args.leaves < 1 or args.workers < 1 or args.observers < 0:
        parser.error("--leaves and --workers must be positive, --observers not negative")
    if args.branches < 4:
        parser.error("--branches must be at least 4 (a root, two branches to lose, one to stay)")
    args.leaf_session_timeout = args.leaf_session_timeout or args.session_timeout
    low, high = 2 * args.tick_time / 1000, 20 * args.tick_time / 1000
    if not all(low <= t <= high for t in (args.session_timeout, args.leaf_session_timeout)):
        parser.error(f"session timeouts must lie in 2-20 ticks ({low:g}-{high:g} s)")
    try:
        args.settings = dict(s.split("=", 1) for s in args.zk_setting)
    except ValueError:
        parser.error("--zk-setting takes KEY=VALUE")
    return args


def leaf_config(args: argparse.Namespace, ensemble: ZooKeeperEnsemble, secure: Any) -> LeafConfig:
    servers = ensemble.observers or ensemble.voters
    auth, acl = None, None
    if secure is not None:
        zk = secure.credentials.zookeeper
        auth, acl = (zk.user, zk.password), tuple(prodstate_acl(secure.credentials) or ())
    return LeafConfig(
        hosts=tuple((s.host, s.client_port) for s in servers),
        cluster=CLUSTER,
        session_timeout=args.leaf_session_timeout,
        jitter=args.jitter,
        refresh_interval=args.refresh_interval,
        sync_delay=args.sync_delay,
        auth=auth,
        acl=acl,
    )


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Set everything up, run the phases, tear everything down; the figures."""
    ensemble = ZooKeeperEnsemble(
        workdir / "zk",
        size=3,
        observers=args.observers,
        tick_time=args.tick_time,
        heap_mb=args.zk_heap,
        settings=args.settings,
        jvm_options=SERVER_JVM,
    )
    secure = SecureSetup(workdir, zk=True) if args.secured else None
    cluster = BranchCluster(
        workdir / "branches", branches=args.branches, leaves=0, cluster=CLUSTER,
        session_timeout=args.session_timeout, security=secure, agent_tick=0.2,
        agent_jitter=0.5, agent_heartbeat=0.5, agent_stale_after=3.0, zookeeper=ensemble,
    )  # fmt: skip
    figures: dict[str, Any] = {}
    fleet = monitor = None
    try:
        log(f"starting {len(ensemble.servers)} servers and {args.branches} branch agents")
        cluster.start()
        wait_until(
            cluster.tree_ready, timeout=180, what="the branches' tree", interval=0.5,
            ignore=(KazooException, DataError),
        )  # fmt: skip
        config = leaf_config(args, ensemble, secure)
        ids = [f"leaf{i}" for i in range(1, args.leaves + 1)]
        plans = [
            WorkerPlan(config, tuple(ids[w :: args.workers]), args.seed + w)
            for w in range(min(args.workers, args.leaves))
        ]
        fleet = Fleet(plans)
        monitor = Monitor(ensemble.servers).start()
        run = Run(cluster, ensemble.servers, fleet, monitor, args.timeout, args.session_timeout)
        for phase in args.phases:
            log(f"{phase}: {machine_line()}")
            if phase == "storm":
                figures[phase] = storm(run)
            elif phase == "steady":
                figures[phase] = steady(run, args.steady)
            elif phase in ("herd", "crash"):
                figures[phase] = branch_loss(run, crash=phase == "crash")
            elif phase == "root":
                figures[phase] = root_failover(run)
            else:
                figures[phase] = ensemble_restart(run)
            log(f"{phase}: {json.dumps(figures[phase], default=str)}")
    finally:
        if monitor is not None:
            monitor.stop()
        if fleet is not None:
            log("closing the leaves' sessions")
            figures["workers"] = fleet.stop()
        cluster.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # the inspecting client's reconnects
    started = machine_line()
    figures: dict[str, Any] = {}
    failed = ""
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            try:
                figures = measure(args, workdir.path)
            except Exception as exc:
                workdir.failed = True
                failed = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log(f"FAILED: {failed}")
    except KeyboardInterrupt:
        log("interrupted: everything stopped")
        return 130
    header = [
        f"prodstate zk_sessions: {args.leaves} leaves, {args.branches} branches, 3 voters + "
        f"{args.observers} observers, sessions {args.session_timeout:g} s (leaves "
        f"{args.leaf_session_timeout:g} s, full re-read {args.refresh_interval:g} s), tickTime "
        f"{args.tick_time} ms, -Xmx{args.zk_heap}m, {'secured' if args.secured else 'open'}",
        f"start: {started}; end: {machine_line()}",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
    ]
    checks = targets(figures, args.phases)
    print(report(header, figures, checks, failed))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), **figures}, default=str, indent=2))
    return 0 if not failed and all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
