"""A rollback across a root failover: the changes confirmed by the old root are all in the
new root's history, and a rollback through the new root finds the version it names.
(Last of the statedb tests touching the root: it leaves the tree formed again.)"""

from __future__ import annotations

import json

from prodstate.client import Client
from prodstate.testing import wait_until


def test_rollback_across_a_root_failover(infra, run):
    assert run("config", "schema", "set", "fail", "--free-form", "--reason", "r").returncode == 0
    for value in ("1", "2"):
        done = run("config", "set", "fail", "k", value, "--reason", f"to {value}")
        assert done.returncode == 0, done.stderr
    with Client(infra.zk_hosts, infra.cluster) as client:
        old = client.root()
    infra.agents[old.node_id].kill()  # its Redis lives on, fenced by the new root
    new = infra.wait_for_new_root(old.epoch)
    assert new.node_id != old.node_id
    back = run("config", "rollback", "fail", "k", "--to", "2", "--reason", "after failover")
    assert back.returncode == 0, back.stderr
    assert "k set to 1, as at version 2: version 4 (was 2)" in back.stdout
    infra.agents[old.node_id].start()
    infra.wait_for_tree(timeout=60)
    leaf = infra.redis["leaf1"].address
    with Client(None, infra.cluster, local=leaf) as reader:
        wait_until(lambda: reader.config("fail").revision == 4, what="the rollback on the leaf")
        assert reader.config("fail")["k"] == 1
    history = json.loads(run("config", "history", "fail", "--json").stdout)
    assert [(h["version"], h["kind"], h.get("new")) for h in history] == [
        (4, "set", 1),
        (3, "set", 2),
        (2, "set", 1),
        (1, "schema", None),
    ]
    assert history[0]["rollback_to"] == 2
    old_redis = infra.redis[old.node_id].client()  # the old root, now a replica
    wait_until(lambda: old_redis.hget("settings:ns:fail", "revision") == "4", what="old root")
