"""ZkStore against a real ZooKeeper: failed first requests, re-reading only what changed, and
the election's protected create."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE, make_acl

from prodstate.core.model import Lineage, Member, RootRecord, Tier, ZkState
from prodstate.testing import ZooKeeperServer, wait_until
from prodstate.zk.store import StoreUnavailable, View, ZkStore

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


# --- read_view re-reads only what changed -------------------------------------------------------


class Woken:
    """A store's wake callback that counts the watches (and state changes) that fired."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def connected_store(hosts: str, name: str, wake: Callable[[], None] = lambda: None) -> ZkStore:
    store = ZkStore(hosts, "c", 5.0, wake)
    store.start()
    wait_until(lambda: store.state is ZkState.CONNECTED, timeout=15, what=f"{name} connected")
    store.connected_session()
    return store


@pytest.fixture
def fleet(zookeeper) -> Iterator[tuple[dict[str, ZkStore], ZkStore, Woken]]:
    """Branches b1..b3 (b1 the root), and a registered leaf whose store the test reads."""
    stores: list[ZkStore] = []
    try:
        branches = {}
        for name in ("b1", "b2", "b3"):
            branches[name] = connected_store(zookeeper.hosts, name)
            stores.append(branches[name])
            branches[name].register(Member(name, Tier.BRANCH, f"{name}:6379"))
        view = branches["b1"].read_view("b1", Tier.BRANCH)
        record = RootRecord("b1", "b1:6379", 1, "")
        assert branches["b1"].claim_root(record, Lineage(1, "b1", "b1:6379"), view.lineage_version)
        woken = Woken()
        leaf = connected_store(zookeeper.hosts, "leaf", woken)
        stores.append(leaf)
        leaf.register(Member("l1", Tier.LEAF, "l1:6379"))
        yield branches, leaf, woken
    finally:
        for store in stores:
            store.stop()


def read(store: ZkStore, full: bool = False) -> tuple[View, int]:
    """The view and the number of requests it took."""
    before = store.requests
    view = store.read_view("l1", Tier.LEAF, full=full)
    return view, store.requests - before


def addresses(view: View) -> dict[str, str]:
    return {m.node_id: m.address for m in view.branches}


def test_only_what_changed_is_read_again(fleet):
    branches, leaf, woken = fleet
    view, requests = read(leaf, full=True)
    assert (addresses(view), view.root.node_id, view.lineage.epoch) == (
        {"b1": "b1:6379", "b2": "b2:6379", "b3": "b3:6379"},
        "b1",
        1,
    )
    # the branches' folder and list, 3 members, own, root, epoch, the maintenance listing
    assert view.registered is not None and requests == 2 + 3 + 3 + 1
    assert read(leaf)[1] == 0  # nothing fired: nothing read
    assert read(leaf, full=True)[1] == 1 + 3 + 3 + 1  # no branch came or went: not listed

    fired = woken.count
    branches["b2"].register(Member("b2", Tier.BRANCH, "b2-new:6379"))
    wait_until(lambda: woken.count > fired, timeout=10, what="b2's data watch")
    view, requests = read(leaf)
    assert (addresses(view)["b2"], requests) == ("b2-new:6379", 1)

    fired = woken.count
    branches["b3"].stop()  # its session ends: its member znode goes
    wait_until(lambda: woken.count > fired, timeout=10, what="b3's data watch")
    view, requests = read(leaf)
    assert (sorted(addresses(view)), requests) == (["b1", "b2"], 0)  # the watch told it all

    fired = woken.count
    branches["b1"].stop()  # the root's session ends: the root znode goes
    wait_until(lambda: woken.count >= fired + 2, timeout=10, what="root and member watches")
    view, _ = read(leaf)
    assert (view.root, sorted(addresses(view))) == (None, ["b2"])

    b2 = branches["b2"]
    claimed = b2.read_view("b2", Tier.BRANCH)
    record = RootRecord("b2", "b2-new:6379", 2, "", "b1:6379")
    assert b2.claim_root(record, Lineage(2, "b2", "b2-new:6379"), claimed.lineage_version)
    wait_until(lambda: read(leaf)[0].root is not None, timeout=10, what="the new root seen")
    view, requests = read(leaf)
    assert (view.root.node_id, view.lineage.epoch, requests) == ("b2", 2, 0)


def test_a_leaf_lists_the_branches_again_only_when_one_registers(fleet, zookeeper):
    _, leaf, woken = fleet
    folder = f"{leaf.base}/members/branch"
    read(leaf, full=True)
    fired = woken.count
    b4 = connected_store(zookeeper.hosts, "b4")
    try:
        b4.register(Member("b4", Tier.BRANCH, "b4:6379"))
        wait_until(lambda: woken.count > fired, timeout=10, what="the folder's data watch")
        view, requests = read(leaf)
        assert (sorted(addresses(view)), requests) == (["b1", "b2", "b3", "b4"], 3)
        # An update is no creation: the folder's data stays, the member's watch tells.
        version = b4.client.exists(folder).version
        b4.register(Member("b4", Tier.BRANCH, "b4:6380"))
        wait_until(lambda: not leaf.cache.fresh(f"{folder}/b4")[0], timeout=10, what="b4")
        assert b4.client.exists(folder).version == version
        view, requests = read(leaf)
        assert (addresses(view)["b4"], requests) == ("b4:6380", 1)
    finally:
        b4.stop()
    wait_until(lambda: "b4" not in addresses(read(leaf)[0]), timeout=10, what="b4 gone")
    # What it knows of the list matches the folder's child version: not listed again.
    assert read(leaf, full=True)[1] == 1 + 3 + 3 + 1


def test_a_leaf_publishes_in_one_request_and_keeps_what_it_wrote(fleet, zookeeper, kazoo_factory):
    _, leaf, woken = fleet
    read(leaf, full=True)
    fired = woken.count
    before = leaf.requests
    leaf.register(Member("l1", Tier.LEAF, "l1:6379", fresh=False, avoiding=("b2",)))
    assert leaf.requests - before == 1  # its own znode, read this session: set only
    view, requests = read(leaf)
    assert (view.registered.fresh, view.registered.avoiding, requests) == (False, ("b2",), 0)
    assert woken.count == fired  # no watch on its own znode: its write woke nothing

    leaf.cache.clear()
    before = leaf.requests
    leaf.register(Member("l1", Tier.LEAF, "l1:6379"))
    assert leaf.requests - before == 2  # not read since: looked up first
    assert read(leaf)[0].registered.fresh

    # Deleted by hand: seen at the next full read, which finds it unregistered.
    admin = kazoo_factory(zookeeper.hosts)
    admin.delete(f"{leaf.base}/members/leaf/l1")
    assert read(leaf)[0].registered is not None  # not watched: not seen yet
    assert read(leaf, full=True)[0].registered is None


def test_a_branch_reads_its_own_member_back_with_a_watch(fleet):
    branches, _, _ = fleet
    b2 = branches["b2"]
    path = f"{b2.base}/members/branch/b2"
    b2.read_view("b2", Tier.BRANCH, full=True)
    before = b2.requests
    b2.register(Member("b2", Tier.BRANCH, "b2:6379", fresh=False))
    assert b2.requests - before == 1
    # A branch's member decides where leaves go: read back with a watch, not kept.
    assert b2.cache.fresh(path) == (False, None)
    assert b2.read_view("b2", Tier.BRANCH).registered.fresh is False
    assert b2.cache.fresh(path)[0]


def test_a_watch_that_fires_during_the_read_is_not_lost(fleet, monkeypatch):
    branches, leaf, woken = fleet
    read(leaf, full=True)
    path = f"{leaf.base}/members/branch/b2"
    branches["b2"].register(Member("b2", Tier.BRANCH, "b2-v2:6379"))
    wait_until(lambda: not leaf.cache.fresh(path)[0], timeout=10, what="b2 marked dirty")
    call = leaf._call

    def call_then_change(method: Callable, *args: object, **kwargs: object) -> object:
        result = call(method, *args, **kwargs)
        if args[:1] == (path,):  # b2 read: it changes again before the read completes
            fired = woken.count
            branches["b2"].register(Member("b2", Tier.BRANCH, "b2-v3:6379"))
            wait_until(lambda: woken.count > fired, timeout=10, what="the watch left by the read")
        return result

    monkeypatch.setattr(leaf, "_call", call_then_change)
    assert addresses(read(leaf)[0])["b2"] == "b2-v2:6379"  # what the read got back
    monkeypatch.setattr(leaf, "_call", call)
    view, requests = read(leaf)
    assert (addresses(view)["b2"], requests) == ("b2-v3:6379", 1)


def test_own_writes_and_a_new_session_are_read_again(fleet):
    _, leaf, _ = fleet
    read(leaf, full=True)
    leaf.register(Member("l1", Tier.LEAF, "l1-moved:6379"))
    view, requests = read(leaf)  # no waiting: the leaf keeps what it wrote
    assert (view.registered.address, requests) == ("l1-moved:6379", 0)
    leaf.client.stop()  # the session closes: everything cached must go
    leaf.client.start()
    wait_until(lambda: leaf.state is ZkState.CONNECTED, timeout=15, what="a new session")
    assert len(leaf.cache) == 0
    leaf.connected_session()  # its sync and base-path checks are not part of the read
    view, requests = read(leaf)
    assert (view.registered, requests) == (None, 1 + 3 + 3 + 1)  # the list is still current


def test_a_reconnect_in_the_same_session_reads_everything_again(tmp_path):
    # kazoo forgets its watches when the connection drops and does not set them again.
    # A 1.5 s tick lets the 30 s session be granted whole: the short tick of the other
    # tests caps it at 4 s, and a restart on a loaded machine can take longer than that.
    zookeeper = ZooKeeperServer(tmp_path, tick_time=1500).start()
    try:
        check_a_reconnect_reads_everything_again(zookeeper)
    finally:
        zookeeper.stop()


def check_a_reconnect_reads_everything_again(zookeeper: ZooKeeperServer) -> None:
    woken = Woken()
    writer = connected_store(zookeeper.hosts, "b2")
    leaf = ZkStore(zookeeper.hosts, "c", 30.0, woken)
    leaf.start()
    try:
        writer.register(Member("b2", Tier.BRANCH, "b2:6379"))
        wait_until(lambda: leaf.state is ZkState.CONNECTED, timeout=15, what="leaf connected")
        session = leaf.connected_session()
        assert addresses(read(leaf, full=True)[0]) == {"b2": "b2:6379"}
        zookeeper.restart()
        wait_until(lambda: leaf.state is ZkState.CONNECTED, timeout=30, what="leaf reconnected")
        wait_until(lambda: writer.state is ZkState.CONNECTED, timeout=30, what="b2 reconnected")
        assert (leaf.connected_session(), len(leaf.cache)) == (session, 0)
        writer.register(Member("b2", Tier.BRANCH, "b2-new:6379"))
        assert addresses(read(leaf)[0]) == {"b2": "b2-new:6379"}
    finally:
        leaf.stop()
        writer.stop()


def test_a_member_znode_of_a_previous_session_is_replaced_without_a_gap(zookeeper, kazoo_factory):
    # A restarted agent takes over its old session's member znode; leaves that read the
    # members meanwhile must never find the branch missing, or they would move away.
    old, new = connected_store(zookeeper.hosts, "old"), connected_store(zookeeper.hosts, "new")
    leaf = connected_store(zookeeper.hosts, "leaf")  # learns of changes from watch events
    reader = kazoo_factory(zookeeper.hosts)
    members = "/prodstate/c/members/branch"
    stop, gaps, reads = threading.Event(), [], []

    def watch_members() -> None:
        while not stop.is_set():
            children = reader.get_children(members)
            view = leaf.read_view("l1", Tier.LEAF)
            reads.append(1)
            if "b2" not in children:
                gaps.append(children)
            if "b2" not in addresses(view):
                gaps.append(f"the leaf's view: {sorted(addresses(view))}")

    try:
        old.register(Member("b2", Tier.BRANCH, "b2:6379"))
        thread = threading.Thread(target=watch_members)
        thread.start()
        try:
            for i in range(40):  # two agents taking the znode from each other, back and forth
                store = (new, old)[i % 2]
                store.register(Member("b2", Tier.BRANCH, f"b2-{i}:6379"))
                owner = reader.get(f"{members}/b2")[1].ephemeralOwner
                assert owner == store.connected_session()
                seen = len(reads)  # the readers look at least once between two takeovers
                wait_until(lambda n=seen: len(reads) > n + 1, timeout=10, what="the readers")
        finally:
            stop.set()
            thread.join()
        assert gaps == []
    finally:
        old.stop()
        new.stop()
        leaf.stop()


# --- the election's protected create ------------------------------------------------------------

ELECTION = "/prodstate/c/election"
PROTECTED_NAME = re.compile(r"n_[0-9a-f]{32}_\d{10}")


def owners(zk: KazooClient) -> dict[str, int]:
    """Each election znode's name -> the session that owns it."""
    found = {}
    for child in zk.get_children(ELECTION):
        stat = zk.exists(f"{ELECTION}/{child}")
        if stat is not None:
            found[child] = stat.ephemeralOwner
    return found


def lost_reply(store: ZkStore, node_id: str) -> str:
    """What a create whose reply was lost leaves: the store's own candidate znode, made
    through its own session, that the store was never told of; its name."""
    path = f"{ELECTION}/{store.election_prefix}"
    created = store.client.create(path, node_id.encode(), ephemeral=True, sequence=True)
    return created.rsplit("/", 1)[1]


def test_a_join_whose_create_reply_was_lost_adopts_that_znode(
    zookeeper, kazoo_factory, monkeypatch
):
    store = connected_store(zookeeper.hosts, "b1")
    observer = kazoo_factory(zookeeper.hosts)
    try:
        call, applied = store._call, []

        def reply_lost_once(method: Callable, *args: object, **kwargs: object) -> object:
            result = call(method, *args, **kwargs)
            if method == store.client.create_async and not applied:
                applied.append(result)  # ZooKeeper applied it; the agent never hears so
                raise StoreUnavailable("ZooKeeper request failed: ConnectionLoss()")
            return result

        monkeypatch.setattr(store, "_call", reply_lost_once)
        with pytest.raises(StoreUnavailable):
            store.join_election("b1")
        assert not store.in_election

        store.join_election("b1")  # the agent tries again on a later tick
        name = applied[0].rsplit("/", 1)[1]
        assert store.in_election and owners(observer) == {name: store.connected_session()}
        assert PROTECTED_NAME.fullmatch(name) and name.startswith(store.election_prefix)
        assert store.read_view("b1", Tier.BRANCH).candidates == ("b1",)

        store.leave_election()
        assert not store.in_election and owners(observer) == {}
    finally:
        store.stop()


def test_leaving_removes_every_candidate_of_the_store_and_no_one_elses(zookeeper, kazoo_factory):
    store, other = connected_store(zookeeper.hosts, "b1"), connected_store(zookeeper.hosts, "b2")
    observer = kazoo_factory(zookeeper.hosts)
    try:
        other.join_election("b2")
        # The store's prefix on another session's znode (as a previous session of the
        # agent would leave until it expires): neither adopted nor deleted.
        foreign = observer.create(
            f"{ELECTION}/{store.election_prefix}", b"b1", ephemeral=True, sequence=True
        ).rsplit("/", 1)[1]
        lost = [lost_reply(store, "b1"), lost_reply(store, "b1")]
        store.join_election("b1")  # adopts the first lost one, removes the second
        session = store.connected_session()
        assert owners(observer) == {
            other.election_prefix + "0000000000": other.connected_session(),
            foreign: observer.client_id[0],
            lost[0]: session,
        }
        lost_reply(store, "b1")  # and one more, the store not knowing of it
        store.leave_election()
        assert set(owners(observer)) == {other.election_prefix + "0000000000", foreign}
    finally:
        store.stop()
        other.stop()


def test_a_candidate_the_store_did_not_know_of_is_seen_and_can_be_left(zookeeper, kazoo_factory):
    # The agent may no longer want to join (its Redis went down): the orphan must still go.
    store = connected_store(zookeeper.hosts, "b1")
    observer = kazoo_factory(zookeeper.hosts)
    try:
        lost_reply(store, "b1")
        assert not store.in_election
        view = store.read_view("b1", Tier.BRANCH)
        assert view.candidates == ("b1",) and view.in_election and store.in_election
        store.leave_election()
        assert owners(observer) == {}
        assert store.read_view("b1", Tier.BRANCH).candidates == ()
    finally:
        store.stop()


def test_old_and_protected_candidate_names_are_ordered_by_sequence(zookeeper, kazoo_factory):
    # Agents before protected creates named their znodes n_<seq>; both kinds share the counter.
    old = kazoo_factory(zookeeper.hosts)
    stores = [connected_store(zookeeper.hosts, name) for name in ("b1", "b2")]
    try:
        old.create(f"{ELECTION}/n_", b"old1", ephemeral=True, sequence=True)
        stores[0].join_election("b1")
        old.create(f"{ELECTION}/n_", b"old2", ephemeral=True, sequence=True)
        stores[1].join_election("b2")
        view = stores[0].read_view("b1", Tier.BRANCH)
        assert view.candidates == ("old1", "b1", "old2", "b2")
    finally:
        for store in stores:
            store.stop()
