"""Rules defined once and used everywhere: heartbeat age, root holding, member znodes,
the expected parent, the znode layout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.core.decide import follow_target
from prodstate.core.health import role_of
from prodstate.core.heartbeat import age, parse_heartbeat
from prodstate.core.model import DataError, Member, RedisState, RootRecord, Tier
from prodstate.core.tree import build_status
from prodstate.zk.paths import PERSISTENT, Layout
from tests.snapshot_builder import ME, ME_ADDR, ROOT_ID, SESSION, root_snap, snap

# --- the heartbeat -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "abc", "inf", "-inf", "nan", "1e400", b"\xff"])
def test_a_heartbeat_that_is_not_a_finite_number_is_unknown(raw):
    assert parse_heartbeat(raw) is None
    assert age(raw, 100.0) is None


def test_a_heartbeat_ages_from_now_and_never_below_zero():
    assert parse_heartbeat(b"12.5") == 12.5
    assert age("90.0", 100.0) == 10.0
    assert age("110.0", 100.0) == 0.0


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
