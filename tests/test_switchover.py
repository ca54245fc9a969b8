"""A planned switchover (pure): the root fences, waits for the target, hands over; the
target leads the election that follows; the choice of target and its refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings

from prodstate.core.actions import Claim, Fence, HandOver, Heartbeat, Probe, Serve, Wait
from prodstate.core.decide import decide
from prodstate.core.maintenance import Pause, Switchover
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    DataError,
    Lineage,
    PeerState,
    RootRecord,
)
from prodstate.core.switchover import choose_target
from prodstate.core.tree import NodeStatus, TreeStatus
from tests.snapshot_builder import (
    ME,
    ME_ADDR,
    REPLID,
    ROOT_ADDR,
    ROOT_ID,
    addr,
    branch,
    election_snap,
    master,
    replica,
    root_snap,
    snapshots,
)

WALL = 1_800_000_000.0


def request(source: str = ME, epoch: int = 4, target: str = "b2", **kw) -> Switchover:
    base = dict(id="ab" * 16, source=source, epoch=epoch, target=target, by="ops@admin1")
    return Switchover(**{**base, "requested_at": WALL - 1, "deadline": WALL + 30, **kw})


def at_root(redis=None, target_offset: int | None = None, **kw):
    """The serving root (epoch 4) asked to hand over to b2; b2 read at ``target_offset``."""
    s = root_snap(switchover=request(), wall_clock=WALL, **kw)
    if redis is not None:
        s = replace(s, redis=redis)
    if target_offset is None:
        return replace(s, probed=False)
    peer = PeerState("b2", addr("b2"), replica(ME_ADDR, offset=target_offset))
    return replace(s, probed=True, peers=(peer,))


FENCED = master(min_replicas_to_write=FENCE_MIN_REPLICAS, offset=1000)


def test_the_root_reads_the_target_fences_waits_and_hands_over():
    assert isinstance(decide(at_root()).action, Probe)
    d = decide(at_root(target_offset=1000, redis=master(min_replicas_to_write=1, offset=1000)))
    assert d.action == Fence() and "switchover abababab to b2" in d.reason
    d = decide(at_root(target_offset=990, redis=FENCED))
    assert d.action == Wait() and "waiting for it to reach offset 1000 (at 990)" in d.reason
    d = decide(at_root(target_offset=1000, redis=FENCED))
    assert d.action == HandOver("b2", addr("b2")) and "claim epoch 5" in d.reason


def test_a_root_whose_redis_follows_the_target_releases_the_root_rather_than_promote():
    # FAILOVER took in Redis but the root znode was not released (ZooKeeper failed then).
    s = at_root(redis=replica(addr("b2"), min_replicas_to_write=FENCE_MIN_REPLICAS))
    d = decide(s)
    assert d.action == HandOver("b2", addr("b2")) and "follows b2 already" in d.reason
    late = replace(s, switchover=request(deadline=WALL - 1))  # the switchover is over
    assert decide(late).action.name == "Promote"
    elsewhere = replace(s, redis=replica(addr("b3")))  # not the target: as any root
    assert decide(elsewhere).action.name == "Promote"


def test_the_target_whose_redis_took_over_waits_for_the_old_root_to_release():
    s = root_snap(node_id="b2", address=addr("b2"), registered=branch("b2", available=False),
                  switchover=request(), wall_clock=WALL, redis=master(),
                  branches=(branch(ME), branch("b2")))  # fmt: skip
    d = decide(s)
    assert d.action == Wait() and "waiting for it to release the root" in d.reason
    # Without the switchover, a branch whose Redis is a master follows the root.
    assert decide(replace(s, switchover=None)).action.name == "Replicate"


@pytest.mark.parametrize(
    "change",
    [
        {"switchover": request(deadline=WALL - 1)},  # expired
        {"switchover": request(epoch=3)},  # another root's epoch
        {"switchover": request(source="b3", target="b2")},  # another root
        {"switchover": request(target="gone")},  # not registered
        {"pause": Pause("work", "ops", WALL - 5)},  # paused
    ],
)
def test_a_switchover_that_does_not_apply_leaves_the_root_serving(change):
    s = replace(at_root(target_offset=1000), **change)
    assert decide(s).action == Heartbeat()
    fenced = replace(at_root(target_offset=1000, redis=FENCED), **change)
    assert isinstance(decide(fenced).action, Serve)  # unfenced again


def test_a_target_that_does_not_follow_the_root_ends_it():
    s = at_root(redis=FENCED)
    elsewhere = PeerState("b2", addr("b2"), replica(addr("b3"), offset=1000))
    s = replace(s, probed=True, peers=(elsewhere,))
    assert isinstance(decide(s).action, Serve)


def handed_over(node_id: str, candidates: tuple[str, ...], **kw):
    """No root: the old root (``ME`` at epoch 4) has released it for b2."""
    s = election_snap(
        node_id=node_id,
        candidates=candidates,
        lineage=Lineage(4, ME, ME_ADDR, (REPLID,)),
        switchover=request(),
        wall_clock=WALL,
        **kw,
    )
    return s


def test_the_target_leads_the_election_whatever_its_place_in_the_queue():
    s = handed_over("b2", ("b3", ME, "b2"), address=addr("b2"), branches=(
        branch(ME), branch("b2"), branch("b3")), registered=None)  # fmt: skip
    d = decide(replace(s, registered=branch("b2"), probed=True))
    assert isinstance(d.action, Claim) and d.action.epoch == 5, d


def test_every_other_candidate_waits_for_the_target():
    s = handed_over("b3", ("b3", ME, "b2"), address=addr("b3"), branches=(
        branch(ME), branch("b2"), branch("b3")), registered=branch("b3"))  # fmt: skip
    d = decide(s)
    assert d.action == Wait() and "switchover abababab hands the root to b2" in d.reason
    gone = replace(s, candidates=("b3", ME))  # the target left the election: usual order
    assert not (decide(gone).action == Wait() and "hands the root" in decide(gone).reason)


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_a_switchover_never_hands_over_an_unfenced_root_or_one_ahead_of_its_target(s):
    s = replace(s, switchover=request(source=ME, epoch=s.root.epoch if s.root else 1),
                wall_clock=WALL)  # fmt: skip
    d = decide(s)
    if isinstance(d.action, HandOver) and s.redis.is_master:
        assert s.redis.fenced
        peer = next(p for p in s.peers if p.node_id == d.action.target)
        assert peer.redis.offset >= s.redis.offset
    elif isinstance(d.action, HandOver):  # the hand-over took in Redis: release the root
        assert s.redis.master == d.action.address


def test_a_request_round_trips_and_bad_ones_are_data_errors():
    r = request()
    assert Switchover.from_json(r.to_json()) == r
    for raw in (b"{}", b'{"id": "x"}', b"[1]", r.to_json().replace(b'"epoch": 4', b'"epoch": 0')):
        with pytest.raises(DataError):
            Switchover.from_json(raw)
    with pytest.raises(DataError):
        request(target=ME)


# --- choosing the target ---------------------------------------------------------------------


def node(node_id: str, lag: int = 0, **kw) -> NodeStatus:
    base = dict(
        node_id=node_id, tier="branch", address=addr(node_id), available=True, reachable=True,
        role="slave", link="up", master=ROOT_ADDR, parent=ROOT_ID, expected_parent=ROOT_ADDR,
        link_up=True, offset=1000 - lag, lag=lag, staleness=0.1,
    )  # fmt: skip
    return NodeStatus(**{**base, **kw})


def tree(*nodes: NodeStatus, pause_text: str = "") -> TreeStatus:
    root = RootRecord(ROOT_ID, ROOT_ADDR, 4, REPLID)
    head = node(ROOT_ID, role="master", link="master", master="", link_up=False)
    return TreeStatus(root, 4, (head, *nodes), (), pause_text=pause_text)


def test_the_furthest_branch_along_is_chosen_and_reasons_name_each_refusal():
    t = tree(node("b2", lag=40), node("b3", lag=10), node("b4", fresh=False))
    assert choose_target(t) == ("b3", "b3 is the furthest along (lag 10 bytes)")
    assert choose_target(t, "b2") == ("b2", "b2 as asked")
    none = tree(
        node("b2", fresh=False, judging=True),
        node("b3", available=False),
        node("b4", reachable=False),
        node("b5", master=addr("b2")),
    )
    target, why = choose_target(none)
    assert target is None
    assert why == (
        "no branch is eligible: b2 has not judged its copy yet (its agent just started); "
        "b3 is not available (still syncing, or withdrawn); b4 is unreachable; "
        f"b5 does not replicate from the root (up, from {addr('b2')})"
    )


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (ROOT_ID, f"{ROOT_ID} is the root already"),
        ("nosuch", "nosuch is not a registered branch"),
        ("b4", "b4 reports its copy stale"),
    ],
)
def test_an_ineligible_target_is_refused_with_the_reason(wanted, expected):
    t = tree(node("b2"), node("b4", fresh=False))
    assert choose_target(t, wanted) == (None, expected)


def test_no_switchover_while_paused_or_without_a_root():
    assert choose_target(tree(node("b2"), pause_text="paused by x")) == (
        None,
        "the cluster is paused by x: resume it first",
    )
    t = replace(tree(node("b2")), root=None)
    assert choose_target(t) == (None, "there is no root to hand over")
