"""A cluster's znodes made by someone else before its agents start: the agents take what
they can vouch for, delete what was planted, and refuse to run on what they cannot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE, Permissions, make_acl, make_digest_acl

from prodstate.core.model import Member, RootRecord, Tier, ZkState
from prodstate.security.credentials import Credentials, Secret
from prodstate.testing import wait_until
from prodstate.zk.store import StoreUnavailable, ZkStore

AGENTS = Secret("agents", "agents-password")
ATTACKER = ("squatter", "squatter-password")
FAKE = Member("fake", Tier.BRANCH, "127.0.0.1:1")


@contextmanager
def store(hosts: str, credentials: Credentials) -> Iterator[ZkStore]:
    zk = ZkStore(hosts, "c", 2.0, lambda: None, credentials=credentials)
    zk.start()
    try:
        wait_until(lambda: zk.state is ZkState.CONNECTED, timeout=20, what="a ZooKeeper session")
        yield zk
    finally:
        zk.stop()


def _attacker(kazoo_factory, hosts: str) -> KazooClient:
    return kazoo_factory(hosts, auth_data=[("digest", ":".join(ATTACKER))])


def _credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.toml"
    path.touch(mode=0o600)
    path.write_text(f'[zookeeper]\nuser = "{AGENTS.user}"\npassword = "{AGENTS.password}"\n')
    return path


def test_an_agent_refuses_to_run_on_a_cluster_folder_it_cannot_secure(
    zookeeper, kazoo_factory, tmp_path
):
    squatter = _attacker(kazoo_factory, zookeeper.hosts)
    owned = [make_digest_acl(*ATTACKER, all=True), make_acl("world", "anyone", read=True)]
    squatter.create("/prodstate/c", b"", acl=owned, makepath=True)
    options = ["--zk", zookeeper.hosts, "--cluster", "c", "--tier", "branch"]
    options += ["--redis", "127.0.0.1:1", "--session-timeout", "2"]
    options += ["--credentials-file", str(_credentials_file(tmp_path))]
    agent = subprocess.run(
        [sys.executable, "-m", "prodstate", "agent", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert agent.returncode == 2, agent.stderr[-2000:]
    message = agent.stderr.strip().splitlines()[-1]
    assert message.startswith("prodstate: refusing to run:")
    assert "/prodstate/c has an ACL the agents cannot set" in message
    assert squatter.get_children("/prodstate/c") == []  # nothing was made in it


def test_what_was_planted_in_an_open_folder_is_deleted_when_it_is_secured(zookeeper, kazoo_factory):
    squatter = _attacker(kazoo_factory, zookeeper.hosts)
    base = "/prodstate/c"
    for folder in ("members/branch", "members/leaf", "election"):
        squatter.create(f"{base}/{folder}", b"", acl=OPEN_ACL_UNSAFE, makepath=True)
    squatter.create(f"{base}/members/branch/fake", FAKE.to_json(), acl=OPEN_ACL_UNSAFE)
    live = Member("live", Tier.BRANCH, "127.0.0.1:2")
    squatter.create(f"{base}/members/branch/live", live.to_json(), ephemeral=True)
    squatter.create(f"{base}/election/n_", b"live", ephemeral=True, sequence=True)
    with store(zookeeper.hosts, Credentials(AGENTS)) as zk:
        wait_until(zk.connected_session, timeout=20, ignore=(StoreUnavailable,))
        view = zk.read_view("me", Tier.BRANCH, full=True)
        assert view.branches == () and view.candidates == ()
        assert squatter.get_children(f"{base}/members/branch") == []
        assert squatter.get_children(f"{base}/election") == []
        acl, _ = squatter.get_acls(base)
        assert {(a.id.id.split(":")[0], a.perms) for a in acl} == {
            ("agents", Permissions.ALL),
            ("anyone", Permissions.READ),
        }
        top, _ = squatter.get_acls("/prodstate")
        assert not any(a.perms & Permissions.CREATE and a.id.id == "anyone" for a in top)


def test_znodes_no_session_holds_are_ignored(zookeeper, kazoo_factory):
    """Members, candidates and a root must be ephemeral: a persistent one was planted."""
    with store(zookeeper.hosts, Credentials()) as zk:  # an open cluster
        wait_until(zk.connected_session, timeout=20, ignore=(StoreUnavailable,))
        other = kazoo_factory(zookeeper.hosts)
        base = "/prodstate/c"
        other.create(f"{base}/members/branch/fake", FAKE.to_json())
        other.create(f"{base}/election/n_", b"fake", sequence=True)
        other.create(f"{base}/root", RootRecord("fake", FAKE.address, 7, run_id="r").to_json())
        view = zk.read_view("me", Tier.BRANCH, full=True)
        assert (view.branches, view.candidates, view.root) == ((), (), None)
