"""ZkStore against a real ZooKeeper: what happens when its first requests fail."""

from __future__ import annotations

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, make_acl

from prodstate.model import ZkState
from prodstate.testing import wait_until
from prodstate.zkstore import StoreUnavailable, ZkStore

BASE_PATHS = ("members/branch", "members/leaf", "election", "epoch")


def test_base_paths_are_created_when_a_failed_first_attempt_is_retried(zookeeper, kazoo_factory):
    # Under load the first attempt can time out; here ZooKeeper refuses it (no CREATE right).
    admin = kazoo_factory(zookeeper.hosts)
    read_only = [make_acl("world", "anyone", read=True, admin=True)]
    admin.create("/prodstate")
    admin.create("/prodstate/c", acl=read_only)
    store = ZkStore(zookeeper.hosts, "c", 2.0, lambda: None)
    store.start()
    try:
        wait_until(lambda: store.state is ZkState.CONNECTED, timeout=15, what="connected")
        with pytest.raises(StoreUnavailable, match="NoAuth"):
            store.connected_session()
        admin.set_acls("/prodstate/c", OPEN_ACL_UNSAFE)
        assert store.connected_session() == store.client.client_id[0]
        assert [p for p in BASE_PATHS if admin.exists(f"/prodstate/c/{p}") is None] == []
    finally:
        store.stop()
