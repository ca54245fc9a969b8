"""Fault scenarios: each injects one fault into a running cluster and heals what it says."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prodstate.model import RootRecord
from prodstate.testing import wait_until
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


def _new_root(cluster: LocalCluster, old: RootRecord, timeout: float = 30) -> RootRecord:
    return wait_until(
        lambda: (r := cluster.inspect().root) is not None and r.epoch > old.epoch and r,
        timeout=timeout,
        what="a new root",
    )


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
    time.sleep(SESSION * 2)  # its registration expires
    cluster.agents[victim].start()


SCENARIOS: dict[str, Callable[[LocalCluster, Writer], None]] = {
    "root_machine_crash": root_machine_crash,
    "root_agent_kill": root_agent_kill,
    "root_zk_cut": root_zk_cut,
    "root_agent_stop": root_agent_stop,
    "branch_kill": branch_kill,
    "leaf_redis_crash": leaf_redis_crash,
    "branch_agent_crash": branch_agent_crash,
}

#: Full resyncs a scenario must cause: one per Redis that comes back empty, else none.
FULL_RESYNCS = {"root_machine_crash": 1, "leaf_redis_crash": 1}


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
