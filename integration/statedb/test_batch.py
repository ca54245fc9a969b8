"""Client.write_batch against a real cluster: commands applied together, confirmed by a
branch, fenced by the epoch like single writes, reserved keys refused."""

from __future__ import annotations

import time

import pytest

from prodstate.client.fenced import Client, WriteRejected, _Refused
from prodstate.redis.scripts import FENCED_BATCH
from prodstate.testing import wait_until
from prodstate.zk.rootwatch import RootView


def test_a_batch_is_applied_and_reaches_the_leaf(infra):
    with Client(infra.zk_hosts, infra.cluster, local=infra.redis["leaf1"].address) as client:
        replies = client.write_batch(
            [
                ("HSET", "b:h", "f", "v"),
                ("XADD", "b:s", "MAXLEN", "~", "10", "*", "k", "v"),
                ("SADD", "b:set", "x", "y"),
                ("GET", "b:missing"),
            ]
        )
        assert replies[0] == 1 and replies[2] == 2
        assert "-" in replies[1]  # the stream entry id
        assert replies[3] is None
        leaf = infra.redis["leaf1"].client()
        wait_until(lambda: leaf.smembers("b:set") == {"x", "y"}, what="the batch on the leaf")
        assert leaf.hget("b:h", "f") == "v"
        assert leaf.xlen("b:s") == 1


def test_a_batch_naming_a_reserved_key_is_refused_whole(infra):
    with Client(infra.zk_hosts, infra.cluster) as client:
        with pytest.raises(WriteRejected, match="prodstate:"):
            client.write_batch([("SET", "b:ok", "1"), ("SET", "prodstate:epoch", "9")])
        with pytest.raises(WriteRejected, match="empty"):
            client.write_batch([])
        assert infra.redis[client.root().node_id].client().get("b:ok") is None


def test_a_batch_with_a_stale_epoch_is_refused(infra):
    with Client(infra.zk_hosts, infra.cluster) as client:
        root = client.root()
        view = client.watch.view
        stale = RootView(
            root.__class__(root.node_id, root.address, root.epoch - 1), view.branches, 0
        )
        args = (3, "SET", "b:stale", "x")
        outcome = client._attempt(stale, args, None, time.monotonic() + 2, FENCED_BATCH)
        assert isinstance(outcome, _Refused) and "STALEEPOCH" in outcome.reason
        assert infra.redis[root.node_id].client().get("b:stale") is None
