"""A maintenance pause: no failover and no moves, while safety actions and a serving root
go on; an expired pause holds nothing back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings

from prodstate.core.actions import (
    AdoptPrevious,
    Claim,
    Fence,
    FenceRemote,
    Heartbeat,
    Probe,
    Replicate,
    StepDown,
    Wait,
)
from prodstate.core.decide import decide
from prodstate.core.durations import format_duration
from prodstate.core.maintenance import Pause
from prodstate.core.model import DataError, Tier, ZkState
from tests.snapshot_builder import (
    NOW,
    addr,
    election_snap,
    master,
    replica,
    root_snap,
    snap,
    snapshots,
)

WALL = 1_800_000_000.0
PAUSE = Pause("ZooKeeper upgrade", "ops@admin1", WALL - 60, WALL + 3600)
HELD_BACK = (Claim, Replicate, Probe, FenceRemote, AdoptPrevious)


def paused(s, pause: Pause = PAUSE):
    return replace(s, pause=pause, wall_clock=WALL)


def test_an_election_leader_does_not_take_the_root_while_paused():
    s = election_snap()
    assert isinstance(decide(s).action, Probe | Claim)
    d = decide(paused(s))
    assert d.action == Wait()
    assert d.reason.startswith('paused by ops@admin1: "ZooKeeper upgrade", 60m left')
    assert "not acting on: won the election" in d.reason


def test_a_leaf_on_the_wrong_branch_stays_while_paused():
    s = snap(tier=Tier.LEAF, redis=replica(addr("nowhere")))
    assert isinstance(decide(s).action, Probe | Replicate)
    assert decide(paused(s)).action == Wait()


def test_the_serving_root_goes_on_serving_while_paused():
    s = root_snap()
    assert decide(s).action == Heartbeat()
    assert decide(paused(s)).action == Heartbeat()


def test_safety_goes_on_while_paused():
    cut = root_snap(zk_state=ZkState.SUSPENDED, suspended_since=NOW - 1)
    assert decide(paused(cut)).action == Fence()
    redis_gone = root_snap(redis=replace(master(), reachable=False))
    assert decide(paused(redis_gone)).action == StepDown()


def test_a_root_no_branch_acknowledges_keeps_the_root_while_paused():
    s = root_snap(unacked_since=NOW - 60)
    assert decide(s).action == StepDown(hold_off=True)
    d = decide(paused(s))
    assert d.action == Wait() and "no branch has acknowledged" in d.reason


def test_an_expired_pause_holds_nothing_back():
    expired = replace(PAUSE, expires=WALL - 1)
    s = election_snap()
    assert decide(paused(s, expired)) == decide(s)
    assert "expired 1s ago" in expired.describe(WALL)


@settings(max_examples=400, deadline=None)
@given(snapshots)
def test_no_failover_or_move_ever_starts_while_paused(s):
    d = decide(paused(s))
    assert not isinstance(d.action, HELD_BACK), d
    assert not (isinstance(d.action, StepDown) and d.action.hold_off), d
    unpaused = decide(s)
    assert d == unpaused or d.action == Wait()


# --- the record ----------------------------------------------------------------------------


def test_a_pause_round_trips_through_its_znode():
    assert Pause.from_json(PAUSE.to_json()) == PAUSE
    forever = Pause("x", "me", WALL)
    assert Pause.from_json(forever.to_json()) == forever
    assert forever.active(WALL + 10**9) and forever.describe(WALL).endswith("until resumed")


@pytest.mark.parametrize(
    "raw",
    [
        b"nope",
        b"{}",
        b'{"reason": "", "by": "me", "since": 1}',
        b'{"reason": "x", "by": "me", "since": "yesterday"}',
        b'{"reason": "x", "by": "me", "since": 1, "expires": true}',
        b'{"reason": "x", "by": "me", "since": 1, "expires": -5}',
        b'{"reason": "x", "by": "me", "since": 1e999}',
        ('{"reason": "' + "x" * 501 + '", "by": "me", "since": 1}').encode(),
    ],
)
def test_a_malformed_pause_is_a_data_error(raw):
    with pytest.raises(DataError):
        Pause.from_json(raw)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (119.6, "2m"), (45, "45s"), (3600, "60m"), (7260, "2h01m"), (7200, "2h"),
     (86400 * 3, "3d"), (86400 * 2 + 3600 * 5, "2d5h")],
)  # fmt: skip
def test_durations_read_coarsely(seconds, text):
    assert format_duration(seconds) == text
