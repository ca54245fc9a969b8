"""What a writer cannot do on a secured cluster: touch prodstate's keys by any command, load
or run scripts of its own; and the root puts back an epoch key changed behind its back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from prodstate.client import Client, WriteRejected
from prodstate.core.heartbeat import EPOCH_KEY, HEARTBEAT_KEY
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.secure import SecureSetup

SESSION = 2.0  # as in conftest.py


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """ZooKeeper ACLs and Redis users: 2 branches, no leaves, the tree formed."""
    workdir = tmp_path_factory.mktemp("guard")
    security = SecureSetup(workdir)
    with LocalCluster(
        workdir, branches=2, leaves=0, session_timeout=SESSION, security=security
    ) as cluster:
        cluster.wait_for_tree(timeout=60)
        yield cluster


def _writer(cluster: LocalCluster) -> Client:
    security = cluster.security
    assert security is not None
    return Client(
        cluster.zk_hosts,
        cluster.cluster,
        writer=security.user("writer"),
        reader=security.user("reader"),
        timeout=5,
    )


def _root_redis(cluster: LocalCluster, role: str) -> redis.Redis:
    with Client(cluster.zk_hosts, cluster.cluster) as reader:
        root = reader.root()
    security = cluster.security
    assert security is not None
    return cluster.redis[root.node_id].client(**security.client_options(role))


@pytest.mark.parametrize(
    "command",
    [
        ("MSET", "a", "1", EPOCH_KEY, "9"),
        ("DEL", "x", EPOCH_KEY),
        ("UNLINK", EPOCH_KEY),
        ("RENAME", "guard:k", EPOCH_KEY),
        ("COPY", "guard:k", EPOCH_KEY, "REPLACE"),
        ("BITOP", "OR", EPOCH_KEY, "guard:k"),
        ("SORT", "guard:list", "STORE", EPOCH_KEY),
        ("MSET", "a", "1", HEARTBEAT_KEY, "99999999999"),
        ("EXPIRE", EPOCH_KEY, "1"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_no_command_of_a_writer_touches_prodstates_keys(secured, command):
    admin = _root_redis(secured, "admin")
    before = (admin.get(EPOCH_KEY), admin.ttl(EPOCH_KEY))
    with _writer(secured) as client:
        client.set("guard:k", "1")
        with pytest.raises(WriteRejected, match="belong to prodstate"):
            client.write(*command)
        assert client.set("guard:after", "ok") == "OK"  # every other write still goes
    assert (admin.get(EPOCH_KEY), admin.ttl(EPOCH_KEY)) == before
    assert admin.get("a") is None  # a refused batch of keys applies none of them


@pytest.mark.parametrize(
    "command",
    [
        ("SCRIPT", "LOAD", "return 1"),
        ("SCRIPT", "FLUSH"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() end)"),
        ("FUNCTION", "FLUSH"),
        ("EVAL", "return 1", "0"),
        ("EVAL_RO", "return 1", "0"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_the_writer_cannot_load_flush_or_run_scripts_of_its_own(secured, command):
    writer = _root_redis(secured, "writer")
    with pytest.raises(redis.exceptions.NoPermissionError):
        writer.execute_command(*command)


def test_the_root_puts_back_an_epoch_key_changed_behind_its_back(secured):
    admin = _root_redis(secured, "admin")
    epoch = admin.get(EPOCH_KEY)
    admin.set(EPOCH_KEY, "999")  # as only an administrator could
    wait_until(lambda: admin.get(EPOCH_KEY) == epoch, timeout=10, what="the epoch key back")
    with _writer(secured) as client:
        assert client.set("guard:repaired", "ok") == "OK"
