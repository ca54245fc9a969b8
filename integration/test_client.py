"""The client against a real cluster: confirmed writes, local reads, fencing, failovers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from prodstate.client import latency
from prodstate.client.fenced import (
    Client,
    StaleData,
    WriteFailed,
    WriteRejected,
    WriteUncertain,
    _Refused,
)
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.zk.rootwatch import RootView


@pytest.fixture
def small(tmp_path: Path) -> Iterator[LocalCluster]:
    """1 ZooKeeper, 3 branches, 3 leaves; the tree formed."""
    with LocalCluster(tmp_path, branches=3, leaves=3) as c:
        c.wait_for_tree(timeout=60)
        yield c


def run_cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env_args = ["--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    head, *rest = args
    argv = [sys.executable, "-m", "prodstate", head]
    argv += [*env_args, *rest] if head in ("set", "write", "root") else rest
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_confirmed_writes_are_read_locally_on_every_leaf(small):
    with Client(small.zk_hosts, small.cluster, local=small.redis["leaf1"].address) as client:
        assert client.root().node_id == small.root_name()
        assert client.set("greeting", "hello") == "OK"
        client.hset("db:foobar", "dsn", "postgres://db7/foobar")
        assert client.sadd("service:monkey:machines", "m1", "m2") == 2
        small.wait_everywhere("greeting", "hello")
        assert client.hget("db:foobar", "dsn", max_staleness=5) == "postgres://db7/foobar"
        assert client.smembers("service:monkey:machines") == {"m1", "m2"}
        assert client.write("INCRBY", "counter", 5) == 5
    # Each confirmed write counted in the application's default registry, and a refused one.
    confirmed = {"cluster": small.cluster, "outcome": "confirmed"}
    assert REGISTRY.get_sample_value(f"{latency.NAME}_count", confirmed) >= 4
    with Client(small.zk_hosts, small.cluster) as client, pytest.raises(WriteRejected):
        client.write("HSET", "greeting", "f", "v")  # WRONGTYPE at the root
    rejected = {"cluster": small.cluster, "outcome": "rejected"}
    assert REGISTRY.get_sample_value(f"{latency.NAME}_count", rejected) >= 1


def test_stale_heartbeat_is_refused_on_request(small):
    leaf = small.redis["leaf2"]
    small.agents[small.root_name()].pause()  # no heartbeat from now on
    try:
        with Client(None, small.cluster, local=leaf.address) as reader:
            wait_until(
                lambda: _raises(lambda: reader.get("x", max_staleness=1.5), StaleData),
                timeout=10,
                what="the leaf's copy counted as stale",
            )
            assert reader.get("x") is None  # without a limit, local reads always answer
    finally:
        small.agents[small.root_name()].resume()


def _raises(call, kind) -> bool:
    try:
        call()
    except kind:
        return True
    return False


def test_command_line_set_get_write_root(small):
    root = small.inspect().root
    out = run_cli(small, "root")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{root.address} epoch={root.epoch} node={root.node_id}"

    assert run_cli(small, "set", "colour", "blue").stdout.strip() == "OK"
    assert run_cli(small, "write", "HSET", "db:foobar", "dsn", "pg://x").stdout.strip() == "1"
    small.wait_everywhere("colour", "blue")
    got = run_cli(small, "get", "colour", "--redis", small.redis["leaf3"].address)
    assert (got.returncode, got.stdout.strip()) == (0, "blue")

    missing = run_cli(small, "get", "nope", "--redis", small.redis["leaf3"].address)
    assert missing.returncode == 1 and "no such key" in missing.stderr
    wrong = run_cli(small, "write", "LPUSH", "colour", "x")
    assert wrong.returncode == 1 and "WRONGTYPE" in wrong.stderr and "not applied" in wrong.stderr
    reserved = run_cli(small, "set", "prodstate:epoch", "99")
    assert reserved.returncode == 1 and "belong to prodstate" in reserved.stderr
    too_many = run_cli(small, "set", "k", "v", "--acks", "5", "--timeout", "1")
    assert too_many.returncode == 3 and "may have been applied" in too_many.stderr


def test_a_client_holding_a_stale_root_is_refused(small):
    with Client(small.zk_hosts, small.cluster) as client:
        old = client.root()
        client.set("before", "1")
        old_view = client.watch.view

        small.agents[old.node_id].kill()  # its Redis lives on, until the new root fences it
        new = small.wait_for_new_root(old.epoch)
        small.agents[old.node_id].start()
        small.wait_for_tree(timeout=30)  # the new root serves, the old one is its replica
        client.set("served", "1", timeout=20)
        deadline = time.monotonic() + 5
        # The stale record names the old root: fenced and soon its replica, it refuses.
        outcome = client._attempt(old_view, ("SET", "stale", "x"), None, deadline)
        assert isinstance(outcome, _Refused), outcome
        # The old epoch sent to the new root: the fencing token is refused as well.
        stale_epoch = RootView(
            new.__class__(new.node_id, new.address, old.epoch), old_view.branches, 0
        )
        outcome = client._attempt(stale_epoch, ("SET", "stale", "x"), None, deadline)
        assert isinstance(outcome, _Refused) and "STALEEPOCH" in outcome.reason
        assert small.redis[new.node_id].client().get("stale") is None
        # The client itself follows the watch to the new root.
        client.set("after", "2", timeout=20)
        assert client.root().epoch == new.epoch


@pytest.mark.slow  # the fault suite checks every failover with its writer
def test_no_confirmed_write_is_lost_across_three_root_failovers(tmp_path):
    with LocalCluster(tmp_path, branches=3, leaves=3) as cluster:
        cluster.wait_for_tree(timeout=60)
        outcomes: dict[str, list[int]] = {"confirmed": [], "failed": [], "uncertain": []}
        stop = threading.Event()

        def writer() -> None:
            with Client(cluster.zk_hosts, cluster.cluster, timeout=15) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        client.set(f"k{i}", str(i))
                        outcomes["confirmed"].append(i)
                    except WriteUncertain:
                        outcomes["uncertain"].append(i)
                    except WriteFailed:
                        outcomes["failed"].append(i)

        thread = threading.Thread(target=writer)
        thread.start()
        roots = []
        try:
            for _ in range(3):
                floor = len(outcomes["confirmed"]) + 300
                wait_until(
                    lambda f=floor: len(outcomes["confirmed"]) >= f, timeout=60, what="writes"
                )
                victim = cluster.inspect().root
                roots.append(victim.node_id)
                cluster.agents[victim.node_id].kill()
                cluster.redis[victim.node_id].kill()
                cluster.wait_for_new_root(victim.epoch)
                cluster.redis[victim.node_id].start()  # the machine comes back, empty
                cluster.agents[victim.node_id].start()
            floor = len(outcomes["confirmed"]) + 300
            wait_until(lambda: len(outcomes["confirmed"]) >= floor, timeout=60, what="writes")
        finally:
            stop.set()
            thread.join()
        confirmed = outcomes["confirmed"]
        print(
            f"roots killed {roots}; writes confirmed {len(confirmed)}, "
            f"failed {len(outcomes['failed'])}, uncertain {len(outcomes['uncertain'])}"
        )
        assert len(confirmed) >= 1200
        cluster.wait_for_tree(timeout=60)
        last = confirmed[-1]
        cluster.wait_everywhere(f"k{last}", str(last))
        for name, server in cluster.redis.items():
            conn = server.client()
            lost = [
                i
                for chunk in _chunks(confirmed, 500)
                for i, value in zip(chunk, conn.mget([f"k{i}" for i in chunk]), strict=True)
                if value != str(i)
            ]
            assert not lost, f"{name} lacks {len(lost)} confirmed writes, e.g. {lost[:5]}"


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
