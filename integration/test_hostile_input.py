"""Oversized and malformed znodes on a real cluster: warned about, never acted on."""

from __future__ import annotations

from pathlib import Path

from kazoo.exceptions import NoNodeError

from prodstate.core.model import MAX_ZNODE_BYTES, DataError
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.tree import read_epoch

SESSION = 2.0  # as in conftest.py


def logged(cluster: LocalCluster, name: str, text: str) -> bool:
    return text in cluster.agents[name].log_path.read_text(errors="replace")


def test_oversized_and_malformed_znodes_are_ignored_and_failover_repairs_the_epoch(
    tmp_path: Path,
):
    with LocalCluster(tmp_path, branches=3, leaves=2, session_timeout=SESSION) as cluster:
        cluster.wait_for_tree(timeout=60)
        zk = cluster.zk()
        base = f"/prodstate/{cluster.cluster}"
        old_root = cluster.inspect().root
        huge = b'{"node_id": "huge", "tier": "branch", "address": "127.0.0.1:1", "pad": "'
        huge += b"x" * MAX_ZNODE_BYTES + b'"}'
        zk.create(f"{base}/members/branch/huge", huge)
        # As a branch's registration does: leaves list the branches again at once (one
        # that is not announced so is read at their next full read).
        zk.set(f"{base}/members/branch", b"")
        zk.create(f"{base}/election/n_", b"\xff" * (MAX_ZNODE_BYTES + 10), sequence=True)
        zk.create(f"{base}/election/n_", b"bad/id", sequence=True)
        zk.set(f"{base}/epoch", b"{not json")

        # Every agent re-reads on the watches that fire, warns, and keeps the tree.
        for name in cluster.agents:
            wait_until(
                lambda n=name: logged(cluster, n, "ignoring malformed member znode"),
                timeout=15,
                what=f"{name} to warn about the oversized member",
            )
        assert logged(cluster, old_root.node_id, "ignoring election znode")
        assert cluster.inspect().healthy
        cluster.confirmed_write("k", "before")

        # The malformed epoch znode is never taken for "no root ever": the live root repairs
        # it from the record it wrote itself, and the failover claims the next epoch.
        wait_until(
            lambda: logged(cluster, old_root.node_id, "repairing the epoch znode"),
            timeout=15,
            what="the root to repair the epoch znode",
        )
        assert read_epoch(zk, cluster.cluster) == old_root.epoch
        cluster.agents[old_root.node_id].kill()
        cluster.redis[old_root.node_id].kill()
        new_root = cluster.wait_for_new_root(old_root.epoch, timeout=30)
        assert new_root.epoch == old_root.epoch + 1
        assert read_epoch(zk, cluster.cluster) == new_root.epoch
        report = cluster.wait_for_tree(timeout=30)
        assert "127.0.0.1:1" not in report.masters.values()
        cluster.confirmed_write("k", "after")
        cluster.wait_everywhere("k", "after")

        # Deleted by hand: the agents re-create it (empty: "no root ever") and the live root
        # puts its own record back, so the next claim cannot go back to epoch 1.
        zk.delete(f"{base}/epoch")
        wait_until(
            lambda: read_epoch(zk, cluster.cluster) == new_root.epoch,
            timeout=30,
            what="the epoch znode re-created with the live root's epoch",
            ignore=(NoNodeError, DataError),
        )
        healed = cluster.wait_for_tree(timeout=30).root
        assert healed is not None and (healed.node_id, healed.epoch) == (
            new_root.node_id,
            new_root.epoch,
        )
