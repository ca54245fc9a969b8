"""Check ``zk_sessions.py``'s simulated leaves against real leaf agents, request for request.

One ZooKeeper server, a ``LocalCluster`` of real agents (``--branches``, ``--leaves``, each
with its Redis; the agent's default tick, jitter, heartbeat and 10 s session), and beside
them ``--simulated`` leaves (``zkleaf.py``) in the same cluster. Both kinds are counted the
same way, from the server: ZooKeeper's ``cons`` gives each session's last request id
(``lcxid``), which advances with every request but pings (agent_cost.py's method), and
``recved`` (pings included). Measured per leaf, real against simulated:

1. with the agent's defaults (a full re-read every 60 s): the requests a leaf makes from
   its start until it has settled (session set-up, two registrations, its reads), and its
   requests and packets per minute at rest over ``--rest`` s;
2. on a second cluster whose leaves (real and simulated) re-read everything only every
   hour, so that nothing periodic blurs an event: a non-root branch's agent is killed
   (every leaf's watch on its member znode fires once its session expires), another branch's
   machine crashes (agent and Redis: its leaves go stale and move before that), then the
   root's machine crashes (every leaf goes stale and follows the new root). The
   simulated leaves are told when a Redis dies and when the root stops and starts
   writing its heartbeat (``zkleaf.DataPath``).

The exit status is 0 when every simulated figure is within ``--tolerance`` (relative) or
1 request of the real one, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import statistics
import sys
import time
from pathlib import Path

from benchkit import Workdir, log, machine_line, table, terminate_as_interrupt
from kazoo.exceptions import KazooException
from zkfleet import BranchCluster, Fleet
from zkleaf import LeafConfig
from zkmonitor import CONNECTION
from zkworker import WorkerPlan

from prodstate.core.model import DataError, Tier
from prodstate.testing.secure import SecureSetup
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import ZooKeeperServer
from prodstate.zk.acl import prodstate_acl
from prodstate.zk.client import read_root
from prodstate.zk.paths import Layout

CLUSTER = "dev"


def cons(zk: ZooKeeperServer) -> dict[int, tuple[int, int]]:
    """Session id -> (lcxid, recved) of its connection."""
    found = {}
    for match in CONNECTION.finditer(zk.four_letter_word("cons")):
        fields = dict(f.split("=", 1) for f in match["fields"].split(",") if "=" in f)
        found[int(fields["sid"], 16)] = (
            int(fields.get("lcxid", "0x0"), 16),
            int(fields.get("recved", 0)),
        )
    return found


class Pair:
    """A cluster of real agents with simulated leaves beside them (the leaves of both kinds
    start together once every branch is registered fresh)."""

    def __init__(self, args: argparse.Namespace, workdir: Path, refresh: float) -> None:
        secure = SecureSetup(workdir, zk=True) if args.secured else None
        extra = ["--refresh-interval", f"{refresh:g}"]
        self.cluster = BranchCluster(
            workdir, branches=args.branches, leaves=0, cluster=CLUSTER,
            session_timeout=10.0, tick_time=2000, agent_args=extra, security=secure,
            agent_tick=0.2, agent_jitter=0.5, agent_heartbeat=0.5, agent_stale_after=3.0,
        )  # fmt: skip
        self.secure = secure
        self.refresh = refresh
        self.args = args
        self.fleet: Fleet | None = None
        self.sim_ids = [f"sim{i}" for i in range(1, args.simulated + 1)]

    @property
    def zk(self) -> ZooKeeperServer:
        assert isinstance(self.cluster.zookeeper, ZooKeeperServer)
        return self.cluster.zookeeper

    def start(self) -> None:
        """The branches, then the real and simulated leaves at once; back once all settled."""
        self.cluster.start()
        wait_until(  # every branch fresh: no member changes under the starting leaves
            self.cluster.tree_ready, timeout=120, what="the branches", interval=0.2,
            ignore=(KazooException, DataError),
        )  # fmt: skip
        auth = acl = None
        if self.secure is not None:
            zk = self.secure.credentials.zookeeper
            auth, acl = (zk.user, zk.password), tuple(prodstate_acl(self.secure.credentials) or ())
        config = LeafConfig(
            hosts=((self.zk.host, self.zk.client_port),), cluster=CLUSTER,
            refresh_interval=self.refresh, auth=auth, acl=acl,
        )  # fmt: skip
        self.fleet = Fleet([WorkerPlan(config, tuple(self.sim_ids), 1)])
        for i in range(1, self.args.leaves + 1):
            self.cluster.add_node(f"leaf{i}", "leaf", start=False)
        for name in self.cluster.names("leaf"):
            self.cluster.redis[name].start()
        for name in self.cluster.names("leaf"):
            self.cluster.agents[name].start(wait=False)
        self.fleet.ask("start")
        self.cluster.wait_for_tree(timeout=120)
        self.fleet.wait(lambda p: p["chose"] >= len(self.sim_ids), 60, "simulated leaves")
        time.sleep(10)  # the second registration (fresh), a few seconds after the first move

    def sessions(self) -> dict[str, int]:
        """Leaf name -> its session (its member znode's owner)."""
        zk, layout = self.cluster.zk(), Layout(CLUSTER)
        found = {}
        for name in [*self.cluster.names("leaf"), *self.sim_ids]:
            stat = zk.exists(layout.member(Tier.LEAF, name))
            found[name] = stat.ephemeralOwner if stat else 0
        return found

    def counters(self) -> dict[str, tuple[int, int]]:
        """Leaf name -> (lcxid, recved) of its session."""
        by_session = cons(self.zk)
        return {name: by_session.get(sid, (0, 0)) for name, sid in self.sessions().items()}

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.cluster.stop()


def means(pair: Pair, values: dict[str, float]) -> tuple[float, float]:
    """(real leaves' mean, simulated leaves' mean) of a per-leaf figure."""
    real = [v for k, v in values.items() if k in pair.cluster.tiers]
    sim = [v for k, v in values.items() if k in pair.sim_ids]
    return statistics.mean(real), statistics.mean(sim)


def at_defaults(args: argparse.Namespace, workdir: Path) -> list[tuple[str, float, float]]:
    pair = Pair(args, workdir, refresh=60.0)
    try:
        pair.start()
        start = pair.counters()
        startup = {k: float(v[0]) for k, v in start.items()}
        log(f"at rest for {args.rest:g} s")
        t0 = time.monotonic()
        time.sleep(args.rest)  # the measured interval
        minutes = (time.monotonic() - t0) / 60
        end = pair.counters()
        requests = {k: (end[k][0] - start[k][0]) / minutes for k in end}
        packets = {k: (end[k][1] - start[k][1]) / minutes for k in end}
        return [
            ("start-up requests (to settled)", *means(pair, startup)),
            ("requests per minute at rest", *means(pair, requests)),
            ("packets per minute at rest (pings incl.)", *means(pair, packets)),
        ]
    finally:
        pair.stop()


def lose_branch(pair: Pair, victim: str, crash: bool) -> tuple[dict[str, float], list[str]]:
    """Kill branch ``victim``'s agent (and with ``crash`` its Redis); per leaf, the requests
    until its member znode is gone and everything settled, and the leaves it had."""
    cluster, fleet = pair.cluster, pair.fleet
    assert fleet is not None
    report = cluster.inspect()  # who follows whom (an agent lost earlier is a "problem")
    address = cluster.advertised(victim)
    under = [n for n, m in report.masters.items() if m == address and n in cluster.tiers]
    under += [n for n, p in fleet.merged("parents").items() if p == address]
    before = pair.counters()
    log(f"{'crashing' if crash else 'killing the agent of'} branch {victim}")
    cluster.agents[victim].kill()
    if crash:
        cluster.redis[victim].kill()
        fleet.ask("cut", address, time.monotonic())
    path = Layout(CLUSTER).member(Tier.BRANCH, victim)
    wait_until(lambda: cluster.zk().exists(path) is None, timeout=40, what="expiry")
    time.sleep(6)
    after = pair.counters()
    return {k: float(after[k][0] - before[k][0]) for k in after}, under


def events(args: argparse.Namespace, workdir: Path) -> list[tuple[str, float, float]]:
    pair = Pair(args, workdir, refresh=3600.0)
    try:
        pair.start()
        fleet, cluster = pair.fleet, pair.cluster
        assert fleet is not None
        root = read_root(cluster.zk(), CLUSTER)
        assert root is not None
        others = [b for b in cluster.names("branch") if b != root.node_id]
        rows = []
        for victim, crash in ((others[0], False), (others[1], True)):
            loss, under = lose_branch(pair, victim, crash)
            kind = "crash" if crash else "herd"
            rows.append((f"{kind}: requests per leaf", *means(pair, loss)))
            affected = {k: v for k, v in loss.items() if k in under}
            rows.append((f"{kind}: requests per affected leaf", *means(pair, affected)))
        before = pair.counters()
        log(f"crashing the root {root.node_id}")
        cluster.agents[root.node_id].kill()
        cluster.redis[root.node_id].kill()
        at = time.monotonic()
        fleet.ask("cut", root.address, at)
        fleet.ask("source", at)
        wait_until(
            lambda: (r := read_root(cluster.zk(), CLUSTER)) and r.node_id != root.node_id
            and r.replid,
            timeout=60, what="a new root", ignore=(Exception,),
        )  # fmt: skip
        fleet.ask("source", None)
        time.sleep(8)
        after = pair.counters()
        failover = {k: float(after[k][0] - before[k][0]) for k in after}
        return [*rows, ("root failover: requests per leaf", *means(pair, failover))]
    finally:
        pair.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Simulated leaves against real leaf agents (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--branches", type=int, default=5, help="real branch agents, the root among them")
    add("--leaves", type=int, default=8, help="real leaf agents")
    add("--simulated", type=int, default=24, help="simulated leaves beside them")
    add("--rest", type=float, default=120.0, help="at-rest window, s")
    add("--secured", action="store_true", help="agents authenticate and set their ACLs")
    add("--tolerance", type=float, default=0.15, help="allowed relative difference")
    add("--dir", type=Path, help="keep work dirs (logs) here")
    args = parser.parse_args(argv)
    if args.branches < 4 or args.leaves < 1 or args.simulated < 1 or args.rest < 60:
        parser.error("--branches >= 4, --leaves and --simulated >= 1, --rest >= 60")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    started = machine_line()
    rows: list[tuple[str, float, float]] = []
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            try:
                rows += at_defaults(args, workdir.path / "defaults")
                rows += events(args, workdir.path / "events")
            except Exception:
                workdir.failed = True
                raise
    except KeyboardInterrupt:
        log("interrupted: everything stopped")
        return 130
    table_rows = [["per leaf", "real agent", "simulated", "within"]]
    ok = True
    for name, real, sim in rows:
        close = abs(sim - real) <= max(1.0, args.tolerance * real)
        ok &= close
        table_rows.append([name, f"{real:.2f}", f"{sim:.2f}", "yes" if close else "NO"])
    print(
        f"prodstate zk_fidelity: {args.branches} branches, {args.leaves} real leaves, "
        f"{args.simulated} simulated, {'secured' if args.secured else 'open'}\n"
        f"start: {started}; end: {machine_line()}\n"
        f"command: {shlex.join([sys.executable, *sys.argv])}\n\n{table(table_rows)}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
