"""Deploy locks against real ZooKeeper and a real cluster: the commands, the mirror on a
leaf's Redis, expiry, and contenders racing for one lock."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kazoo.client import KazooClient

from prodstate.statedb.keys import LOCKS
from prodstate.statedb.locks import LockHeld, LockStore, new_lock
from prodstate.testing import wait_until


def _leaf_mirror(infra, name):
    return infra.redis["leaf1"].client().hget(LOCKS, name)


def test_acquire_check_release_and_the_mirror_on_a_leaf(infra, run):
    done = run("lock", "acquire", "web", "--reason", "migration <42>", "--holder", "ann@h1")
    assert done.returncode == 0, done.stderr
    assert "web is held by ann@h1" in done.stdout
    mirrored = wait_until(lambda: _leaf_mirror(infra, "web"), what="the lock on the leaf")
    assert json.loads(mirrored)["reason"] == "migration <42>"

    checked = run("lock", "check", "web")
    assert checked.returncode == 1
    assert "ann@h1" in checked.stderr and "migration <42>" in checked.stderr

    again = run("lock", "acquire", "web", "--reason", "mine now", "--holder", "bob@h2")
    assert again.returncode == 1
    assert "held by ann@h1" in again.stderr

    listed = run("lock", "list", "--json")
    assert [r["holder"] for r in json.loads(listed.stdout) if r["name"] == "web"] == ["ann@h1"]

    refused = run("lock", "release", "web", "--holder", "bob@h2")
    assert refused.returncode == 1 and "only ann@h1 may release" in refused.stderr
    released = run("lock", "release", "web", "--holder", "ann@h1")
    assert released.returncode == 0, released.stderr
    assert run("lock", "check", "web").returncode == 0
    wait_until(lambda: _leaf_mirror(infra, "web") is None, what="the mirror cleared on the leaf")


def test_an_expired_lock_is_free_and_taken_over(infra, run):
    assert run("lock", "acquire", "api", "--reason", "short", "--ttl", "1s").returncode == 0
    wait_until(lambda: run("lock", "check", "api").returncode == 0, what="the lock to expire")
    taken = run("lock", "acquire", "api", "--reason", "next", "--holder", "bob@h2")
    assert taken.returncode == 0, taken.stderr
    assert "bob@h2" in run("lock", "check", "api").stderr
    assert run("lock", "release", "api", "--holder", "bob@h2").returncode == 0


def test_bad_input_is_a_message_and_exit_2(run):
    bad_ttl = run("lock", "acquire", "x", "--reason", "r", "--ttl", "soon")
    assert bad_ttl.returncode == 2 and "not a duration" in bad_ttl.stderr
    bad_name = run("lock", "check", "a/b")
    assert bad_name.returncode == 2 and "lock name" in bad_name.stderr
    no_zk = run("lock", "check", "x", PRODSTATE_ZK="127.0.0.1:1")
    assert no_zk.returncode == 2 and "cannot connect to ZooKeeper" in no_zk.stderr
    huge_ttl = run("lock", "acquire", "x", "--reason", "r", "--ttl", "99999999999d")
    assert huge_ttl.returncode == 2 and "too long: at most 365d" in huge_ttl.stderr
    long_reason = run("lock", "acquire", "x", "--reason", "r" * 2001)
    assert long_reason.returncode == 2 and "at most 2000" in long_reason.stderr
    for done in (bad_ttl, bad_name, no_zk, huge_ttl, long_reason):
        assert "Traceback" not in done.stderr
    assert run("lock", "check", "x").returncode == 0  # none of them took it


def test_a_lock_in_a_cluster_that_does_not_exist_is_refused_and_nothing_is_left(infra, run):
    done = run("lock", "acquire", "x", "--reason", "r", PRODSTATE_CLUSTER="infar")
    assert done.returncode == 1, done.stderr
    assert "there is no cluster 'infar' in ZooKeeper" in done.stderr
    assert infra.zk().exists("/prodstate/infar") is None
    deployed = run(
        "deploy", "--service", "x", "--version", "1", "--", "true", PRODSTATE_CLUSTER="infar"
    )
    assert deployed.returncode == 1 and "there is no cluster 'infar'" in deployed.stderr
    assert infra.zk().exists("/prodstate/infar") is None


def test_racing_contenders_exactly_one_wins_each_round(infra):
    clients = [KazooClient(hosts=infra.zk_hosts) for _ in range(4)]
    for client in clients:
        client.start(timeout=15)
    try:
        for round_ in range(10):
            name = f"race{round_}"
            barrier = threading.Barrier(len(clients))

            def contend(i: int, name: str = name, barrier: threading.Barrier = barrier) -> bool:
                store = LockStore(clients[i], infra.cluster)
                record = new_lock(name, f"c{i}", "race", now=2e9)
                barrier.wait()
                try:
                    store.acquire(record)
                except LockHeld:
                    return False
                return True

            with ThreadPoolExecutor(len(clients)) as pool:
                wins = list(pool.map(contend, range(len(clients))))
            assert wins.count(True) == 1, wins
            holder = LockStore(clients[0], infra.cluster).holder(name, now=2e9)
            assert holder is not None and holder.holder == f"c{wins.index(True)}"
    finally:
        for client in clients:
            client.stop()
            client.close()


def test_racing_to_break_an_expired_lock_leaves_one_holder(infra):
    """Ten rounds of three contenders breaking the same expired lock, then taking it again
    after a release: exactly one wins each time (a break by delete let two win)."""
    clients = [KazooClient(hosts=infra.zk_hosts) for _ in range(3)]
    for client in clients:
        client.start(timeout=15)
    try:
        store = LockStore(clients[0], infra.cluster)
        for round_ in range(10):
            name = f"stale{round_}"
            store.acquire(new_lock(name, "old", "expired", now=100.0, ttl=1))
            for phase in ("after expiry", "after release"):
                seen = store.read_znode(name)
                assert seen is not None
                stale_version = seen[1]  # what a slow contender may still hold
                barrier = threading.Barrier(len(clients))

                def contend(
                    i: int, phase: str = phase, name: str = name, barrier: Any = barrier
                ) -> bool:
                    record = new_lock(name, f"c{i}", phase, now=1000.0)
                    barrier.wait()
                    try:
                        LockStore(clients[i], infra.cluster).acquire(record, now=1000.0)
                    except LockHeld as exc:
                        assert exc.record.holder != "old"
                        return False
                    return True

                with ThreadPoolExecutor(len(clients)) as pool:
                    wins = list(pool.map(contend, range(len(clients))))
                assert wins.count(True) == 1, (name, phase, wins)
                winner = f"c{wins.index(True)}"
                held = store.holder(name, now=1000.0)
                assert held is not None and held.holder == winner
                assert held.reason == phase
                # A contender holding the version it read before the race must be refused:
                # the winner's znode is never back at that version (ABA).
                found = store.read(name)
                assert found is not None and found[1] > stale_version
                if phase == "after expiry":
                    store.release(name, winner, now=1000.0)
                    assert store.holder(name, now=1000.0) is None
    finally:
        for client in clients:
            client.stop()
            client.close()
