"""Decisions driven by freshness: stale leaves move, stale branches withdraw, a root no
branch acknowledges gives up, and none of it makes two roots or moves a fresh tree."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prodstate.core.actions import (
    AllowLeafReplicas,
    Claim,
    JoinElection,
    LeaveElection,
    Probe,
    Register,
    Replicate,
    Serve,
    StepDown,
    Wait,
)
from prodstate.core.decide import decide, unacked_since
from prodstate.core.follow import rejoin_marks
from prodstate.core.freshness import DEFAULT_POLICY, Freshness
from prodstate.core.model import FENCE_MIN_REPLICAS, Member, RejoinMarks, Tier
from prodstate.core.rendezvous import choose_parent, parent_of
from tests.snapshot_builder import (
    ME,
    ME_ADDR,
    NOW,
    ROOT_ADDR,
    ROOT_ID,
    addr,
    aged,
    branch,
    election_snap,
    master,
    peer,
    replica,
    root_snap,
    snap,
    snapshots,
)

STALE_AFTER = DEFAULT_POLICY.stale_after
LEAF_LIMIT = DEFAULT_POLICY.leaf_stale_after


def stale_branch(node_id: str) -> Member:
    return replace(branch(node_id), fresh=False)


def leaf(**kw):
    return snap(tier=Tier.LEAF, **kw)


def parent_for(node_id: str = ME) -> str:
    return choose_parent(node_id, ["b2", "b3"])


def other(name: str) -> str:
    return "b3" if name == "b2" else "b2"


# --- publishing freshness ----------------------------------------------------------------


def test_a_branch_publishes_stale_once_its_verdict_falls():
    s = snap(freshness=aged(5.0, fresh=False), registered=branch(ME))
    d = decide(s)
    assert d.action == Register(replace(branch(ME), fresh=False))
    assert "stale: heartbeat advanced 5.0s ago" in d.reason


def test_a_restarted_branch_publishes_judging_not_stale_until_its_first_verdict():
    started = Freshness("1.0", NOW - 1, None, False, checked_at=NOW)
    d = decide(snap(freshness=started, registered=branch(ME)))
    assert d.action == Register(replace(branch(ME), fresh=False, judging=True))
    assert "judging: heartbeat not seen advancing in 1.0s" in d.reason
    judged = replace(started, first_seen=NOW - 10, judged=True)
    assert decide(snap(freshness=judged, registered=branch(ME))).action == Register(
        replace(branch(ME), fresh=False)
    )


def test_leaves_keep_a_judging_branch_and_never_blame_it():
    """A branch agent restarted over a running Redis: its leaves stay where they are."""
    mine = parent_for()
    judging = replace(branch(mine), fresh=False, judging=True)
    members = (branch(ROOT_ID), judging, branch(other(mine)))
    root = snap().root
    assert parent_of(ME, Tier.LEAF, root, members)[0] == addr(mine)
    s = leaf(redis=replica(addr(mine)), freshness=aged(3 * LEAF_LIMIT, fresh=False))
    s = replace(s, branches=members, master_since=NOW - 3 * LEAF_LIMIT)
    assert decide(s).action == Wait()


def test_a_branch_publishes_fresh_again_once_risen():
    s = snap(freshness=aged(0.2), registered=stale_branch(ME))
    assert decide(s).action == Register(branch(ME))


def test_no_publication_while_the_verdict_holds():
    """The member znode is written when freshness rises or falls, not every tick."""
    s = snap(freshness=aged(4.0, fresh=True))  # old, but the verdict has not fallen yet
    assert isinstance(decide(s).action, Wait)


# --- leaves ------------------------------------------------------------------------------


def test_leaves_pass_over_a_branch_that_reports_stale():
    parent = parent_for()
    branches = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    d = decide(leaf(branches=branches, redis=replica(master=addr(parent))))
    assert isinstance(d.action, Replicate) and d.action.address == addr(other(parent))
    assert f"passing over stale: {parent}" in d.reason


def test_when_every_branch_is_stale_no_leaf_moves():
    """The whole tree is behind (the root is in trouble): moving helps nobody."""
    parent = parent_for()
    branches = (branch(ROOT_ID), stale_branch("b2"), stale_branch("b3"))
    s = leaf(branches=branches, redis=replica(master=addr(parent)), freshness=aged(60, False))
    assert decide(s).action == Wait()


GRACE = DEFAULT_POLICY.rejoin_grace


def rejoining(fresh_since: float, after_none_fresh: bool = True, **kw):
    """A stale leaf under a branch reporting stale while the other reports fresh."""
    parent = parent_for()
    branches = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    marks = RejoinMarks(False, fresh_since, after_none_fresh)
    return leaf(branches=branches, redis=replica(master=addr(parent)), rejoin=marks,
                freshness=aged(20, False), **kw)  # fmt: skip


def test_after_a_new_root_a_leaf_gives_its_branch_a_moment_to_catch_up_with_the_others():
    """Every branch fell behind with the old root; the other turned fresh first, 1 s ago."""
    d = decide(rejoining(fresh_since=NOW - 1))
    assert d.action == Wait(), d.reason
    late = decide(rejoining(fresh_since=NOW - GRACE))
    assert isinstance(late.action, (Probe, Replicate))  # still stale after the grace: move
    assert f"passing over stale: {parent_for()}" in late.reason


def test_meanwhile_a_leaf_that_must_move_goes_straight_to_its_own_choice():
    """The leaf's branch became the root: it moves to its rendezvous choice among all
    branches, not to the first that turned fresh (and again later)."""
    choice = parent_for()
    branches = (branch(ROOT_ID), stale_branch(choice), branch(other(choice)))
    s = leaf(branches=branches, redis=replica(master=ROOT_ADDR), freshness=aged(20, False),
             rejoin=RejoinMarks(False, NOW - 1, True))  # fmt: skip
    d = decide(replace(s, probed=True))
    assert isinstance(d.action, Replicate) and d.action.address == addr(choice), d.reason


def test_a_branch_that_falls_behind_fresh_ones_is_left_at_once():
    """The other branch was fresh all along (this one's own link is cut): no grace."""
    d = decide(rejoining(fresh_since=NOW - 100, after_none_fresh=False))
    assert isinstance(d.action, (Probe, Replicate)), d.reason
    d = decide(rejoining(fresh_since=NOW - 0.5, after_none_fresh=False))
    assert isinstance(d.action, (Probe, Replicate)), d.reason


def test_rejoin_marks_note_when_every_branch_fell_behind_and_when_one_rose_again():
    parent = parent_for()
    every_fresh = (branch(ROOT_ID), branch("b2"), branch("b3"))
    s = leaf(redis=replica(master=addr(parent)), branches=every_fresh)
    marks = rejoin_marks(RejoinMarks(), s)
    assert marks == RejoinMarks(False, NOW, False)
    assert rejoin_marks(marks, replace(s, now=NOW + 1)) == marks  # still fresh: as it was
    one_stale = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    assert rejoin_marks(marks, replace(s, now=NOW + 2, branches=one_stale)) == marks
    every_stale = (branch(ROOT_ID), stale_branch("b2"), stale_branch("b3"))
    fell = rejoin_marks(marks, replace(s, now=NOW + 5, branches=every_stale))
    assert fell == RejoinMarks(True, None, False)
    gone = rejoin_marks(fell, replace(s, now=NOW + 9, branches=every_stale[1:], root=None))
    assert gone == fell  # the old root's member went with its session: still none fresh
    rose = rejoin_marks(gone, replace(s, now=NOW + 20, branches=one_stale))
    assert rose == RejoinMarks(False, NOW + 20, True)
    assert rejoin_marks(rose, replace(s, now=NOW + 21, branches=every_fresh)) == rose
    assert rejoin_marks(rose, snap(now=NOW + 22)) == RejoinMarks()  # a branch notes nothing


def blamed(age: float = LEAF_LIMIT + 1, **kw):
    """A stale leaf on its rendezvous branch, which reports fresh, with the other fresh."""
    parent = parent_for()
    base = dict(redis=replica(master=addr(parent)), freshness=aged(age, fresh=False))
    base["new_parent"] = peer(other(parent), replica(offset=2000))
    return parent, leaf(**{**base, **kw})


def test_a_stale_leaf_moves_off_a_fresh_branch_to_the_next_in_its_order():
    """It publishes the branch it avoids first: then it moves."""
    parent, s = blamed()
    d = decide(s)
    assert d.action == Register(replace(s.registered, fresh=False, avoiding=(parent,)))
    d = decide(replace(s, registered=d.action.member))
    assert d.action == Replicate(addr(other(parent)), when_caught_up=True, avoid=parent)
    assert f"on the link from branch {parent}, which reports fresh" in d.reason


@pytest.mark.parametrize(
    "change",
    [
        dict(freshness=aged(LEAF_LIMIT - 0.5, fresh=False)),  # not stale for long enough
        dict(master_since=NOW - 1),  # just moved here: the new link gets its chance
        dict(freshness=aged(LEAF_LIMIT + 1, fresh=True)),  # the verdict has not fallen
        dict(branches=(branch(ROOT_ID), branch("b2"), stale_branch("b3"))),  # nowhere fresh
    ],
)
def test_a_leaf_does_not_blame_its_link_too_early_or_in_vain(change):
    parent, s = blamed()
    if "branches" in change:
        change = dict(branches=(branch(ROOT_ID), branch(parent), stale_branch(other(parent))))
    s = replace(s, **change)
    s = replace(s, registered=replace(s.registered, fresh=s.freshness.fresh))
    d = decide(s)
    assert d.action == Wait(), d.reason


def test_an_avoided_branch_is_published_and_left_alone_until_the_avoidance_ends():
    parent, s = blamed(age=0.1)
    s = replace(s, freshness=aged(0.1), avoiding=frozenset({parent}))
    s = replace(s, redis=replica(master=addr(other(parent))))
    d = decide(s)
    assert d.action == Register(
        Member(ME, Tier.LEAF, ME_ADDR, True, avoiding=(parent,)),
    )
    s = replace(s, registered=d.action.member)
    assert decide(s).action == Wait()


def test_a_leaf_that_falls_and_blames_its_link_publishes_both_in_one_write():
    parent, s = blamed()
    s = replace(s, registered=replace(s.registered, fresh=True))  # the fall is news
    d = decide(s)
    assert d.action == Register(replace(s.registered, fresh=False, avoiding=(parent,)))
    s = replace(s, registered=d.action.member)
    d = decide(s)
    assert d.action == Replicate(addr(other(parent)), when_caught_up=True, avoid=parent)
    moved = replace(
        s,
        redis=replica(master=addr(other(parent))),
        avoiding=frozenset({parent}),
        master_since=NOW,
    )
    assert decide(moved).action == Wait()  # nothing more to publish until it rises


def test_a_leaf_that_blamed_its_link_in_vain_does_not_move():
    """Its write answered, it reads what ZooKeeper told of meanwhile: its parent fell too
    (the root was lost). It publishes again and stays."""
    parent, s = blamed()
    s = replace(s, registered=replace(s.registered, fresh=False, avoiding=(parent,)))
    every_stale = (branch(ROOT_ID), stale_branch(parent), stale_branch(other(parent)))
    d = decide(replace(s, branches=every_stale))
    assert d.action == Register(replace(s.registered, avoiding=())), d.reason


def test_a_leaf_that_falls_and_passes_over_its_stale_parent_moves_first():
    """Nothing to blame: it moves, then publishes its fall with the new parent's name."""
    parent, s = blamed()
    parent_falls = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    s = replace(s, registered=replace(s.registered, fresh=True), branches=parent_falls)
    d = decide(s)
    assert d.action == Replicate(addr(other(parent)), when_caught_up=True), d.reason
    assert d.reason.endswith("publishing its freshness once moved")


def test_a_leaf_about_to_blame_its_link_holds_its_fall_until_it_does():
    parent, s = blamed(age=LEAF_LIMIT - 0.5)
    s = replace(s, registered=replace(s.registered, fresh=True))
    d = decide(s)
    assert d.action == Wait(), d.reason
    d = decide(replace(s, freshness=aged(LEAF_LIMIT + 1, fresh=False)))
    assert d.action == Register(replace(s.registered, fresh=False, avoiding=(parent,)))
    # Its parent reports stale too: it is passed over at once, nothing blamed.
    parent_falls = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    d = decide(replace(s, branches=parent_falls))
    assert d.action == Replicate(addr(other(parent)), when_caught_up=True), d.reason


def test_a_leaf_does_not_blame_its_link_before_reading_what_a_watch_told_of():
    """A root lost: every branch publishes its fall, and a leaf stale for long enough
    whose watch fired but which has not read the fall yet must not take it for its link."""
    parent, s = blamed()
    s = replace(s, registered=replace(s.registered, fresh=True), view_outdated=True)
    d = decide(s)
    assert d.action == Wait(), d.reason  # nor is its fall published apart from the move
    d = decide(replace(s, view_outdated=False))
    assert d.action == Register(replace(s.registered, fresh=False, avoiding=(parent,)))


def test_a_leaf_does_not_move_on_a_view_a_watch_has_outdated():
    """Its parent's fall read, but not yet the other's, of which a watch told."""
    parent = parent_for()
    branches = (branch(ROOT_ID), stale_branch(parent), branch(other(parent)))
    s = leaf(branches=branches, redis=replica(master=addr(parent)), view_outdated=True)
    d = decide(s)
    assert d.action == Wait() and "once it has read" in d.reason, d.reason
    d = decide(replace(s, view_outdated=False))
    assert isinstance(d.action, Replicate) and d.action.address == addr(other(parent))


def test_a_leaf_without_a_parent_chooses_one_whatever_its_view():
    empty = leaf(redis=master(), view_outdated=True, probed=True)
    d = decide(empty)
    assert isinstance(d.action, Replicate), d.reason


def test_a_leaf_that_falls_with_nowhere_to_go_publishes_its_fall_at_once():
    parent, s = blamed()
    s = replace(
        s,
        branches=(branch(ROOT_ID), branch(parent), stale_branch(other(parent))),
        registered=replace(s.registered, fresh=True),
    )
    d = decide(s)
    assert d.action == Register(replace(s.registered, fresh=False)), d.reason


def test_a_moving_leaf_with_more_than_its_freshness_to_publish_publishes_first():
    parent, s = blamed()
    s = replace(s, registered=replace(s.registered, fresh=True, available=False))
    assert decide(s).action == Register(
        replace(s.registered, fresh=False, available=True, avoiding=(parent,))
    )


@pytest.mark.parametrize(("registered", "writes"), [(False, False), (True, True)])
def test_an_avoidance_that_ends_is_published_only_while_its_branch_is_registered(
    registered, writes
):
    parent, s = blamed(age=0.1)
    s = replace(s, freshness=aged(0.1), redis=replica(master=addr(other(parent))))
    s = replace(s, registered=replace(s.registered, fresh=True, avoiding=(parent,)))
    if not registered:  # it crashed: its znode went with its session
        s = replace(s, branches=tuple(m for m in s.branches if m.node_id != parent))
    d = decide(s)
    assert isinstance(d.action, Register) is writes, d
    if writes:
        assert d.action == Register(replace(s.registered, avoiding=()))


def test_the_avoided_branch_is_used_when_nothing_else_is_left():
    root = parent_of(ME, Tier.LEAF, snap().root, (branch(ROOT_ID), branch("b2")), ("b2",))
    assert root[0] == addr("b2")


# --- the root ----------------------------------------------------------------------------


def serving(**kw):
    """A serving root with two other branches registered."""
    branches = (branch(ME), branch("b2"), branch("b3"))
    return root_snap(branches=branches, **kw)


def test_a_root_no_branch_acknowledges_gives_up_and_holds_off():
    d = decide(serving(unacked_since=NOW - STALE_AFTER - 0.5))
    assert d.action == StepDown(hold_off=True)
    assert "no branch has acknowledged" in d.reason


def test_a_root_briefly_unacknowledged_keeps_serving():
    assert not isinstance(decide(serving(unacked_since=NOW - 1)).action, StepDown)


def test_unacked_since_starts_when_no_other_branch_acknowledges():
    s = serving(redis=master(min_replicas_to_write=1, acking=(addr("b3"),)))
    assert unacked_since(None, s) is None  # one branch acknowledges: a partial cut
    s = serving(redis=master(min_replicas_to_write=1, acking=("leaf.example.net:6379",)))
    assert unacked_since(None, s) == NOW  # a leaf's acknowledgement does not count
    assert unacked_since(NOW - 5, s) == NOW - 5
    lone = root_snap(branches=(branch(ME),))
    assert unacked_since(NOW - 5, lone) is None  # nobody else to acknowledge
    assert unacked_since(NOW - 5, snap()) is None  # not the root


def test_a_root_that_gave_up_sits_out_of_the_election():
    s = snap(root=None, in_election=False, held_off=True)
    assert not isinstance(decide(s).action, JoinElection)
    assert isinstance(decide(replace(s, held_off=False)).action, JoinElection)


# --- the election ------------------------------------------------------------------------


def test_a_stale_leader_yields_to_a_fresh_candidate_as_far_along():
    s = election_snap(freshness=aged(10, fresh=False), peers=(peer("b2", replica()),))
    d = decide(s)
    assert d.action == LeaveElection() and "b2 reports fresh" in d.reason


def test_a_stale_leader_never_yields_to_a_fresh_candidate_behind_it():
    """That would lose the writes only the leader holds."""
    behind = (peer("b2", replica(offset=900)),)
    s = election_snap(freshness=aged(10, fresh=False), peers=behind)
    assert decide(s).action == Claim(4)


def test_a_leader_cut_from_the_fenced_previous_root_claims_after_stale_after():
    old = peer(ROOT_ID, master(offset=1200, min_replicas_to_write=FENCE_MIN_REPLICAS))
    silent = replica(master=ROOT_ADDR, link_up=True, offset=1000)  # "up", nothing arrives
    s = election_snap(previous_root=old, redis=silent, offset_since=NOW - 1)
    assert decide(s).action == Wait()
    d = decide(replace(s, offset_since=NOW - STALE_AFTER - 1))
    assert d.action == Claim(4)
    assert "their link is cut" in d.reason and "200 bytes are given up" in d.reason


def test_a_leader_cut_from_the_previous_root_yields_to_a_candidate_that_got_more_of_it():
    """The cut reached the branches a moment apart: b2 acknowledged writes this leader never
    received, and they were confirmed. Claiming would give them up; b2 must lead."""
    old = peer(ROOT_ID, master(offset=1200, min_replicas_to_write=FENCE_MIN_REPLICAS))
    silent = replica(master=ROOT_ADDR, link_up=True, offset=1000)
    further = peer("b2", replica(master=ROOT_ADDR, offset=1100))
    stuck = dict(previous_root=old, redis=silent, offset_since=NOW - STALE_AFTER - 1)
    d = decide(election_snap(peers=(further,), **stuck))
    assert d.action == LeaveElection() and "b2 is ahead (1100 > 1000)" in d.reason
    level = peer("b2", replica(master=ROOT_ADDR, offset=1000))
    assert decide(election_snap(peers=(level,), **stuck)).action == Claim(4)


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=1500)
@given(snapshots)
def test_a_leaf_never_moves_to_a_stale_branch_while_a_fresh_one_is_there(s):
    d = decide(s)
    if not isinstance(d.action, Replicate) or s.tier is not Tier.LEAF or s.root is None:
        return
    by_address = {m.address: m for m in s.branches if m.node_id not in (ME, s.root.node_id)}
    target = by_address.get(d.action.address)
    fresh = [
        m
        for m in by_address.values()
        if m.available and m.fresh and m.node_id not in s.avoiding | {d.action.avoid}
    ]
    if target is not None and fresh:
        assert target.fresh, d.reason


@settings(max_examples=1500)
@given(snapshots)
def test_a_stale_leader_never_claims_over_a_fresh_candidate_as_far_along(s):
    d = decide(s)
    if not isinstance(d.action, Claim) or s.freshness.fresh:
        return
    fresh = {m.node_id for m in s.branches if m.fresh}
    for p in s.peers:
        r = p.redis
        if p.node_id in fresh and r.reachable and s.lineage.knows(r):
            assert r.offset < s.redis.offset, d.reason


@settings(max_examples=1500)
@given(snapshots, st.floats(0, 60))
def test_freshness_never_lets_a_node_serve_without_holding_the_root(s, age):
    """Whatever freshness says, only the holder of the root znode serves, and giving up
    fences (StepDown fences before it releases the znode)."""
    for freshness in (aged(age, fresh=True), aged(age, fresh=False)):
        d = decide(replace(s, freshness=freshness))
        if isinstance(d.action, Serve):
            assert s.holds_root
        if isinstance(d.action, StepDown) and d.action.hold_off:
            assert s.holds_root and s.unacked_since is not None


def test_the_serving_root_publishes_itself_fresh_whatever_its_own_heartbeat_says():
    """The root is the heartbeat's source: a slow ZooKeeper link that delayed its heartbeat
    writes must not make it report stale (and the whole tree with it)."""
    s = serving(freshness=aged(10, fresh=False), registered=replace(branch(ME), fresh=False))
    d = decide(s)
    assert d.action == Register(replace(branch(ME), available=False))
    assert d.action.member.fresh


def test_a_leaf_whose_only_branch_was_refused_counts_as_having_none():
    """Otherwise an empty leaf would wait for ever for a branch it will not follow."""
    from prodstate.core.follow import no_branch_since

    only = (branch(ROOT_ID), branch("b2"))
    s = leaf(branches=only, untrusted_masters=frozenset({addr("b2")}))
    assert no_branch_since(None, s) == NOW
    assert no_branch_since(None, replace(s, untrusted_masters=frozenset())) is None


# --- the leaf replication identity at the root ---------------------------------------------


def test_a_serving_root_with_branches_refuses_the_leaf_replication_identity():
    d = decide(serving(leaf_replicas_allowed=True))
    assert d.action == AllowLeafReplicas(False) and "every acknowledgement" in d.reason
    assert not isinstance(decide(serving(leaf_replicas_allowed=False)).action, AllowLeafReplicas)


def test_the_refusal_comes_before_the_root_first_serves():
    """Otherwise a forger holding the leaf identity could acknowledge the first writes."""
    s = serving(leaf_replicas_allowed=True, redis=master(min_replicas_to_write=FENCE_MIN_REPLICAS))
    assert decide(s).action == AllowLeafReplicas(False)


@pytest.mark.parametrize(
    "s",
    [
        root_snap(branches=(branch(ME),), leaf_replicas_allowed=False),  # a lone root
        snap(leaf_replicas_allowed=False),  # a branch that was root: its leaves need it
        leaf(leaf_replicas_allowed=False),
    ],
)
def test_everywhere_else_the_leaf_identity_is_admitted(s):
    assert decide(s).action == AllowLeafReplicas(True)


def test_without_a_branch_identity_nothing_is_turned_off():
    assert not isinstance(decide(serving(leaf_replicas_allowed=None)).action, AllowLeafReplicas)


def test_a_leaf_loading_a_full_copy_does_not_blame_its_link():
    """A full sync on its way keeps the heartbeat still; Redis's repl-timeout ends one
    that stalls."""
    mine = parent_for()
    stale = aged(3 * LEAF_LIMIT, fresh=False)
    since = NOW - 3 * LEAF_LIMIT
    s = leaf(redis=replica(addr(mine), sync_in_progress=True), freshness=stale, master_since=since)
    assert not isinstance(decide(s).action, Replicate)
