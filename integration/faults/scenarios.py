"""Fault scenarios: each injects one fault into a running cluster and heals what it says."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prodstate.client import Client
from prodstate.core.maintenance import Switchover
from prodstate.core.model import DataError, RedisState, RootRecord
from prodstate.redis.control import read_state
from prodstate.redis.link import Link
from prodstate.testing import ZooKeeperEnsemble, wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.tree import read_epoch
from prodstate.zk.client import read_root
from prodstate.zk.maintenance import clear_switchover, request_switchover

from .harness import FaultResult, StaleMonitor, Writer, check_after
from .silent import BUFFER_BACKLOG, SILENT_SCENARIOS

#: Session timeout of the agents in these scenarios, seconds.
SESSION = 2.0
#: How long every ZooKeeper server stays down in zk_all_down, seconds.
ZK_OUTAGE = 30.0
#: repl-backlog-size (MB) and repl-timeout (s) in the leaf partition scenarios: small enough
#: for a partition to outlast them in a test.
BACKLOG_MB = 1
REPL_TIMEOUT = 4
#: Confirmed writes wanted before the fault and again after the tree healed.
WRITES = 200


def _root(cluster: LocalCluster) -> RootRecord:
    report = cluster.wait_for_tree(timeout=60)
    assert report.root is not None
    return report.root


def _new_root(cluster: LocalCluster, old: RootRecord) -> RootRecord:
    return cluster.wait_for_new_root(old.epoch)


def _other_branch(cluster: LocalCluster, root: RootRecord) -> str:
    return next(b for b in cluster.names("branch") if b != root.node_id)


def _state(cluster: LocalCluster, name: str) -> RedisState:
    """Node ``name``'s Redis as the agent reads it (master and replicas by advertised address)."""
    with Link(cluster.redis[name].address) as link:
        return read_state(link)


def _children(cluster: LocalCluster, name: str) -> list[str]:
    """Running leaves whose Redis replicates from node ``name``."""
    address = cluster.advertised(name)
    return [
        leaf
        for leaf in cluster.names("leaf")
        if cluster.redis[leaf].running and _state(cluster, leaf).master == address
    ]


def root_machine_crash(cluster: LocalCluster, writer: Writer) -> None:
    """Root agent and Redis SIGKILLed; the machine comes back, its Redis empty."""
    old = _root(cluster)
    cluster.agents[old.node_id].kill()
    cluster.redis[old.node_id].kill()
    writer.mark("inject")
    _new_root(cluster, old)
    cluster.redis[old.node_id].start()
    cluster.agents[old.node_id].start()


def root_agent_kill(cluster: LocalCluster, writer: Writer) -> None:
    """Root agent SIGKILLed, its Redis alive; the agent restarts after the failover."""
    old = _root(cluster)
    cluster.agents[old.node_id].kill()
    writer.mark("inject")
    _new_root(cluster, old)
    cluster.agents[old.node_id].start()


def root_agent_restart(cluster: LocalCluster, writer: Writer) -> None:
    """Root agent SIGKILLed and started again at once: it resumes its ZooKeeper session,
    so the root keeps its epoch and nothing fails over."""
    old = _root(cluster)
    cluster.agents[old.node_id].kill()
    writer.mark("inject")
    cluster.agents[old.node_id].start()
    writer.wait_for_more(WRITES // 4)
    now = _root(cluster)
    assert (now.node_id, now.epoch) == (old.node_id, old.epoch), f"it failed over: {now}"


def switchover(cluster: LocalCluster, writer: Writer) -> None:
    """``prodstate switchover`` under load: the root fences, waits for the furthest branch
    and hands over; the old root becomes its replica (partial resyncs only)."""
    old = _root(cluster)
    writer.mark("inject")
    argv = [sys.executable, "-m", "prodstate", "switchover", "--zk", cluster.zk_hosts]
    done = subprocess.run(
        [*argv, "--cluster", cluster.cluster, "--json"], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr
    moved = json.loads(done.stdout)
    now = _root(cluster)
    assert (now.node_id, now.epoch) == (moved["to"], old.epoch + 1) and now.node_id != old.node_id
    writer.wait_for_more(WRITES // 4)


def switchover_dead_target(cluster: LocalCluster, writer: Writer) -> None:
    """A switchover to a branch whose agent was just killed (its session, and so its
    member record, lingers): the root hands its Redis the master role, the target never
    claims, and once its session expires another branch, following the target's Redis,
    must still be known to hold the tree's history, claim and serve."""
    old = _root(cluster)
    target = _other_branch(cluster, old)
    zk = cluster.zk()
    cluster.agents[target].kill()
    writer.mark("inject")
    # Asked at once, as ``prodstate switchover --to TARGET`` asks: the command, started on a
    # loaded machine, can come after the dead target's session has expired, and refuse.
    asked = time.time()
    request = Switchover(
        uuid.uuid4().hex, old.node_id, old.epoch, target, "faults", asked, asked + 30
    )
    request_switchover(zk, cluster.cluster, request)
    try:
        now = cluster.wait_for_new_root(old.epoch)
    finally:
        clear_switchover(zk, cluster.cluster, request.id)
    assert now.node_id != target, f"the dead target serves: {now}"
    cluster.agents[target].start()
    writer.wait_for_more(WRITES // 4)


def root_agent_sigterm(cluster: LocalCluster, writer: Writer) -> None:
    """The root's agent stopped with SIGTERM (an upgrade): it hands the root to the best
    branch first, then exits; started again, it rejoins as a branch."""
    old = _root(cluster)
    writer.mark("inject")
    cluster.agents[old.node_id].stop()
    handed = read_root(cluster.zk(), cluster.cluster)  # as the stopped agent left it
    cluster.agents[old.node_id].start()
    assert handed is not None and handed.node_id != old.node_id, f"not handed over: {handed}"
    now = _root(cluster)
    assert (now.node_id, now.epoch) == (handed.node_id, old.epoch + 1), f"it moved again: {now}"
    writer.wait_for_more(WRITES // 4)


def root_zk_cut(cluster: LocalCluster, writer: Writer) -> None:
    """Root agent cut off from ZooKeeper only; the partition heals after the failover."""
    old = _root(cluster)
    cluster.cut_zk(old.node_id)
    writer.mark("inject")
    try:
        _new_root(cluster, old)
    finally:
        cluster.heal_zk(old.node_id)


def root_agent_stop(cluster: LocalCluster, writer: Writer) -> None:
    """Root agent SIGSTOPped past its session timeout, then SIGCONT."""
    old = _root(cluster)
    cluster.agents[old.node_id].pause()
    writer.mark("inject")
    try:
        _new_root(cluster, old)
        writer.wait_for_more(WRITES // 2)  # the new root serves while the old one is frozen
    finally:
        cluster.agents[old.node_id].resume()


def branch_kill(cluster: LocalCluster, writer: Writer) -> None:
    """A non-root branch's agent and Redis SIGKILLed; it stays down."""
    victim = _other_branch(cluster, _root(cluster))
    cluster.agents[victim].kill()
    cluster.redis[victim].kill()
    writer.mark("inject")


def leaf_redis_crash(cluster: LocalCluster, writer: Writer) -> None:
    """A leaf's Redis SIGKILLed, its agent alive; it restarts a moment later from the RDB
    its last full sync left, as a replica of its parent (partial resync)."""
    victim = cluster.names("leaf")[0]
    cluster.redis[victim].kill()
    writer.mark("inject")
    writer.wait_for_more(WRITES // 4)  # writes go on while the leaf's Redis is down
    cluster.redis[victim].start()


def branch_redis_crash(cluster: LocalCluster, writer: Writer) -> None:
    """A non-root branch's Redis SIGKILLed, its agent alive: its leaves move; the Redis
    restarts from the RDB its last full sync left, resumes partially, and the leaves it wins
    by rendezvous move back."""
    victim = _other_branch(cluster, _root(cluster))
    cluster.redis[victim].kill()
    writer.mark("inject")
    wait_until(lambda: not _children(cluster, victim), timeout=30, what=f"{victim}'s leaves moved")
    cluster.redis[victim].start()


def root_redis_crash(cluster: LocalCluster, writer: Writer) -> None:
    """The root's Redis SIGKILLed, its agent alive: the agent steps down, another branch is
    elected; the Redis (a master: no RDB) restarts empty and rejoins as a replica."""
    old = _root(cluster)
    cluster.redis[old.node_id].kill()
    writer.mark("inject")
    _new_root(cluster, old)
    cluster.redis[old.node_id].start()


def branch_agent_crash(cluster: LocalCluster, writer: Writer) -> None:
    """A non-root branch's agent SIGKILLed, its Redis alive; the agent restarts."""
    victim = _other_branch(cluster, _root(cluster))
    cluster.agents[victim].kill()
    writer.mark("inject")
    path = f"/prodstate/{cluster.cluster}/members/branch/{victim}"
    wait_until(lambda: cluster.zk().exists(path) is None, timeout=30, what="its session gone")
    cluster.agents[victim].start()


def zk_leader_kill(cluster: LocalCluster, writer: Writer) -> None:
    """The ZooKeeper ensemble's leader SIGKILLed; it restarts once a new leader serves."""
    ensemble = cluster.zookeeper
    assert isinstance(ensemble, ZooKeeperEnsemble)
    leader = ensemble.leader()
    leader.kill()
    writer.mark("inject")
    wait_until(
        lambda: any(s is not leader and s.mode() == "leader" for s in ensemble),
        timeout=30,
        what="a new ZooKeeper leader",
    )
    leader.start()


def zk_all_down(cluster: LocalCluster, writer: Writer) -> None:
    """Every ZooKeeper server stopped for ZK_OUTAGE seconds, then started again."""
    ensemble = cluster.zookeeper
    assert isinstance(ensemble, ZooKeeperEnsemble)
    for server in ensemble:
        server.stop()
    writer.mark("inject")
    time.sleep(ZK_OUTAGE)  # the outage's length is the fault itself, not a wait for a state
    ensemble.start()


def _leaf_with_parent(cluster: LocalCluster) -> tuple[str, str]:
    """A leaf and the branch it replicates from."""
    by_address = {cluster.advertised(b): b for b in cluster.names("branch")}
    for leaf in cluster.names("leaf"):
        parent = by_address.get(_state(cluster, leaf).master)
        if parent is not None:
            return leaf, parent
    raise AssertionError("no leaf replicates from a branch")


def leaf_partition_short(cluster: LocalCluster, writer: Writer) -> None:
    """A leaf machine cut off from everything (ZooKeeper and Redis) for less than its session
    timeout while writes go on; healed, it catches up from where it was."""
    leaf, _ = _leaf_with_parent(cluster)
    cluster.partition(leaf)
    writer.mark("inject")
    try:
        writer.wait_for_more(WRITES // 4)
    finally:
        cluster.heal_partition(leaf)


def leaf_partition_long(cluster: LocalCluster, writer: Writer) -> None:
    """A leaf machine cut off past its session and past its parent's repl-timeout while more
    than the backlog is written; healed, it must take a full resync and miss nothing."""
    leaf, parent = _leaf_with_parent(cluster)
    address = cluster.advertised(leaf)
    cluster.partition(leaf)
    writer.mark("inject")
    try:
        bulk = "x" * 64 * 1024
        with Client(cluster.zk_hosts, cluster.cluster, timeout=15) as client:
            for i in range(BACKLOG_MB * 16 * 3 // 2):  # 1.5 backlogs of 64 KiB values
                client.set(f"bulk:{i}", bulk)
        wait_until(
            lambda: address not in _state(cluster, parent).replicas,
            timeout=30,
            what=f"{parent} to drop the partitioned {leaf}",
        )
    finally:
        cluster.heal_partition(leaf)


def branch_delay(cluster: LocalCluster, writer: Writer) -> None:
    """Everything the root machine sends delayed 200 +- 50 ms (netem-style, in order) for
    several session timeouts: writes slow down but nobody fails over."""
    old = _root(cluster)
    cluster.slow_down(old.node_id, 0.2, 0.05)
    writer.mark("inject")
    try:
        writer.wait_for_more(WRITES // 10, timeout=90)
        time.sleep(4 * SESSION)  # the delay's length is the fault itself: sessions must hold
        root = cluster.wait_for_tree(timeout=30).root
        assert root is not None and root.epoch == old.epoch, f"latency caused a failover: {root}"
    finally:
        cluster.restore_speed(old.node_id)


#: Malformed member and election znodes: garbage, truncated JSON, wrong types, an intruder.
GARBAGE = {
    "members/branch/garbage": b"\x00\xff not json",
    "members/branch/truncated": b'{"node_id": "truncated", "tier": "bra',
    "members/leaf/wrongtypes": b'{"node_id": 7, "tier": ["leaf"], "address": true}',
    "members/branch/impostor": b'{"node_id": "someone-else", "tier": "branch",'
    b' "address": "127.0.0.1:1"}',
    "election/n_-000000000": b"intruder",  # sorts before every real candidate
}


def malformed_root_epoch(cluster: LocalCluster, writer: Writer) -> None:
    """Garbage written over the live root and epoch znodes: the root repairs both, nobody
    claims or follows anything else; then the root machine crashes and the failover goes on
    from the repaired epoch."""
    old = _root(cluster)
    zk = cluster.zk()
    base = f"/prodstate/{cluster.cluster}"
    zk.set(f"{base}/root", b"\x00\xff not json")
    zk.set(f"{base}/epoch", b'{"epoch": "seven", "node_id": ')
    writer.mark("inject")
    wait_until(
        lambda: cluster.inspect().root == old and read_epoch(zk, cluster.cluster) == old.epoch,
        timeout=30,
        what="the root to repair its znodes",
        ignore=(DataError,),  # the garbage, until it is repaired
    )
    writer.wait_for_more(WRITES // 4)
    root_machine_crash(cluster, writer)
    assert read_epoch(zk, cluster.cluster) == old.epoch + 1


def rolling_restart(cluster: LocalCluster, writer: Writer) -> None:
    """Every branch in turn, the root last: agent and Redis stopped (SIGTERM: Redis saves its
    dataset), started again, and the tree healed before the next."""
    root = _root(cluster)
    order = [b for b in cluster.names("branch") if b != root.node_id] + [root.node_id]
    for name in order:
        if name == root.node_id:
            writer.mark("inject")  # the failover figure: from the root's restart
        cluster.agents[name].stop()
        cluster.redis[name].stop()
        cluster.redis[name].start()
        cluster.agents[name].start()
        cluster.wait_for_tree(timeout=60)
        writer.wait_for_more(WRITES // 4)


def malformed_znodes(cluster: LocalCluster, writer: Writer) -> None:
    """Garbage written into prodstate's znodes, then the root machine crashes: the election
    and the tree must ignore the garbage (no crash loop, no REPLICAOF to it)."""
    zk = cluster.zk()
    base = f"/prodstate/{cluster.cluster}"
    for path, data in GARBAGE.items():
        zk.create(f"{base}/{path}", data, makepath=True)
    writer.mark("inject")
    root_machine_crash(cluster, writer)
    for name, server in cluster.redis.items():
        if server.running and server.info("replication").get("master_port") == 1:
            raise AssertionError(f"{name} was pointed at the impostor's address")


SCENARIOS: dict[str, Callable[[LocalCluster, Writer], None]] = {
    "root_machine_crash": root_machine_crash,
    "root_agent_kill": root_agent_kill,
    "root_agent_restart": root_agent_restart,
    "root_agent_sigterm": root_agent_sigterm,
    "switchover": switchover,
    "switchover_dead_target": switchover_dead_target,
    "root_zk_cut": root_zk_cut,
    "root_agent_stop": root_agent_stop,
    "branch_kill": branch_kill,
    "leaf_redis_crash": leaf_redis_crash,
    "branch_agent_crash": branch_agent_crash,
    "zk_leader_kill": zk_leader_kill,
    "malformed_znodes": malformed_znodes,
    "branch_redis_crash": branch_redis_crash,
    "root_redis_crash": root_redis_crash,
    "leaf_partition_short": leaf_partition_short,
    "leaf_partition_long": leaf_partition_long,
    "zk_all_down": zk_all_down,
    "branch_delay": branch_delay,
    "malformed_root_epoch": malformed_root_epoch,
    "rolling_restart": rolling_restart,
    **SILENT_SCENARIOS,
}

#: Scenarios that take a minute or more.
LONG = frozenset(
    {"zk_all_down", "leaf_partition_long", "branch_delay", "rolling_restart"}
    | {"branch_root_cut", "root_one_cut", "branch_redis_hang", "link_flap", "leaf_output_buffer"}
)
#: Scenarios whose mechanism a scenario kept in CI already exercises (named after each),
#: so CI runs one scenario per way of failing over or healing.
COVERED = frozenset(
    {
        "root_agent_restart",  # agent_lifecycle's killed-and-restarted agents test
        "root_agent_sigterm",  # switchover (the same hand-over)
        "root_agent_stop",  # root_agent_kill (session expiry with the Redis alive)
        "branch_agent_crash",  # branch_kill
        "branch_redis_crash",  # branch_kill; agent_lifecycle's branch Redis down test
        "leaf_redis_crash",  # test_redisctl's restarted replica resuming partially
        "malformed_znodes",  # malformed_root_epoch; test_hostile_input
        "leaf_partition_short",  # leaf_link_cut (a leaf cut from its branch)
    }
)
#: Scenarios left out of the default test run (CI). Run them with ``pytest -m slow
#: integration/faults`` or ``python -m integration.faults.report``.
SLOW = LONG | COVERED

#: Cluster options beyond the defaults, by scenario.
CLUSTER_OPTIONS: dict[str, dict[str, Any]] = {
    "leaf_partition_short": {"redis_proxies": True},
    "leaf_partition_long": {
        "redis_proxies": True,
        "agent_args": ["--backlog-size", f"{BACKLOG_MB}mb"],
        "redis_config": {"repl-timeout": str(REPL_TIMEOUT)},
    },
    "branch_delay": {"redis_proxies": True},
    "rolling_restart": {"redis_config": {"save": '"3600 1"'}},
    **{name: {"redis_proxies": True} for name in SILENT_SCENARIOS},
    "leaf_output_buffer": {
        "redis_proxies": True,
        "agent_args": ["--backlog-size", BUFFER_BACKLOG],
    },
}

#: Full resyncs a scenario may cause (a range): one per Redis that comes back without the
#: data it had, else none. A replica's Redis keeps the RDB its last full sync wrote, and the
#: agent keeps "replicaof" in its redis.conf (CONFIG REWRITE): restarted after a crash, it
#: loads that RDB and resumes with a partial resync. A master keeps no RDB (persistence off,
#: diskless syncs): it returns empty and needs one full resync.
FULL_RESYNCS: dict[str, range] = {
    "root_machine_crash": range(1, 2),
    "malformed_znodes": range(1, 2),
    "root_redis_crash": range(1, 2),
    "leaf_partition_long": range(1, 2),
    "malformed_root_epoch": range(1, 2),
    # The old root's Redis (saving on SIGTERM) resumes partially if the new root made it a
    # replica before it stopped, else it returns as a master with a new replication id.
    "rolling_restart": range(0, 2),
    # The cut root took heartbeats and writes no branch received before it gave up: its
    # history diverged from the new root's, and it must take a full copy when healed.
    "root_all_cut": range(1, 2),
    # The same for the root cut from both branches in turn.
    "root_cut_in_turn": range(1, 2),
    # The dropped leaf missed more than the backlog (always so for a replica dropped at its
    # output-buffer limit in Redis 7): one full copy from its new branch.
    "leaf_output_buffer": range(1, 2),
}
NO_FULL_RESYNC = range(0, 1)


def run_scenario(name: str, workdir: Path, writes: int = WRITES) -> FaultResult:
    """A fresh cluster (3 ZooKeepers, 3 branches, 6 leaves), writes, the fault, the checks."""
    inject = SCENARIOS[name]
    with LocalCluster(
        workdir,
        branches=3,
        leaves=6,
        zk_size=3,
        session_timeout=SESSION,
        zk_proxies=True,
        **CLUSTER_OPTIONS.get(name, {}),
    ) as cluster:
        cluster.wait_settled(timeout=90)
        marks = cluster.log_marks()
        writer = Writer(cluster, prefix=name)
        with writer, StaleMonitor(cluster, writer) as monitor:
            writer.wait_for_more(writes)
            inject(cluster, writer)
            cluster.wait_for_tree(timeout=60)
            healed = time.monotonic()
            writer.wait_for_more(writes)
        if writer.error is not None:
            raise RuntimeError(f"writer died: {writer.error!r}")
        result = check_after(cluster, writer, marks, scenario=name, stale_seconds=monitor.worst)
        m = writer.marks
        if "fresh" in m:
            result.fresh_seconds = m["fresh"] - m["inject"]
        if "heal" in m:
            result.heal_seconds = max(0.0, healed - m["heal"])
        return result
