"""The agent against real ZooKeeper, real redis-server and real agent processes."""

from __future__ import annotations

import threading
import time

import redis
from kazoo.exceptions import NoNodeError

from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.model import RootRecord
from prodstate.core.rendezvous import choose_parent
from prodstate.redis.feed import channel_of
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster

SESSION = 2.0  # as in conftest.py
HEARTBEAT_CHANNEL = channel_of(HEARTBEAT_KEY)


def assert_old_root_rejoined_without_loss(
    cluster: LocalCluster, old_root: str, confirmed: list[str]
) -> None:
    """A new root serves, the old one replicates from it, and it holds every confirmed key."""
    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    assert report.masters[old_root] == cluster.redis[report.root.node_id].address
    new_root = cluster.redis[report.root.node_id].client()
    lost = [key for key in confirmed if new_root.get(key) is None]
    assert not lost, f"acknowledged writes lost: {lost}"


def test_tree_forms_and_a_root_write_reaches_every_leaf(cluster):
    report = cluster.inspect()
    assert report.healthy, report.problems
    branches = set(cluster.names("branch"))
    assert report.root.node_id in branches
    parents = {report.masters[leaf] for leaf in cluster.names("leaf")}
    non_root = {cluster.redis[b].address for b in branches - {report.root.node_id}}
    assert parents == non_root, "leaves spread over the non-root branches, never on the root"
    cluster.confirmed_write("hello", "world")
    cluster.wait_everywhere("hello", "world")

    def following_the_heartbeat(leaf: str) -> bool:
        """The leaf's agent rests subscribed to its heartbeat's keyspace notifications."""
        with cluster.redis[leaf].client() as conn:
            return conn.pubsub_numsub(HEARTBEAT_CHANNEL) == [(HEARTBEAT_CHANNEL, 1)]

    for leaf in cluster.names("leaf"):
        wait_until(lambda n=leaf: following_the_heartbeat(n), timeout=30, what=f"{leaf} resting")


def test_root_machine_crash_promotes_a_branch_without_full_resyncs(cluster):
    old_root = cluster.root_name()
    cluster.confirmed_write("before", "1")
    cluster.wait_everywhere("before", "1")
    before = cluster.full_syncs()

    cluster.agents[old_root].kill()
    cluster.redis[old_root].kill()

    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    assert report.root.epoch == 2
    assert cluster.confirmed_write("after", "2") == report.root.node_id
    cluster.wait_everywhere("after", "2")
    cluster.wait_everywhere("before", "1")
    assert cluster.new_full_syncs(before) == {}


def test_branch_crash_moves_only_its_leaves_without_full_resyncs(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    victim = next(b for b in cluster.names("branch") if b != root)
    victim_address = cluster.redis[victim].address
    orphans = {leaf for leaf in cluster.names("leaf") if report.masters[leaf] == victim_address}
    assert orphans, "rendezvous hashing gave the victim no leaf; pick a larger tree"
    before = cluster.full_syncs()

    cluster.agents[victim].kill()
    cluster.redis[victim].kill()

    after = cluster.wait_for_tree(timeout=30)
    moved = {leaf for leaf in cluster.names("leaf") if after.masters[leaf] != report.masters[leaf]}
    assert moved == orphans
    cluster.confirmed_write("after-branch-loss", "x")
    cluster.wait_everywhere("after-branch-loss", "x")
    assert cluster.new_full_syncs(before) == {}


def test_a_joining_branch_takes_only_the_leaves_it_wins(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    cluster.confirmed_write("seed", "1")
    cluster.wait_everywhere("seed", "1")

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
    cluster.confirmed_write("precious", "data")
    cluster.wait_everywhere("precious", "data")

    cluster.redis[old_root].restart()  # persistence is off: it comes back empty

    report = cluster.wait_for_tree(timeout=30)
    assert report.root.node_id != old_root
    cluster.wait_everywhere("precious", "data")
    cluster.confirmed_write("later", "yes")
    cluster.wait_everywhere("later", "yes")


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

    assert_old_root_rejoined_without_loss(cluster, old_root, confirmed)
    assert confirmed, "no write was acknowledged before the failover"
    cluster.confirmed_write("after-freeze", "ok")
    cluster.wait_everywhere("after-freeze", "ok")


def test_root_cut_off_from_zookeeper_stops_writes_before_a_new_root_is_elected(tmp_path):
    with LocalCluster(
        tmp_path, branches=3, leaves=3, session_timeout=SESSION, zk_proxies=True
    ) as cluster:
        cluster.wait_for_tree(timeout=60)
        old_root = cluster.root_name()
        old = cluster.redis[old_root].client(socket_timeout=1)
        accepted: list[float] = []  # when the old root's Redis answered OK to a write
        confirmed: list[str] = []
        stop = threading.Event()

        def write_to_old_root() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    old.set(f"w{i}", i)
                    accepted.append(time.time())
                    if old.wait(1, 200) >= 1:
                        confirmed.append(f"w{i}")
                except redis.RedisError:
                    pass

        writer = threading.Thread(target=write_to_old_root)
        writer.start()
        try:
            wait_until(lambda: len(confirmed) >= 10, timeout=10, what="writes before the cut")
            cluster.cut_zk(old_root)
            zk = cluster.zk()
            root_path = f"/prodstate/{cluster.cluster}/root"

            def new_root_created_at() -> float | None:
                zk.sync(root_path)
                try:
                    raw, stat = zk.get(root_path)
                except NoNodeError:
                    return None
                return None if RootRecord.from_json(raw).node_id == old_root else stat.ctime / 1000

            elected_at = wait_until(new_root_created_at, timeout=30, what="a new root")
            stop.set()
        finally:
            stop.set()
            writer.join()
        last_accepted = max(accepted)
        print(f"old root fenced {elected_at - last_accepted:.3f} s before the new root was elected")
        assert last_accepted < elected_at, "the cut-off root accepted writes after the election"

        cluster.heal_zk(old_root)
        assert_old_root_rejoined_without_loss(cluster, old_root, confirmed)
        cluster.confirmed_write("after-partition", "ok")
        cluster.wait_everywhere("after-partition", "ok")
