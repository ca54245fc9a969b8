"""ZkStore's ACLs on a real ZooKeeper: securing an open cluster, and rotating the identity."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl_credential

from prodstate.core.model import Member, Tier, ZkState
from prodstate.security.credentials import Credentials, Secret
from prodstate.testing import wait_until
from prodstate.zk.store import StoreUnavailable, ZkStore

OLD, NEW = Secret("agents", "old-password"), Secret("agents-next", "new-password")
PATHS = ("", "/members", "/members/branch", "/members/leaf", "/election", "/epoch")


@contextmanager
def store(hosts: str, credentials: Credentials) -> Iterator[ZkStore]:
    zk = ZkStore(hosts, "c1", 2.0, lambda: None, credentials=credentials)
    zk.start()
    try:
        wait_until(lambda: zk.state is ZkState.CONNECTED, timeout=20, what="a ZooKeeper session")
        wait_until(lambda: _session(zk), timeout=20, what="the paths", ignore=(StoreUnavailable,))
        yield zk
    finally:
        zk.stop()


def _session(zk: ZkStore) -> bool:
    return zk.connected_session() != 0


def granted(zk: ZkStore, path: str) -> set[tuple[str, str]]:
    acl, _ = zk.client.get_acls(path)
    return {(a.id.id.split(":")[0], "+".join(a.acl_list)) for a in acl}


def register(zk: ZkStore, node: str) -> None:
    zk.register(Member(node, Tier.BRANCH, "127.0.0.1:6379"))


def test_an_open_cluster_is_secured_and_the_identity_rotated(zookeeper):
    with store(zookeeper.hosts, Credentials()) as open_store:
        acl, _ = open_store.client.get_acls("/prodstate/c1/epoch")
        assert acl == OPEN_ACL_UNSAFE

    # Step 1: agents keep the old identity and grant the new one too.
    step1 = Credentials(OLD, (make_digest_acl_credential(NEW.user, NEW.password),))
    with store(zookeeper.hosts, step1) as zk:
        for path in PATHS:
            assert granted(zk, f"/prodstate/c1{path}") == {
                ("agents", "ALL"),
                ("agents-next", "ALL"),
                ("anyone", "READ"),
            }
        register(zk, "old-agent")

    # Step 2: the new identity works on what the old one made; step 3 drops the old one.
    with store(zookeeper.hosts, Credentials(NEW)) as zk:
        register(zk, "new-agent")
        assert granted(zk, "/prodstate/c1/members/branch") == {
            ("agents-next", "ALL"),
            ("anyone", "READ"),
        }

    # An agent left with the old identity cannot vouch for the cluster's ACLs any more.
    stale = store(zookeeper.hosts, Credentials(OLD))
    with pytest.raises(TimeoutError, match="has an ACL the agents cannot set"), stale:
        pass


def test_an_agent_with_a_wrong_password_refuses_to_run(zookeeper, redis_factory, tmp_path):
    """A wrong password is another identity to ZooKeeper: the agent cannot set the cluster's
    ACLs, so it does not act on them; it exits at start and says which znodes."""
    with store(zookeeper.hosts, Credentials(zookeeper=OLD)):  # the cluster's base, secured
        pass
    wrong = tmp_path / "wrong.toml"
    wrong.touch(mode=0o600)
    wrong.write_text(f'[zookeeper]\nuser = "{OLD.user}"\npassword = "not-{OLD.password}"\n')
    options = ["--zk", zookeeper.hosts, "--cluster", "c1", "--tier", "branch"]
    options += ["--redis", redis_factory("redis-b1").address, "--credentials-file", str(wrong)]
    agent = subprocess.run(
        [sys.executable, "-m", "prodstate", "agent", "--session-timeout", "2", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert agent.returncode == 2, agent.stderr[-2000:]
    last = agent.stderr.strip().splitlines()[-1]
    assert last.startswith("prodstate: refusing to run: /prodstate/c1 has an ACL the agents")
    assert "password" not in last and OLD.password not in agent.stderr
