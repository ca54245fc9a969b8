"""Side effects the decision asks for: configure, probe, repair, heartbeat."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prodstate.core.actions import (
    AdoptPrevious,
    Claim,
    Configure,
    Fence,
    FenceRemote,
    Heartbeat,
    Probe,
    RepairEpoch,
    RepairRoot,
    Replicate,
    Serve,
    StepDown,
    Wait,
)
from prodstate.core.decide import decide
from prodstate.core.model import FENCE_MIN_REPLICAS, Lineage, PeerState, Tier, ZkState
from tests.snapshot_builder import (
    EMPTY,
    ME,
    ME_ADDR,
    ROOT_ADDR,
    ROOT_ID,
    addr,
    branch,
    election_snap,
    master,
    peer,
    replica,
    root_snap,
    snap,
)

# --- configure -----------------------------------------------------------------------------


def test_an_unconfigured_redis_is_configured_before_anything_else():
    d = decide(snap(configured=False, registered=None))
    assert d.action == Configure() and "not configured" in d.reason
    assert decide(snap(tier=Tier.LEAF, configured=False)).action == Configure()


def test_configure_waits_while_it_backs_off_and_the_node_goes_on():
    s = snap(configured=False, registered=None, deferred=frozenset({"Configure"}))
    assert decide(s).action == decide(snap(registered=None)).action


def test_configure_never_delays_fencing_or_stepping_down():
    suspended = root_snap(zk_state=ZkState.SUSPENDED, suspended_since=0.0, configured=False)
    assert decide(suspended).action == Fence()
    fenced = replace(suspended, redis=master(min_replicas_to_write=FENCE_MIN_REPLICAS))
    assert decide(fenced).action == Configure()  # a root cut off from ZooKeeper, fenced
    restarted = root_snap(redis=master(run_id="run-2"), configured=False)
    assert decide(restarted).action == StepDown()


@pytest.mark.parametrize("redis", [replica(reachable=False), replica(loading=True)])
def test_a_redis_that_cannot_answer_is_not_configured(redis):
    assert not isinstance(decide(snap(redis=redis, configured=False)).action, Configure)


# --- probe: read other nodes, then decide again ----------------------------------------------


def test_the_election_leader_reads_candidates_and_the_previous_root_first():
    s = election_snap(probed=False)
    d = decide(s)
    assert d.action == Probe(candidates=(("b2", addr("b2")),), previous_root=(ROOT_ID, ROOT_ADDR))
    assert "1 other candidate(s) and previous root" in d.reason
    probed = replace(s, probed=True, previous_root=peer(ROOT_ID, master(offset=1000)))
    assert decide(probed).action == FenceRemote(ROOT_ADDR)


def test_a_leader_with_nobody_to_read_claims_at_once():
    alone = election_snap(probed=False, candidates=("me",), lineage=Lineage())
    assert decide(alone).action == Claim(1)


def test_a_serving_root_reads_its_previous_root_and_adopts_it():
    root = replace(root_snap().root, previous=ROOT_ADDR)
    s = root_snap(root=root, probed=False)
    assert decide(s).action == Probe(previous_root=(ROOT_ID, ROOT_ADDR))
    still_master = replace(s, probed=True, previous_root=peer(ROOT_ID, master()))
    assert decide(still_master).action == AdoptPrevious(ROOT_ADDR)
    adopted = replace(s, probed=True, previous_root=peer(ROOT_ID, replica(master=ME_ADDR)))
    assert decide(adopted).action == Heartbeat()


def test_a_moving_leaf_reads_its_new_parent_first():
    s = snap(tier=Tier.LEAF, redis=replica(master=ROOT_ADDR), probed=False)
    d = decide(s)
    assert isinstance(d.action, Probe) and d.action.new_parent is not None
    assert d.action.candidates == () and d.action.previous_root is None
    target = d.action.new_parent
    probed = replace(s, probed=True, new_parent=PeerState("", target, replica(offset=2000)))
    assert decide(probed).action == Replicate(target, when_caught_up=True)
    behind = replace(s, probed=True, new_parent=PeerState("", target, replica(offset=10)))
    assert decide(behind).action == Wait()


def test_nothing_is_read_when_the_decision_does_not_depend_on_it():
    on_root = snap(tier=Tier.LEAF, branches=(branch(ROOT_ID),), redis=EMPTY, probed=False)
    assert decide(on_root).action == Replicate(ROOT_ADDR)  # the root needs no probe
    assert not isinstance(decide(snap(probed=False)).action, Probe)  # a branch follows the root
    down = snap(tier=Tier.LEAF, redis=replica(reachable=False), probed=False)
    assert not isinstance(decide(down).action, Probe)


# --- repairs and the heartbeat ---------------------------------------------------------------


def test_the_root_repairs_a_damaged_root_znode_then_a_damaged_epoch_znode():
    both = root_snap(root_damage="not JSON", lineage_damage="epoch 1 below 4")
    d = decide(both)
    assert d.action == RepairRoot() and "not JSON" in d.reason
    d = decide(replace(both, root_damage=""))
    assert d.action == RepairEpoch() and "epoch 1 below 4" in d.reason
    assert decide(replace(both, root_damage="", lineage_damage="")).action == Heartbeat()


def test_repairs_wait_until_the_root_is_confirmed():
    unconfirmed = root_snap(root_confirmed_at=None, root_damage="not JSON")
    assert decide(unconfirmed).action == Fence()


def test_only_a_serving_root_writes_the_heartbeat():
    assert decide(root_snap()).action == Heartbeat()
    assert not isinstance(decide(root_snap(redis=master(replid="c" * 40))).action, Heartbeat)
    assert not isinstance(decide(snap()).action, Heartbeat)


def test_a_serving_root_writes_its_epoch_key_again_when_it_was_changed():
    tampered = root_snap(redis=master(min_replicas_to_write=1, epoch_key="99"))
    d = decide(tampered)
    assert d.action == Serve(1) and "epoch key" in d.reason
    intact = root_snap(redis=master(min_replicas_to_write=1, epoch_key="4"))
    assert decide(intact).action == Heartbeat()


def test_an_agent_refuses_to_act_on_znodes_it_cannot_trust():
    why = "/prodstate/c has an ACL the agents cannot set"
    d = decide(snap(zk_untrusted=why, configured=False, registered=None))
    assert d.action == Wait() and why in d.reason
    assert decide(root_snap(zk_untrusted=why)).action == Fence()
    fenced = master(min_replicas_to_write=FENCE_MIN_REPLICAS)
    assert decide(root_snap(zk_untrusted=why, redis=fenced)).action == Wait()


def test_a_lone_root_that_was_never_fenced_still_writes_its_epoch_key():
    """The first root of a one-branch cluster needs no write quorum (0, as its Redis already
    has), but writes are fenced by the epoch key, which it must write all the same."""
    alone = master(min_replicas_to_write=0, epoch_key="")
    d = decide(root_snap(branches=(branch(ME),), redis=alone))
    assert d.action == Serve(0)
    served = master(min_replicas_to_write=0, epoch_key="4")
    assert decide(root_snap(branches=(branch(ME),), redis=served)).action == Heartbeat()


def test_a_leaf_whose_link_dropped_waits_for_a_new_parent_still_on_a_deposed_root():
    """Its parent was promoted: the link is down a moment, and the branch it moves to has
    not followed the new root yet (a PSYNC now would be answered with a full resync)."""
    s = snap(tier=Tier.LEAF, redis=replica(master=ROOT_ADDR, link_up=False), probed=True)
    target = decide(replace(s, probed=False)).action
    assert isinstance(target, Probe) and target.new_parent is not None
    deposed = PeerState("", target.new_parent, replica(master=addr("old-root")))
    d = decide(replace(s, new_parent=deposed))
    assert d.action == Wait() and "still follows old-root.example.net:6379" in d.reason
    following = PeerState("", target.new_parent, replica(offset=1100))  # on the root
    assert decide(replace(s, new_parent=following)).action == Replicate(target.new_parent)


def test_a_leaf_whose_link_dropped_does_not_move_to_a_parent_cut_from_the_root():
    """A parent that names the root with its link down may be a former root, cut off with
    writes the new root never received: a leaf taking them would need a full resync."""
    s = snap(tier=Tier.LEAF, redis=replica(master=ROOT_ADDR, link_up=False), probed=True)
    target = decide(replace(s, probed=False)).action
    assert isinstance(target, Probe) and target.new_parent is not None
    cut = PeerState("", target.new_parent, replica(link_up=False, offset=5000))
    d = decide(replace(s, new_parent=cut))
    assert d.action == Wait() and "no live link to it" in d.reason
    linked = PeerState("", target.new_parent, replica(offset=5000))
    assert decide(replace(s, new_parent=linked)).action == Replicate(target.new_parent)


def test_a_leaf_whose_link_dropped_waits_for_a_parent_behind_it_on_the_same_stream():
    """Its parent was promoted and it got more of the new root's stream than the branch it
    moves to, which has just followed the new root: a PSYNC past that branch's offset is a
    full resync, and a moment later it is not."""
    own = replica(master=ROOT_ADDR, link_up=False, offset=1300)
    s = snap(tier=Tier.LEAF, redis=own, probed=True)
    target = decide(replace(s, probed=False)).action
    assert isinstance(target, Probe) and target.new_parent is not None
    behind = PeerState("", target.new_parent, replica(offset=1200))
    d = decide(replace(s, new_parent=behind))
    assert d.action == Wait() and "is behind this node (1200 < 1300)" in d.reason
    past = PeerState("", target.new_parent, replica(offset=1400))
    assert decide(replace(s, new_parent=past)).action == Replicate(target.new_parent)
    other_stream = PeerState("", target.new_parent, replica(offset=1200, replid="e" * 40))
    assert decide(replace(s, new_parent=other_stream)).action == Replicate(target.new_parent)
