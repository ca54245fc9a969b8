"""Rules defined once and used everywhere: heartbeat age, root holding, member znodes,
the expected parent, the znode layout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.client import Client
from prodstate.core.follow import follow_target
from prodstate.core.health import health, role_of
from prodstate.core.heartbeat import MAX_FUTURE, age, age_of, parse_heartbeat, problem
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    DataError,
    Member,
    RedisState,
    RootRecord,
    Tier,
)
from prodstate.core.nagios_range import Range
from prodstate.core.tree import build_status
from prodstate.ops.check import Status, evaluate
from prodstate.zk.paths import PERSISTENT, Layout
from tests.snapshot_builder import (
    ME,
    ME_ADDR,
    ROOT_ADDR,
    ROOT_ID,
    SESSION,
    aged,
    master,
    root_snap,
    snap,
)

# --- the heartbeat -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [None, "", "abc", "inf", "-inf", "nan", "1e400", b"\xff", "1" * 4000, "1" * 33]
)
def test_a_heartbeat_that_is_not_a_finite_number_is_unknown(raw):
    assert parse_heartbeat(raw) is None
    assert age(raw, 100.0) is None
    assert problem(raw, 100.0)


def test_a_heartbeat_ages_from_now_and_never_below_zero():
    assert parse_heartbeat(b"12.5") == 12.5
    assert age("90.0", 100.0) == 10.0
    assert age("104.0", 100.0) == 0.0  # clock skew
    assert problem("104.0", 100.0) == ""


@pytest.mark.parametrize("ahead", [MAX_FUTURE + 0.1, 3600, 11 * 86400])
def test_a_heartbeat_further_ahead_than_clock_skew_is_no_heartbeat(ahead):
    """Every reader (client, check, status, metrics) uses these: a forged future heartbeat
    cannot make a stale copy look fresh."""
    raw = str(100.0 + ahead)
    assert age(raw, 100.0) is None and age_of(100.0 + ahead, 100.0) is None
    assert "in the future" in problem(raw, 100.0)
    assert Client.staleness(raw, 100.0) is None
    assert evaluate(raw, 100.0, Range(0, 5), Range(0, 30)).status is Status.UNKNOWN


# --- holding the root ------------------------------------------------------------------------


def test_the_root_is_held_by_one_node_in_one_session():
    record = RootRecord(ME, ME_ADDR, 4, owner_session=SESSION)
    assert record.held_by(ME, SESSION)
    assert not record.held_by(ME, SESSION - 1)  # this node's previous session
    assert not record.held_by(ROOT_ID, SESSION)
    s = root_snap()
    assert s.holds_root and role_of(s) == "root"
    previous = replace(s, session_id=SESSION + 1)
    assert not previous.holds_root and role_of(previous) == "master-unelected"


# --- member znodes -----------------------------------------------------------------------------


def test_a_member_znode_must_name_its_own_node_and_tier():
    member = Member("b1", Tier.BRANCH, "b1.example.net:6379")
    assert Member.from_znode("b1", Tier.BRANCH, member.to_json()) == member
    assert Member.from_znode("b1", "branch", member.to_json()) == member
    with pytest.raises(DataError, match="names node b1"):
        Member.from_znode("b2", Tier.BRANCH, member.to_json())
    with pytest.raises(DataError, match="says tier branch"):
        Member.from_znode("b1", Tier.LEAF, member.to_json())


# --- the expected parent: the agents' choice is what status expects ----------------------------

node_ids = st.sampled_from(["b1", "b2", "b3", "b4", "b5"])
branch_sets = st.dictionaries(node_ids, st.booleans(), min_size=0, max_size=5)


@given(branch_sets, st.sampled_from(["b1", "b2", "b3"]), st.sampled_from(["l1", "l2", "l3"]))
def test_status_expects_the_parent_the_agent_follows(available, root_id, leaf_id):
    branches = tuple(
        Member(n, Tier.BRANCH, f"{n}.example.net:6379", up) for n, up in sorted(available.items())
    )
    root = RootRecord(root_id, f"{root_id}.example.net:6379", 2, "a" * 40, owner_session=7)
    s = snap(node_id=leaf_id, tier=Tier.LEAF, root=root, branches=branches)
    chosen, _ = follow_target(s)
    leaf = Member(leaf_id, Tier.LEAF, f"{leaf_id}.example.net:6379")
    members = {"branch": {m.node_id: m for m in branches}, "leaf": {leaf_id: leaf}}
    states = {leaf_id: RedisState(reachable=True, role="slave", master=chosen, link_up=True)}
    status = build_status(root, None, members, states, {}, 0.0, None)
    expected = next(n.expected_parent for n in status.nodes if n.node_id == leaf_id)
    assert expected == chosen


# --- the znode layout --------------------------------------------------------------------------


def test_the_layout_names_every_znode_under_the_cluster():
    layout = Layout("prod")
    assert layout.base == "/prodstate/prod"
    assert layout.member(Tier.LEAF, "l1") == "/prodstate/prod/members/leaf/l1"
    assert layout.members("branch") == "/prodstate/prod/members/branch"
    assert (layout.root, layout.epoch, layout.election) == (
        "/prodstate/prod/root",
        "/prodstate/prod/epoch",
        "/prodstate/prod/election",
    )
    assert layout.lock("db") == "/prodstate/prod/statedb/locks/db"
    assert layout.path(PERSISTENT[0]) == "/prodstate/prod/members/branch"
    assert layout.path("") == layout.base
    with pytest.raises(DataError):
        Layout("../etc")
    with pytest.raises(ValueError):
        layout.members("root")


# --- the epoch key in the root's Redis --------------------------------------------------------


def test_status_and_health_report_an_epoch_key_that_differs_from_zookeeper():
    s = root_snap(redis=master(min_replicas_to_write=1, epoch_key="9"), freshness=aged(0.1))
    ok, reason = health(s)
    assert not ok and "epoch key '9'" in reason
    assert health(replace(s, redis=replace(s.redis, epoch_key="4")))[0]
    root = s.root
    assert root is not None
    member = Member(ME, Tier.BRANCH, ME_ADDR)
    status = build_status(root, None, {"branch": {ME: member}}, {ME: s.redis}, {}, 0.0, None)
    assert any("holds epoch key '9'" in p for p in status.problems)
    fenced = replace(s.redis, min_replicas_to_write=FENCE_MIN_REPLICAS)  # mid-takeover
    status = build_status(root, None, {"branch": {ME: member}}, {ME: fenced}, {}, 0.0, None)
    assert not any("epoch key" in p for p in status.problems)


def test_status_reports_a_heartbeat_from_the_future():
    member = Member("l1", Tier.LEAF, "l1.example.net:6379")
    root = RootRecord(ROOT_ID, ROOT_ADDR, 2, owner_session=7)
    state = RedisState(reachable=True, role="slave", master=ROOT_ADDR, link_up=True)
    members = {"leaf": {"l1": member}}
    status = build_status(root, None, members, {"l1": state}, {"l1": 1e9}, 1000.0, 10.0)
    assert any("in the future" in p for p in status.problems)
    assert next(n for n in status.nodes if n.node_id == "l1").staleness is None
