"""The pure parts of ``benchmarks/zk_sessions.py``, with no server: the wire protocol's framing
and replies, the request accounting of a simulated leaf's reads, its simulated Redis and
decisions, and the report's targets."""

from __future__ import annotations

import asyncio
import struct
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kazoo.exceptions import ConnectionLoss, NoNodeError
from kazoo.protocol.serialization import (
    Create,
    Exists,
    GetChildren,
    GetChildren2,
    GetData,
    Ping,
)
from kazoo.protocol.states import ZnodeStat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import zkleaf
import zkmonitor
import zkphases
import zkreport
import zkwire
from zkstore import AsyncStore

from prodstate.core.actions import Register, Replicate
from prodstate.core.decide import decide
from prodstate.core.model import Lineage, Member, RootRecord, Tier
from prodstate.core.rendezvous import choose_parent
from prodstate.zk.paths import Layout

LAYOUT = Layout("sim")
REPLID = "5" * 40


def reply(xid: int, err: int = 0, body: bytes = b"", zxid: int = 7) -> bytes:
    """A reply frame's payload (without its length)."""
    return struct.pack("!iqi", xid, zxid, err) + body


def string(text: str) -> bytes:
    return struct.pack("!i", len(text)) + text.encode()


# --- framing and replies ----------------------------------------------------------------------


def test_a_request_is_framed_as_kazoo_submits_it():
    raw = zkwire.frame(GetData("/a", True), 5)
    body = struct.pack("!ii", 5, 4) + string("/a") + b"\x01"
    assert raw == struct.pack("!i", len(body)) + body
    assert zkwire.frame(Ping(), zkwire.PING_XID)[4:] == struct.pack("!ii", -2, 11)


def test_the_handshake_has_neither_xid_nor_type():
    connect = zkwire.Connect(0, 0, 10_000, 0, b"\x00" * 16, False)
    raw = zkwire.frame(connect)
    assert raw[4:] == bytes(connect.serialize())


def test_framer_returns_whole_frames_however_the_bytes_arrive():
    stream = b"".join(struct.pack("!i", len(p)) + p for p in (b"abc", b"", b"defgh"))
    for cut in range(len(stream) + 1):
        framer = zkwire.Framer()
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [b"abc", b"", b"defgh"]
        assert framer.buffer == bytearray()


def test_framer_refuses_an_absurd_length():
    with pytest.raises(ConnectionLoss):
        zkwire.Framer().feed(struct.pack("!i", -5))


def test_replies_answer_their_request_or_raise_its_error():
    children = zkwire.Reply(reply(3, body=struct.pack("!i", 2) + string("a") + string("b")))
    assert children.result(GetChildren("/x", False)) == ["a", "b"]
    missing = zkwire.Reply(reply(4, err=NoNodeError.code))
    assert missing.result(Exists("/x", True)) is None
    with pytest.raises(NoNodeError):
        missing.result(GetData("/x", True))


def test_a_watch_event_is_parsed():
    event = zkwire.Reply(
        reply(zkwire.WATCH_XID, zxid=-1, body=struct.pack("!ii", 4, 3) + string("/p"))
    )
    assert event.event is not None and (event.event.type, event.event.path) == (4, "/p")


def test_counts_add_requests_by_kind_and_trace_them_tagged():
    counts = zkwire.Counts()
    counts.add("GetData")
    counts.trace, counts.tag = [], "read"
    counts.add("GetData")
    counts.add("GetChildren")
    assert counts.total == 3 and counts.snapshot()["GetData"] == 2
    assert [(name, tag) for _, name, tag in counts.trace] == [
        ("GetData", "read"),
        ("GetChildren", "read"),
    ]


class FakeWire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def abort(self) -> None:
        self.aborted = True


def test_replies_are_matched_to_requests_in_order_and_watches_go_to_their_callback():
    async def scenario() -> None:
        events: list[Any] = []
        session = zkwire.Session([("127.0.0.1", 1)], 10.0, on_state=print, on_watch=events.append)
        wire = FakeWire()
        session.wire, session.state = wire, zkwire.CONNECTED  # type: ignore[assignment]
        first = asyncio.ensure_future(session.call(GetChildren("/x", True), 1.0))
        second = asyncio.ensure_future(session.call(Exists("/y", True), 1.0))
        await asyncio.sleep(0)
        assert len(wire.sent) == 2
        session.received(
            wire, reply(zkwire.WATCH_XID, body=struct.pack("!ii", 4, 3) + string("/x"))
        )
        session.received(wire, reply(1, body=struct.pack("!i", 0)))
        session.received(wire, reply(2, err=NoNodeError.code, zxid=9))
        assert await first == [] and await second is None
        assert [e.path for e in events] == ["/x"] and session.last_zxid == 9
        out_of_order = asyncio.ensure_future(session.call(GetData("/z", False), 1.0))
        await asyncio.sleep(0)
        session.received(wire, reply(99))
        assert wire.aborted and not out_of_order.done()
        out_of_order.cancel()

    asyncio.run(scenario())


# --- the store's request accounting -----------------------------------------------------------


def stat(owner: int = 0, version: int = 0, cversion: int = 0) -> ZnodeStat:
    return ZnodeStat(1, 1, 0, 0, version, cversion, 0, owner, 0, 0, 1)


class FakeSession:
    """Answers a leaf's requests from a dict of znodes, counting them."""

    def __init__(self, znodes: dict[str, bytes], owners: dict[str, int]) -> None:
        self.znodes, self.owners = znodes, owners
        self.cversions: dict[str, int] = {}  # children created or deleted, by folder
        self.counts = zkwire.Counts()
        self.connected, self.session_id = True, 42
        self.sent: list[tuple[str, str]] = []

    def add(self, path: str, data: bytes, owner: int) -> None:
        self.znodes[path], self.owners[path] = data, owner
        folder = path.rpartition("/")[0]
        self.cversions[folder] = self.cversions.get(folder, 0) + 1

    def remove(self, path: str) -> None:
        del self.znodes[path]
        folder = path.rpartition("/")[0]
        self.cversions[folder] = self.cversions.get(folder, 0) + 1

    def stat(self, path: str) -> ZnodeStat:
        return stat(self.owners.get(path, 0), cversion=self.cversions.get(path, 0))

    async def call(self, request: Any, timeout: float) -> Any:
        name = zkwire.request_name(request)
        self.counts.add(name)
        self.sent.append((name, getattr(request, "path", "")))
        path = request.path
        if isinstance(request, GetChildren | GetChildren2):
            prefix = path + "/"
            children = [p[len(prefix) :] for p in self.znodes if p.startswith(prefix)
                        and "/" not in p[len(prefix) :]]  # fmt: skip
            return (children, self.stat(path)) if isinstance(request, GetChildren2) else children
        if isinstance(request, Exists):
            return self.stat(path) if path in self.znodes else None
        if isinstance(request, GetData):
            if path not in self.znodes:
                raise NoNodeError()
            return self.znodes[path], self.stat(path)
        if isinstance(request, Create):
            self.add(path, request.data, 42)
            return path
        return None


def cluster_znodes(branches: int, registered: bool) -> tuple[dict[str, bytes], dict[str, int]]:
    znodes = {LAYOUT.path(p): b"" for p in ("members", "members/branch", "members/leaf",
                                             "election", "maintenance")}  # fmt: skip
    owners = {}
    for i in range(1, branches + 1):
        path = LAYOUT.member(Tier.BRANCH, f"branch{i}")
        znodes[path] = Member(f"branch{i}", Tier.BRANCH, f"10.0.0.{i}:6379").to_json()
        owners[path] = 100 + i
    root = RootRecord("branch1", "10.0.0.1:6379", 1, REPLID)
    znodes[LAYOUT.root], owners[LAYOUT.root] = root.to_json(), 101
    znodes[LAYOUT.epoch] = Lineage(1, "branch1", "10.0.0.1:6379").with_replid(REPLID).to_json()
    if registered:  # this leaf's member, owned by the fake session
        own = LAYOUT.member(Tier.LEAF, "leaf1")
        znodes[own], owners[own] = Member("leaf1", Tier.LEAF, "leaf1.sim:6379").to_json(), 42
    return znodes, owners


def store_for(branches: int, registered: bool = True) -> tuple[AsyncStore, FakeSession]:
    session = FakeSession(*cluster_znodes(branches, registered))
    store = AsyncStore(session, "sim", "leaf1", 3.0, None, lambda: None)  # type: ignore[arg-type]
    return store, session


def test_a_new_session_syncs_and_checks_the_persistent_znodes():
    store, session = store_for(3)
    asyncio.run(store.connected_session())
    assert [name for name, _ in session.sent] == ["Sync"] + ["Exists"] * 5
    asyncio.run(store.connected_session())
    assert len(session.sent) == 6  # once per session


@pytest.mark.parametrize("branches", [3, 10])
def test_a_first_full_read_costs_branches_plus_six_a_later_one_plus_five(branches):
    store, session = store_for(branches)
    asyncio.run(store.connected_session())
    session.sent.clear()
    view = asyncio.run(store.read_view(full=True))
    assert len(session.sent) == branches + 6  # the folder, its list, members, own, root...
    assert {m.node_id for m in view.branches} == {f"branch{i}" for i in range(1, branches + 1)}
    assert view.root is not None and view.registered is not None
    session.sent.clear()
    asyncio.run(store.read_view(full=False))
    assert session.sent == []
    asyncio.run(store.read_view(full=True))
    assert len(session.sent) == branches + 5  # no branch came or went: not listed again
    assert ("GetChildren2", LAYOUT.members(Tier.BRANCH)) not in session.sent


def test_a_leaf_not_registered_reads_its_member_every_time():
    store, session = store_for(3, registered=False)
    asyncio.run(store.read_view(full=True))
    session.sent.clear()
    view = asyncio.run(store.read_view(full=False))
    assert session.sent == [("GetData", LAYOUT.member(Tier.LEAF, "leaf1"))]  # no watch is left
    assert view.registered is None


def test_a_branch_lost_costs_a_leaf_nothing_then_or_at_its_next_full_read():
    store, session = store_for(10)
    asyncio.run(store.read_view(full=True))
    session.sent.clear()
    gone = LAYOUT.member(Tier.BRANCH, "branch7")
    session.remove(gone)
    store.cache.deleted(gone)  # the watch the read of its member left
    view = asyncio.run(store.read_view(full=False))
    assert session.sent == []
    assert "branch7" not in [m.node_id for m in view.branches]
    asyncio.run(store.read_view(full=True))
    assert ("GetChildren2", LAYOUT.members(Tier.BRANCH)) not in session.sent


def test_a_branch_come_costs_a_leaf_the_list_and_its_member():
    store, session = store_for(3)
    asyncio.run(store.read_view(full=True))
    session.sent.clear()
    folder, new = LAYOUT.members(Tier.BRANCH), LAYOUT.member(Tier.BRANCH, "branch4")
    session.add(new, Member("branch4", Tier.BRANCH, "10.0.0.4:6379").to_json(), 104)
    store.cache.invalidate(folder)  # its data, bumped by the branch's registration
    view = asyncio.run(store.read_view(full=False))
    assert session.sent == [("GetData", folder), ("GetChildren2", folder), ("GetData", new)]
    assert "branch4" in [m.node_id for m in view.branches]


def test_the_root_gone_costs_a_get_and_an_exists():
    store, session = store_for(3)
    asyncio.run(store.read_view(full=True))
    session.sent.clear()
    del session.znodes[LAYOUT.root]
    store.cache.invalidate(LAYOUT.root)
    view = asyncio.run(store.read_view(full=False))
    assert session.sent == [("GetData", LAYOUT.root), ("Exists", LAYOUT.root)]
    assert view.root is None


def test_registering_creates_the_member_and_keeps_it_without_reading_it_back():
    store, session = store_for(3, registered=False)
    asyncio.run(store.read_view(full=True))
    session.sent.clear()
    member = Member("leaf1", Tier.LEAF, "leaf1.sim:6379", available=False)
    asyncio.run(store.register(member))
    own = LAYOUT.member(Tier.LEAF, "leaf1")
    assert session.sent == [("GetData", own), ("Create", own)]
    session.sent.clear()
    view = asyncio.run(store.read_view(full=False))
    assert session.sent == [] and view.registered == member
    asyncio.run(store.register(replace(member, fresh=False)))  # known now: set only
    assert session.sent == [("SetData", own)]


# --- the simulated leaf -----------------------------------------------------------------------


def test_next_tick_is_on_the_loops_grid_and_never_now():
    assert zkleaf.next_tick(10.0, 10.0, 0.2) == pytest.approx(10.2)
    assert zkleaf.next_tick(10.0, 10.45, 0.2) == pytest.approx(10.6)
    assert zkleaf.next_tick(10.0, 3.0, 0.2) == pytest.approx(10.2)


def test_the_heartbeat_stops_where_the_path_is_cut():
    path = zkleaf.DataPath()
    assert path.heartbeat("a", 10.2) == path.heartbeat("a", 10.4) != path.heartbeat("a", 10.6)
    path.dead["a"] = 11.0
    assert path.heartbeat("a", 20.0) == path.heartbeat("a", 11.0)
    assert path.heartbeat("b", 20.0) != path.heartbeat("b", 11.0)
    path.source_down = 12.0
    assert path.heartbeat("b", 20.0) == path.heartbeat("b", 12.0)
    assert path.cut_since("a") == 11.0 and path.cut_since("b") == 12.0


def leaf_with_view(branches: int) -> zkleaf.SimLeaf:
    config = zkleaf.LeafConfig(hosts=(("127.0.0.1", 1),), cluster="sim", sync_delay=5.0)
    leaf = zkleaf.SimLeaf("leaf1", config, __import__("random").Random(1), zkleaf.DataPath())
    store, _ = store_for(branches, registered=False)
    leaf.view = asyncio.run(store.read_view(full=True))
    leaf.session.state = zkwire.CONNECTED
    return leaf


def test_a_leaf_registers_empty_then_available_then_fresh_as_a_real_one():
    leaf = leaf_with_view(5)
    first = decide(leaf._snapshot(100.0)).action
    assert isinstance(first, Register) and not first.member.available
    leaf.view = zkleaf.replace(leaf.view, registered=first.member)
    move = decide(leaf._snapshot(100.0)).action
    assert isinstance(move, Replicate)
    leaf.replicate(move.address, 100.0)
    assert leaf.redis_heartbeat(104.0) is None and leaf.redis_heartbeat(105.0) is not None
    second = decide(leaf._snapshot(105.0)).action
    assert isinstance(second, Register) and second.member.available and second.member.judging
    leaf.view = zkleaf.replace(leaf.view, registered=second.member)
    now = 105.0
    while not leaf.freshness.fresh:
        leaf.freshness = leaf.freshness.observe(leaf.redis_heartbeat(now), now, zkleaf.POLICY)
        now += 0.6
    third = decide(leaf._snapshot(now)).action
    assert isinstance(third, Register) and third.member.fresh


@pytest.mark.parametrize("leaf_id", [f"leaf{i}" for i in range(1, 40, 7)])
def test_a_leaf_picks_its_rendezvous_branch_other_than_the_root(leaf_id):
    leaf = leaf_with_view(6)
    leaf.node_id = leaf_id
    leaf.view = zkleaf.replace(
        leaf.view, registered=Member(leaf_id, Tier.LEAF, leaf.address, available=False,
                                     fresh=False, judging=True),
    )  # fmt: skip
    action = decide(leaf._snapshot(100.0)).action
    chosen = choose_parent(leaf_id, [f"branch{i}" for i in range(2, 7)])
    assert isinstance(action, Replicate) and action.address == f"10.0.0.{chosen[-1]}:6379"


# --- the monitor and the report ---------------------------------------------------------------


def test_packets_count_across_a_restarted_server():
    samples = [
        zkmonitor.Sample(0.0, [{"zk_packets_received": 100.0}]),
        zkmonitor.Sample(1.0, [{"zk_packets_received": 160.0}]),
        zkmonitor.Sample(2.0, [{}]),  # down
        zkmonitor.Sample(3.0, [{"zk_packets_received": 30.0}]),  # restarted
    ]
    window = zkmonitor.Window(samples)
    assert window.packets() == 90.0 and window.peak_rate() == 60.0


def figures(requests: float, rehome: float, expired: int = 0) -> dict[str, Any]:
    herd = {"requests_per_affected_leaf": requests, "rehome": {"max": rehome}, "wrong": 0}
    quiet = {"client_expired": expired, "server_expired": 0}
    return {"storm": quiet, "steady": quiet, "restart": quiet, "herd": herd}


def test_targets_follow_the_issue():
    phases = ["storm", "steady", "herd", "restart"]
    assert all(ok for _, ok, _ in zkreport.targets(figures(1.0, 2.0), phases))
    missed = [name for name, ok, _ in zkreport.targets(figures(2.5, 6.0, 1), phases) if not ok]
    assert len(missed) == 5
    missing = zkreport.targets({}, ["storm"])
    assert missing == [("no session expires (storm)", False, "not measured")]


def test_a_leaf_is_home_from_the_first_of_its_last_good_decisions():
    assert zkphases.last_run_start([False, True, False, True, True]) == 3
    assert zkphases.last_run_start([True, True]) == 0
    assert zkphases.last_run_start([True, False]) == 2
