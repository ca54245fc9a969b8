"""ZkStore's ACLs on a real ZooKeeper: securing an open cluster, and rotating the identity."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl_credential

from prodstate.core.model import Member, Tier, ZkState
from prodstate.security.credentials import Credentials, Secret
from prodstate.testing import wait_until
from prodstate.testing.agent_process import AgentProcess
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

    with store(zookeeper.hosts, Credentials(OLD)) as stale:
        with pytest.raises(StoreUnavailable, match="NoAuth"):
            register(stale, "stale-agent")
        assert stale.client.exists("/prodstate/c1/members/branch/stale-agent") is None


def test_an_agent_with_a_wrong_password_backs_off_instead_of_retrying_every_tick(
    zookeeper, redis_factory, tmp_path
):
    with store(zookeeper.hosts, Credentials(zookeeper=OLD)):  # the cluster's base, secured
        pass
    wrong = tmp_path / "wrong.toml"
    wrong.touch(mode=0o600)
    wrong.write_text(f'[zookeeper]\nuser = "{OLD.user}"\npassword = "not-{OLD.password}"\n')
    agent = AgentProcess(
        tmp_path,
        node_id="b1",
        tier="branch",
        zk_hosts=zookeeper.hosts,
        cluster="c1",
        redis=redis_factory("redis-b1"),
        tick=0.05,
        extra_args=["--credentials-file", str(wrong)],
    ).start()
    try:

        def refusals() -> list[tuple[str, float]]:
            found = _REFUSED.findall(agent.log_path.read_text(errors="replace"))
            return [(action, float(retry)) for action, retry in found]

        wait_until(lambda: len(refusals()) >= 3, timeout=30, what="three refusals logged")
        first = refusals()[0][0]
        delays = [retry for action, retry in refusals() if action == first]
        # Without the back-off a 50 ms tick would have tried some 60 times meanwhile.
        assert delays[:3] == [1.0, 2.0, 4.0]
        assert "action failed" not in agent.log_path.read_text(errors="replace")
    finally:
        agent.stop()


_REFUSED = re.compile(r"action refused for lack of rights.* action=(\w+) .*retry_in=([\d.]+)")
