"""A drained branch (pure): its leaves move off, each at its own moment of the spread; it
is passed over by every leaf and never elected."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prodstate.core.actions import LeaveElection, Probe, Replicate, Wait
from prodstate.core.decide import decide
from prodstate.core.elect import election_candidates
from prodstate.core.maintenance import Drain
from prodstate.core.model import DataError, Tier
from prodstate.core.rendezvous import choose_parent, parent_of
from tests.snapshot_builder import ME, ROOT_ID, addr, branch, election_snap, replica, snap

WALL = 1_800_000_000.0


def leaf_on(parent: str, drains=(), wall: float = WALL, **kw):
    return snap(tier=Tier.LEAF, redis=replica(addr(parent)), drains=drains, wall_clock=wall, **kw)


def test_leaves_pass_over_a_drained_branch():
    mine = choose_parent(ME, ["b2", "b3"])
    other = "b3" if mine == "b2" else "b2"
    root = snap().root
    members = (branch(ROOT_ID), branch("b2"), branch("b3"))
    assert parent_of(ME, Tier.LEAF, root, members)[0] == addr(mine)
    target, why = parent_of(ME, Tier.LEAF, root, members, drained={mine})
    assert target == addr(other) and f"drained: {mine}" in why


def test_a_leaf_waits_for_its_turn_then_moves():
    mine = choose_parent(ME, ["b2", "b3"])
    drain = Drain(mine, "ops", WALL, spread=10.0)
    turn = drain.move_at(ME)
    assert WALL <= turn < WALL + 10
    early = decide(leaf_on(mine, (drain,), wall=turn - 0.5))
    assert early.action == Wait() and "this leaf's turn to move comes in 0.5s" in early.reason
    late = decide(leaf_on(mine, (drain,), wall=turn + 0.01, probed=False))
    assert isinstance(late.action, Probe | Replicate)


def test_moments_spread_over_the_whole_window():
    drain = Drain("b2", "ops", WALL, spread=10.0)
    moments = sorted(drain.move_at(f"leaf{i}") for i in range(400))
    assert moments[0] < WALL + 0.5 and moments[-1] > WALL + 9.5
    assert moments == sorted({*moments})  # distinct
    per_second = [sum(WALL + s <= m < WALL + s + 1 for m in moments) for s in range(10)]
    assert max(per_second) < 80  # about 40 a second, none flooded


def test_a_drained_branch_is_never_elected_and_leaves_the_election():
    drain = Drain(ME, "ops", WALL)
    s = election_snap(drains=(drain,), wall_clock=WALL)
    assert ME not in election_candidates(s)
    d = decide(s)
    assert d.action == LeaveElection() and "drained" in d.reason
    other = replace(s, drains=(Drain("b2", "ops", WALL),))
    assert "b2" not in election_candidates(other)


def test_a_drain_record_round_trips_and_must_name_its_znode():
    drain = Drain("b2", "ops@admin1", WALL, 30.0)
    assert Drain.from_json("b2", drain.to_json()) == drain
    with pytest.raises(DataError, match="it names node b2"):
        Drain.from_json("b3", drain.to_json())
    for raw in (b"{}", b"nope", b'{"node_id": "b2", "by": "x", "since": -1, "spread": 1}'):
        with pytest.raises(DataError):
            Drain.from_json("b2", raw)
