"""Fault scenarios: each injects one fault into a running cluster and heals what it says."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prodstate.model import RootRecord
from prodstate.testing import ZooKeeperEnsemble, wait_until
from prodstate.testing.cluster import LocalCluster

from .harness import FaultResult, StaleMonitor, Writer, check_after

#: Session timeout of the agents in these scenarios, seconds.
SESSION = 2.0
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
        time.sleep(SESSION)
    finally:
        cluster.agents[old.node_id].resume()


def branch_kill(cluster: LocalCluster, writer: Writer) -> None:
    """A non-root branch's agent and Redis SIGKILLed; it stays down."""
    victim = _other_branch(cluster, _root(cluster))
    cluster.agents[victim].kill()
    cluster.redis[victim].kill()
    writer.mark("inject")


def leaf_redis_crash(cluster: LocalCluster, writer: Writer) -> None:
    """A leaf's Redis SIGKILLed, its agent alive; it restarts a moment later, empty."""
    victim = cluster.names("leaf")[0]
    cluster.redis[victim].kill()
    writer.mark("inject")
    time.sleep(1.0)
    cluster.redis[victim].start()


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


#: Malformed member and election znodes: garbage, truncated JSON, wrong types, an intruder.
GARBAGE = {
    "members/branch/garbage": b"\x00\xff not json",
    "members/branch/truncated": b'{"node_id": "truncated", "tier": "bra',
    "members/leaf/wrongtypes": b'{"node_id": 7, "tier": ["leaf"], "address": true}',
    "members/branch/impostor": b'{"node_id": "someone-else", "tier": "branch",'
    b' "address": "127.0.0.1:1"}',
    "election/n_-000000000": b"intruder",  # sorts before every real candidate
}


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
    "root_zk_cut": root_zk_cut,
    "root_agent_stop": root_agent_stop,
    "branch_kill": branch_kill,
    "leaf_redis_crash": leaf_redis_crash,
    "branch_agent_crash": branch_agent_crash,
    "zk_leader_kill": zk_leader_kill,
    "malformed_znodes": malformed_znodes,
}

#: Full resyncs a scenario must cause: one per Redis that comes back empty, else none.
FULL_RESYNCS = {"root_machine_crash": 1, "leaf_redis_crash": 1, "malformed_znodes": 1}


def run_scenario(name: str, workdir: Path, writes: int = WRITES) -> FaultResult:
    """A fresh cluster (3 ZooKeepers, 3 branches, 6 leaves), writes, the fault, the checks."""
    inject = SCENARIOS[name]
    with LocalCluster(
        workdir, branches=3, leaves=6, zk_size=3, session_timeout=SESSION, zk_proxies=True
    ) as cluster:
        cluster.wait_for_tree(timeout=90)
        before = cluster.full_syncs()
        writer = Writer(cluster, prefix=name)
        with writer, StaleMonitor(cluster, writer) as monitor:
            writer.wait_for_more(writes)
            inject(cluster, writer)
            cluster.wait_for_tree(timeout=60)
            writer.wait_for_more(writes)
        if writer.error is not None:
            raise RuntimeError(f"writer died: {writer.error!r}")
        return check_after(cluster, writer, before, scenario=name, stale_seconds=monitor.worst)
