"""The agent against real ZooKeeper, real redis-server and real agent processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from prodstate.parent import choose_parent
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster

SESSION = 2.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """1 ZooKeeper, 3 branches, 12 leaves, each with its agent."""
    with LocalCluster(tmp_path, branches=3, leaves=12, session_timeout=SESSION) as c:
        c.wait_for_tree(timeout=60)
        yield c


def full_syncs(cluster: LocalCluster) -> dict[str, int]:
    """Full resyncs served so far by each running Redis."""
    return {n: s.info("stats")["sync_full"] for n, s in cluster.redis.items() if s.running}


def new_full_syncs(cluster: LocalCluster, before: dict[str, int]) -> dict[str, int]:
    """Full resyncs served since ``before``, by node (nodes that served none are left out)."""
    now = full_syncs(cluster)
    return {n: c - before.get(n, 0) for n, c in now.items() if c != before.get(n, 0)}


def confirmed_write(cluster: LocalCluster, key: str, value: str, timeout: float = 20) -> str:
    """SET at the current root, confirmed by WAIT for one branch; retried through failover."""

    def attempt() -> str | None:
        root = cluster.inspect().root
        if root is None:
            return None
        server = cluster.redis[root.node_id]
        conn = server.client(socket_timeout=2)
        try:
            conn.set(key, value)
            return root.node_id if conn.wait(1, 1000) >= 1 else None
        finally:
            conn.close()

    return wait_until(
        attempt, timeout=timeout, what=f"a confirmed write of {key}", ignore=(redis.RedisError,)
    )


def wait_everywhere(cluster: LocalCluster, key: str, value: str, timeout: float = 20) -> None:
    """Wait until every running Redis holds ``key`` = ``value``."""
    for name, server in cluster.redis.items():
        if server.running:
            wait_until(
                lambda s=server: s.client().get(key) == value,
                timeout=timeout,
                what=f"{key} on {name}",
            )


def test_tree_forms_and_a_root_write_reaches_every_leaf(cluster):
    report = cluster.inspect()
    assert report.healthy, report.problems
    branches = set(cluster.names("branch"))
    assert report.root.node_id in branches
    parents = {report.masters[leaf] for leaf in cluster.names("leaf")}
    non_root = {cluster.redis[b].address for b in branches - {report.root.node_id}}
    assert parents == non_root, "leaves spread over the non-root branches, never on the root"
    confirmed_write(cluster, "hello", "world")
    wait_everywhere(cluster, "hello", "world")


def test_root_machine_crash_promotes_a_branch_without_full_resyncs(cluster):
    old_root = cluster.root_name()
    confirmed_write(cluster, "before", "1")
    wait_everywhere(cluster, "before", "1")
    before = full_syncs(cluster)

    cluster.agents[old_root].kill()
    cluster.redis[old_root].kill()

    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    assert report.root.epoch == 2
    assert confirmed_write(cluster, "after", "2") == report.root.node_id
    wait_everywhere(cluster, "after", "2")
    wait_everywhere(cluster, "before", "1")
    assert new_full_syncs(cluster, before) == {}


def test_branch_crash_moves_only_its_leaves_without_full_resyncs(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    victim = next(b for b in cluster.names("branch") if b != root)
    victim_address = cluster.redis[victim].address
    orphans = {leaf for leaf in cluster.names("leaf") if report.masters[leaf] == victim_address}
    assert orphans, "rendezvous hashing gave the victim no leaf; pick a larger tree"
    before = full_syncs(cluster)

    cluster.agents[victim].kill()
    cluster.redis[victim].kill()

    after = cluster.wait_for_tree(timeout=30)
    moved = {leaf for leaf in cluster.names("leaf") if after.masters[leaf] != report.masters[leaf]}
    assert moved == orphans
    confirmed_write(cluster, "after-branch-loss", "x")
    wait_everywhere(cluster, "after-branch-loss", "x")
    assert new_full_syncs(cluster, before) == {}


def test_a_joining_branch_takes_only_the_leaves_it_wins(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    confirmed_write(cluster, "seed", "1")
    wait_everywhere(cluster, "seed", "1")

    cluster.add_node("branch4", "branch")
    after = cluster.wait_for_tree(timeout=30)

    live = [b for b in cluster.names("branch") if b != root]
    winners = {leaf for leaf in cluster.names("leaf") if choose_parent(leaf, live) == "branch4"}
    moved = {leaf for leaf in cluster.names("leaf") if after.masters[leaf] != report.masters[leaf]}
    assert moved == winners
    new_address = cluster.redis["branch4"].address
    assert all(after.masters[leaf] == new_address for leaf in winners)


def test_root_redis_restarted_empty_does_not_propagate(cluster):
    old_root = cluster.root_name()
    confirmed_write(cluster, "precious", "data")
    wait_everywhere(cluster, "precious", "data")

    cluster.redis[old_root].restart()  # persistence is off: it comes back empty

    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    wait_everywhere(cluster, "precious", "data")
    confirmed_write(cluster, "later", "yes")
    wait_everywhere(cluster, "later", "yes")


def test_root_agent_frozen_past_its_session_loses_no_acknowledged_write(cluster):
    old_root = cluster.root_name()
    old = cluster.redis[old_root].client(socket_timeout=1)
    confirmed: list[str] = []

    def write_to_old_root(i: int) -> None:
        try:
            old.set(f"w{i}", i)
            if old.wait(1, 200) >= 1:
                confirmed.append(f"w{i}")
        except redis.RedisError:
            pass

    cluster.agents[old_root].pause()
    i = 0
    # Keep writing to the frozen root's Redis until a new root is elected and has fenced it.
    while (root := cluster.inspect().root) is None or root.node_id == old_root:
        write_to_old_root(i)
        i += 1
    for _ in range(20):
        write_to_old_root(i)
        i += 1
    cluster.agents[old_root].resume()

    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    assert report.masters[old_root] == cluster.redis[report.root.node_id].address
    new_root = cluster.redis[report.root.node_id].client()
    lost = [key for key in confirmed if new_root.get(key) is None]
    assert not lost, f"acknowledged writes lost: {lost}"
    assert confirmed, "no write was acknowledged before the failover"
    confirmed_write(cluster, "after-freeze", "ok")
    wait_everywhere(cluster, "after-freeze", "ok")
