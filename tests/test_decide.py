"""Scenarios of the per-tick decision, from hand-built snapshots."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings

from prodstate.core.actions import (
    Action,
    AdoptPrevious,
    Claim,
    Configure,
    Decision,
    Fence,
    FenceRemote,
    Heartbeat,
    JoinElection,
    LeaveElection,
    Probe,
    Promote,
    PublishReplid,
    Register,
    RepairEpoch,
    RepairRoot,
    Replicate,
    Serve,
    StepDown,
    Wait,
)
from prodstate.core.decide import decide
from prodstate.core.follow import no_branch_since
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    Lineage,
    Member,
    PeerState,
    RedisState,
    RejoinMarks,
    RootRecord,
    Snapshot,
    Tier,
    ZkState,
)
from prodstate.core.rendezvous import choose_parent
from tests.snapshot_builder import (
    EMPTY,
    ME,
    ME_ADDR,
    NEW_REPLID,
    NOW,
    REPLID,
    ROOT_ADDR,
    ROOT_ID,
    SESSION,
    ZEROS,
    addr,
    branch,
    election_snap,
    master,
    peer,
    replica,
    root_snap,
    snap,
    snapshots,
)


def act(s: Snapshot) -> Action:
    return decide(s).action


# --- leaves -------------------------------------------------------------------------------


def leaf_where(predicate) -> str:
    return next(n for n in (f"leaf-{i}" for i in range(1000)) if predicate(n))


def test_leaf_replicates_from_its_rendezvous_branch():
    s = snap(tier=Tier.LEAF)
    parent = choose_parent(ME, ["b2", "b3"])
    d = decide(s)
    assert d.action == Replicate(addr(parent))
    assert parent in d.reason


def test_leaf_never_picks_the_root_as_a_branch():
    leaf = leaf_where(lambda n: choose_parent(n, [ROOT_ID, "b2", "b3"]) == ROOT_ID)
    s = snap(tier=Tier.LEAF, node_id=leaf)
    assert act(s) == Replicate(addr(choose_parent(leaf, ["b2", "b3"])))


def test_leaf_skips_unavailable_branches():
    leaf = leaf_where(lambda n: choose_parent(n, ["b2", "b3"]) == "b2")
    branches = (branch(ROOT_ID), branch("b2", available=False), branch("b3"))
    assert act(snap(tier=Tier.LEAF, node_id=leaf, branches=branches)) == Replicate(addr("b3"))


def test_leaf_skips_a_branch_whose_certificate_was_refused_and_stays_on_its_parent():
    leaf = leaf_where(lambda n: choose_parent(n, ["b2", "b3"]) == "b2")
    s = snap(tier=Tier.LEAF, node_id=leaf, untrusted_masters=frozenset({addr("b2")}))
    assert act(s) == Replicate(addr("b3"))
    assert act(replace(s, redis=replica(master=addr("b3")))) == Wait()
    assert act(replace(s, untrusted_masters=frozenset())) == Replicate(addr("b2"))


def test_a_node_whose_only_parent_was_refused_waits_for_the_next_check():
    untrusted = frozenset({ROOT_ADDR})
    on_b2 = replica(master=addr("b2"))
    d = decide(snap(redis=on_b2, untrusted_masters=untrusted))  # a branch: the root only
    assert d.action == Wait() and "certificate was refused" in d.reason
    leaf = snap(tier=Tier.LEAF, branches=(branch(ROOT_ID),), untrusted_masters=untrusted)
    assert act(replace(leaf, redis=on_b2)) == Wait()


@pytest.mark.parametrize(
    "branches", [(branch(ROOT_ID),), (branch(ROOT_ID), branch("b2", available=False))]
)
def test_leaf_with_no_other_branch_follows_the_root(branches):
    d = decide(snap(tier=Tier.LEAF, branches=branches, redis=replica(master=addr("b2"))))
    assert d.action == Replicate(ROOT_ADDR)
    assert ROOT_ID in d.reason


def test_leaf_already_on_its_branch_keeps_its_running_redis():
    parent = choose_parent(ME, ["b2", "b3"])
    assert act(snap(tier=Tier.LEAF, redis=replica(master=addr(parent)))) == Wait()


def test_leaf_restarted_as_master_is_pointed_at_its_branch():
    s = snap(tier=Tier.LEAF, redis=EMPTY, registered=Member(ME, Tier.LEAF, ME_ADDR, False))
    assert act(s) == Replicate(addr(choose_parent(ME, ["b2", "b3"])))


def on_root(**kw) -> RedisState:
    """A branch's Redis in sync with the root."""
    return replica(**{"master": ROOT_ADDR, **kw})


def test_leaf_waits_for_a_new_parent_that_is_behind_it():
    parent = choose_parent(ME, ["b2", "b3"])
    lagging = peer(parent, on_root(offset=900))
    s = snap(tier=Tier.LEAF, redis=replica(offset=1000), new_parent=lagging)
    d = decide(s)
    assert d.action == Wait()
    assert "900 < 1000" in d.reason and "partial resync" in d.reason


@pytest.mark.parametrize(
    "state",
    [
        on_root(master=addr("b9")),  # still on a deposed root: another replication id
        on_root(link_up=False),
        on_root(sync_in_progress=True),
    ],
)
def test_leaf_waits_for_a_new_parent_not_yet_in_sync_with_the_root(state):
    parent = choose_parent(ME, ["b2", "b3"])
    d = decide(snap(tier=Tier.LEAF, new_parent=peer(parent, state)))
    assert d.action == Wait() and "not yet in sync with root" in d.reason


@pytest.mark.parametrize(
    ("state", "own", "when_caught_up"),
    [
        (on_root(offset=1000), replica(offset=1000), True),  # caught up
        (on_root(offset=1200), replica(offset=1000), True),  # ahead
        (RedisState(reachable=False), replica(offset=1000), False),  # cannot be asked
        # going stale, and the parent, behind it, is on another stream: waiting gains nothing
        (on_root(offset=900, replid="e" * 40), replica(offset=1000, link_up=False), False),
    ],
)
def test_leaf_moves_when_its_new_parent_is_ready_or_waiting_would_not_help(
    state, own, when_caught_up
):
    # A leaf that can resume checks afresh, just before moving, that the parent is not behind.
    parent = choose_parent(ME, ["b2", "b3"])
    s = snap(tier=Tier.LEAF, redis=own, new_parent=peer(parent, state))
    assert act(s) == Replicate(addr(parent), when_caught_up=when_caught_up)


def test_a_leaf_waits_for_a_new_parent_it_cannot_read_that_does_not_report_fresh():
    # After a new root, a leaf chooses among all branches for a moment: a stale one it
    # cannot read may be the cut former root.
    parent = choose_parent(ME, ["b2", "b3"])
    branches = tuple(replace(branch(b), fresh=b != parent) for b in (ROOT_ID, "b2", "b3"))
    unread = peer(parent, RedisState(reachable=False))
    s = snap(tier=Tier.LEAF, redis=replica(offset=1000), new_parent=unread, branches=branches)
    s = replace(s, rejoin=RejoinMarks(False, NOW - 0.1, True))  # choosing among all
    d = decide(s)
    assert d.action == Wait() and "could not be read and does not report fresh" in d.reason


def test_an_empty_leaf_never_waits_for_its_parent():
    parent = choose_parent(ME, ["b2", "b3"])
    s = snap(tier=Tier.LEAF, redis=EMPTY, new_parent=peer(parent, replica(offset=0)))
    assert act(s) == Replicate(addr(parent))


def test_leaf_without_a_root_keeps_replicating():
    s = snap(tier=Tier.LEAF, root=None, redis=replica(master=addr("b2"), link_up=False))
    assert act(s) == Wait()


# --- branches and membership --------------------------------------------------------------


def test_branch_follows_the_root():
    d = decide(snap(redis=replica(master=addr("b2"))))
    assert d.action == Replicate(ROOT_ADDR)
    assert act(snap()) == Wait()


def test_unregistered_node_registers_available():
    assert act(snap(registered=None)) == Register(Member(ME, Tier.BRANCH, ME_ADDR, True))


def test_eligible_branch_joins_the_election_and_a_leaf_never_does():
    assert act(snap(in_election=False)) == JoinElection()
    syncing = replica(sync_in_progress=True)
    s = snap(in_election=False, redis=syncing, registered=branch(ME, available=False))
    assert act(s) == Wait()
    assert act(snap(tier=Tier.LEAF, in_election=False)) != JoinElection()


@pytest.mark.parametrize(
    "redis", [RedisState(reachable=False), replica(loading=True)], ids=["down", "loading"]
)
def test_redis_down_leaves_the_election_then_withdraws(redis):
    d = decide(snap(redis=redis))
    assert d.action == LeaveElection()
    registered = Member(ME, Tier.BRANCH, ME_ADDR, True, version="1.2")
    s = snap(redis=redis, in_election=False, registered=registered)
    assert act(s) == Register(Member(ME, Tier.BRANCH, ME_ADDR, False, version="1.2"))
    s = snap(redis=redis, in_election=False, registered=replace(registered, available=False))
    assert act(s) == Wait()


# --- a branch whose Redis restarted empty -------------------------------------------------


def step(s: Snapshot, action: Action) -> Snapshot:
    """What carrying out ``action`` changes in the next snapshot."""
    if isinstance(action, Register):
        return replace(s, registered=action.member)
    if isinstance(action, LeaveElection):
        return replace(s, in_election=False, candidates=tuple(c for c in s.candidates if c != ME))
    if isinstance(action, JoinElection):
        return replace(s, in_election=True, candidates=(*s.candidates, ME))
    if isinstance(action, Replicate):
        r = replace(s.redis, role="slave", master=action.address, sync_in_progress=True)
        return replace(s, redis=r)
    return s


@pytest.mark.parametrize("root", [RootRecord(ROOT_ID, ROOT_ADDR, 3, REPLID, owner_session=7), None])
def test_branch_restarted_empty_never_serves_or_runs(root):
    s = snap(redis=EMPTY, root=root, candidates=(ME, ROOT_ID))
    actions = []
    for _ in range(6):
        action = act(s)
        actions.append(action)
        s = step(s, action)
    assert not any(isinstance(a, JoinElection | Claim | FenceRemote) for a in actions)
    assert all(not a.member.available for a in actions if isinstance(a, Register))
    assert not s.in_election and s.registered is not None and not s.registered.available
    if root is None:
        assert actions[-1] == Wait()
    else:
        assert Replicate(ROOT_ADDR) in actions and actions[-1] == Wait()


def test_leaf_ignores_a_branch_that_withdrew():
    branches = (branch(ROOT_ID), branch("b2", available=False))
    s = snap(tier=Tier.LEAF, branches=branches, redis=replica(master=addr("b2")))
    assert act(s) == Replicate(ROOT_ADDR)


def test_root_znode_of_this_nodes_previous_session_is_waited_out():
    root = RootRecord(ME, ME_ADDR, 4, REPLID, owner_session=SESSION - 1)
    d = decide(snap(root=root, redis=master(min_replicas_to_write=FENCE_MIN_REPLICAS)))
    assert d.action == Wait()
    assert "previous session" in d.reason


# --- the root -----------------------------------------------------------------------------


def test_serving_root_writes_its_heartbeat():
    d = decide(root_snap(registered=branch(ME, available=False)))
    assert d.action == Heartbeat()
    assert "serving" in d.reason


@pytest.mark.parametrize("redis", [RedisState(reachable=False), master(loading=True)])
def test_root_without_its_redis_steps_down(redis):
    assert act(root_snap(redis=redis)) == StepDown()


def test_root_whose_redis_restarted_steps_down():
    d = decide(root_snap(redis=EMPTY))
    assert d.action == StepDown()
    assert "restarted" in d.reason
    from_rdb = master(run_id="run-2", min_replicas_to_write=1)
    assert act(root_snap(redis=from_rdb)) == StepDown()
    unpublished = RootRecord(ME, ME_ADDR, 4, "", owner_session=SESSION, run_id="run-1")
    assert act(root_snap(root=unpublished, redis=EMPTY)) == StepDown()


def test_root_whose_replid_changed_steps_down_without_a_run_id():
    published = RootRecord(ME, ME_ADDR, 4, REPLID, owner_session=SESSION)
    assert act(root_snap(root=published, redis=EMPTY)) == StepDown()


def test_suspended_root_fences_then_stays_fenced():
    fenced = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    for zk in (ZkState.SUSPENDED, ZkState.LOST):
        assert act(root_snap(zk_state=zk, suspended_since=NOW - 1)) == Fence()
        d = decide(root_snap(zk_state=zk, suspended_since=NOW - 1, redis=fenced))
        assert d.action == Wait() and "stepped down" not in d.reason


def test_fenced_root_suspended_past_the_session_timeout_has_stepped_down():
    fenced = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    s = root_snap(zk_state=ZkState.SUSPENDED, suspended_since=NOW - 10.5, redis=fenced)
    d = decide(s)
    assert d.action == Wait()
    assert "stepped down" in d.reason


def test_unconfirmed_root_fences():
    assert act(root_snap(root_confirmed_at=None)) == Fence()
    fenced = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    assert act(root_snap(root_confirmed_at=None, redis=fenced)) == Wait()


def test_new_root_promotes_publishes_then_serves():
    claimed = RootRecord(ME, ME_ADDR, 4, "", owner_session=SESSION, run_id="run-1")
    assert act(root_snap(root=claimed, redis=replica())) == Promote()
    promoted = master(replid=NEW_REPLID, replid2=REPLID, min_replicas_to_write=FENCE_MIN_REPLICAS)
    assert act(root_snap(root=claimed, redis=promoted)) == PublishReplid(NEW_REPLID)
    published = replace(claimed, replid=NEW_REPLID)
    assert act(root_snap(root=published, redis=promoted)) == Serve(1)


@pytest.mark.parametrize(
    "branches", [(branch(ME),), (branch(ME), branch("b2", False)), ()], ids=["self", "down", "none"]
)
def test_lone_root_serves_without_replicas(branches):
    fenced = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    assert act(root_snap(branches=branches, redis=fenced)) == Serve(0)
    assert act(root_snap(branches=branches, redis=master(min_replicas_to_write=1))) == Serve(0)


def test_branch_waits_for_the_new_root_to_promote_before_following_it():
    claimed = RootRecord("b2", addr("b2"), 4, "", owner_session=7, run_id="run-9")
    d = decide(snap(root=claimed, redis=replica(master=ROOT_ADDR, link_up=False)))
    assert d.action == Wait() and "once it has promoted" in d.reason
    published = replace(claimed, replid=NEW_REPLID)
    assert act(snap(root=published, redis=replica(master=ROOT_ADDR))) == Replicate(addr("b2"))


def test_root_counts_attached_leaves_so_that_a_write_still_needs_a_branch():
    # A promoted branch keeps its own leaves for a moment: each raises the quorum by one.
    leaves = ("leaf-1.example.net:6379", "leaf-2.example.net:6379")
    attached = master(min_replicas_to_write=1, replicas=(*leaves, addr("b2")))
    d = decide(root_snap(redis=attached))
    assert d.action == Serve(3)
    assert "2 non-branch replica(s) attached" in d.reason
    settled = master(min_replicas_to_write=1, replicas=(addr("b2"), addr("b3")))
    assert act(root_snap(redis=settled)) == Heartbeat()


def test_lone_root_ignores_attached_leaves():
    alone = master(min_replicas_to_write=0, replicas=("leaf-1.example.net:6379",))
    assert act(root_snap(branches=(branch(ME),), redis=alone)) == Heartbeat()


def test_root_adopts_a_previous_root_that_is_still_master():
    fenced_old = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    d = decide(root_snap(previous_root=peer(ROOT_ID, fenced_old)))
    assert d.action == AdoptPrevious(ROOT_ADDR)
    s = root_snap(previous_root=peer(ROOT_ID, replica(master=ME_ADDR)))
    assert not isinstance(act(s), AdoptPrevious)
    assert not isinstance(act(root_snap(previous_root=peer(ME, master()))), AdoptPrevious)


# --- the election -------------------------------------------------------------------------


def test_election_follower_waits():
    d = decide(election_snap(candidates=("b2", ME)))
    assert d.action == Wait()
    assert "b2" in d.reason


def test_leader_claims_the_next_epoch_when_nothing_is_ahead():
    s = election_snap(lineage=Lineage(7, ROOT_ID, ROOT_ADDR, (REPLID,)))
    assert act(s) == Claim(8)
    behind = (peer("b2", replica(offset=900)), peer("b3", RedisState(reachable=False)))
    assert act(election_snap(peers=behind)) == Claim(4)


def test_leader_fences_a_previous_root_that_still_accepts_writes():
    old = peer(ROOT_ID, master(offset=1200, min_replicas_to_write=0))
    assert act(election_snap(previous_root=old)) == FenceRemote(ROOT_ADDR)


def test_leader_catches_up_from_the_fenced_previous_root():
    old = peer(ROOT_ID, master(offset=1200, min_replicas_to_write=FENCE_MIN_REPLICAS))
    detached = replica(master=addr("b3"), link_up=False)
    assert act(election_snap(previous_root=old, redis=detached)) == Replicate(ROOT_ADDR)
    syncing = replica(master=ROOT_ADDR, link_up=True, offset=1100)
    d = decide(election_snap(previous_root=old, redis=syncing))
    assert d.action == Wait() and "catching up" in d.reason
    caught_up = replica(master=ROOT_ADDR, link_up=True, offset=1200)
    assert act(election_snap(previous_root=old, redis=caught_up)) == Claim(4)


def test_leader_yields_to_a_peer_that_is_ahead():
    d = decide(election_snap(peers=(peer("b2", replica(offset=1500)),)))
    assert d.action == LeaveElection()
    assert "b2" in d.reason


def test_leader_ignores_a_peer_ahead_on_another_history():
    stranger = replica(replid="f" * 40, replid2=ZEROS, offset=5000)
    assert act(election_snap(peers=(peer("b2", stranger),))) == Claim(4)


def test_leader_never_catches_up_from_its_own_address():
    # This node was the previous root; a renamed node (or this node, read a moment later)
    # at the same address shows a higher offset.
    own_prev = peer(ME, master(offset=1000, min_replicas_to_write=FENCE_MIN_REPLICAS))
    alias = PeerState("me-old-name", ME_ADDR, master(offset=1001))
    s = election_snap(redis=master(offset=1000), previous_root=own_prev, peers=(alias,))
    assert act(s) != Replicate(ME_ADDR)


@pytest.mark.parametrize("tier", list(Tier))
@pytest.mark.parametrize(
    "forged",
    [
        RootRecord("intruder", "evil.example.net:6379", 99, REPLID, owner_session=9),
        RootRecord(ROOT_ID, "evil.example.net:6379", 99, REPLID, owner_session=9),
    ],
)
def test_a_root_that_is_not_a_registered_branch_is_ignored(tier, forged):
    # Whoever wrote the root znode did not win the election as a registered branch (or
    # claims a registered branch's name at another address): no replication change.
    d = decide(snap(tier=tier, root=forged, redis=replica(master=addr("b2"))))
    assert d.action == Wait() and "not a registered branch" in d.reason


def test_node_never_replicates_from_its_own_address():
    # A renamed node: its old id's records, still live, carry this node's address.
    renamed = RootRecord("me-old-name", ME_ADDR, 3, REPLID, owner_session=7)
    alias = Member("me-old-name", Tier.BRANCH, ME_ADDR)
    d = decide(snap(root=renamed, branches=(alias, branch("b2")), redis=master()))
    assert d.action == Wait() and "own address" in d.reason
    s = snap(tier=Tier.LEAF, branches=(branch(ROOT_ID), alias), redis=replica(master=ROOT_ADDR))
    assert act(s) == Wait()


# --- any snapshot -------------------------------------------------------------------------

ROOT_ONLY = (StepDown, Promote, PublishReplid, Serve, AdoptPrevious, Fence)
ROOT_ONLY += (RepairRoot, RepairEpoch, Heartbeat)


@settings(max_examples=2000)
@given(snapshots)
def test_any_snapshot_gets_one_safe_explained_decision(s):
    d = decide(s)
    assert isinstance(d, Decision) and isinstance(d.action, Action)
    assert d.reason.strip() and "\n" not in d.reason and "\r" not in d.reason
    action = d.action
    assert action != Replicate(ME_ADDR)
    assert action != AdoptPrevious(ME_ADDR)
    if s.root is not None:
        assert not isinstance(action, Claim)
    if isinstance(action, Claim):
        assert action.epoch == s.lineage.epoch + 1
    held = s.root is not None and s.root.node_id == ME and s.root.owner_session == s.session_id
    if isinstance(action, ROOT_ONLY):
        assert held, f"{action} from a node that does not hold the root"
    if s.zk_state is not ZkState.CONNECTED:
        assert isinstance(action, Fence | Wait | Configure)
    if s.zk_untrusted:
        assert isinstance(action, Fence | Wait | Configure)
    if isinstance(action, Configure):
        assert not s.configured and "Configure" not in s.deferred
    if isinstance(action, Probe):
        assert not s.probed
    if isinstance(action, RepairRoot):
        assert s.root_damage
    if isinstance(action, RepairEpoch):
        assert s.lineage_damage
    if isinstance(action, Serve):
        assert s.root.replid == s.redis.replid and s.root.run_id in ("", s.redis.run_id)
    if not s.lineage.knows(s.redis):
        assert not isinstance(action, JoinElection | Claim)
        assert not (isinstance(action, Register) and action.member.available)
    if s.tier is Tier.LEAF and not held:
        assert isinstance(action, Wait | Register | Replicate | LeaveElection | Configure | Probe)
    if isinstance(action, Replicate) and s.root is not None:
        assert action.address not in s.untrusted_masters
    if s.tier is Tier.LEAF and isinstance(action, Replicate) and s.root is not None:
        skip = {ME, s.root.node_id}
        live = {m.address for m in s.branches if m.available and m.node_id not in skip}
        live -= s.untrusted_masters  # their certificates were refused lately
        assert action.address in (live or {s.root.address})


def test_a_forged_election_znode_neither_leads_nor_stalls_the_election():
    forged = election_snap(candidates=("intruder", ME, "b2"))
    assert isinstance(act(forged), Claim)
    other = election_snap(candidates=("intruder", "b2", ME))
    d = decide(other)
    assert d.action == Wait() and "b2 leads" in d.reason


def test_an_unreadable_epoch_znode_is_not_taken_for_a_new_cluster():
    """A garbled epoch znode reads as an empty lineage, which would otherwise let any branch
    claim epoch 1: the epoch would go backwards."""
    garbled = {"lineage": Lineage(), "lineage_readable": False}
    assert act(election_snap(**garbled)) == LeaveElection()
    outside = election_snap(in_election=False, **garbled)
    assert not isinstance(act(outside), JoinElection | Claim)
    assert act(election_snap(lineage=Lineage())) == Claim(1)  # a genuinely new cluster


# --- cold start: empty leaves wait for a syncing branch -----------------------------------

SYNCING = (branch(ROOT_ID), branch("b2", available=False), branch("b3", available=False))


def cold(**kw) -> Snapshot:
    """An empty leaf while the branches sync, with the cold-start wait on."""
    base = dict(tier=Tier.LEAF, redis=EMPTY, branches=SYNCING, cold_start_wait=30.0)
    return snap(**{**base, **kw})


def test_an_empty_leaf_waits_for_syncing_branches_instead_of_loading_from_the_root():
    d = decide(cold(no_branch_since=NOW - 5))
    assert d.action == Wait()
    assert "b2, b3 catching up" in d.reason and "up to 30s" in d.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"no_branch_since": NOW - 30}, "waited long enough"),
        ({"cold_start_wait": 0.0}, "wait turned off"),
        ({"branches": (branch(ROOT_ID),)}, "none registered yet: waits"),
        ({"branches": (branch(ROOT_ID),), "no_branch_since": NOW - 5}, "none registered in 5s"),
        ({"branches": (branch(ROOT_ID), branch("b2", available=False))}, "b2 syncing: waits"),
        ({"redis": replica(master=addr("b9"), link_up=False)}, "it holds the tree's data"),
        ({"redis": master()}, "a master holding the tree's data"),
    ],
)
def test_when_an_empty_leaf_loads_from_the_root(change, why):
    s = cold(**{"no_branch_since": NOW - 1, **change})
    waits = why.endswith("waits")
    assert (act(s) == Wait()) is waits, why
    if not waits:
        assert act(s) == Replicate(ROOT_ADDR), why


def test_the_wait_is_timed_from_when_the_leaf_first_saw_no_branch():
    s = cold()
    first = no_branch_since(None, s)
    assert first == NOW
    later = replace(s, now=NOW + 7)
    assert no_branch_since(first, later) == NOW
    with_branch = replace(later, branches=(branch(ROOT_ID), branch("b2")))
    assert no_branch_since(first, with_branch) is None
    assert no_branch_since(first, replace(s, tier=Tier.BRANCH)) is None
    assert no_branch_since(first, replace(s, root=None)) is None


def test_a_leaf_moving_again_before_its_last_psync_was_answered_waits_for_a_parent_behind_it():
    """Its link is down only because it moved moments ago: a PSYNC past the new parent's
    offset would be a full resync (and a parent that is a replica delays one)."""
    parent = choose_parent(ME, ["b2", "b3"])
    own = replica(offset=1000, link_up=False)
    s = snap(tier=Tier.LEAF, redis=own, new_parent=peer(parent, on_root(offset=900)))
    d = decide(replace(s, master_since=s.now - 0.1))
    assert d.action == Wait() and "is behind this node (900 < 1000)" in d.reason
    ahead = replace(s, master_since=s.now - 0.1, new_parent=peer(parent, on_root(offset=1000)))
    assert act(ahead) == Replicate(addr(parent), when_caught_up=True)
