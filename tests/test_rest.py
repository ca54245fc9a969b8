"""When an agent may rest (prodstate.core.rest) and what a pulse reads (redis.control)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prodstate.core.actions import Decision, Replicate, Wait
from prodstate.core.decide import decide
from prodstate.core.maintenance import Drain
from prodstate.core.model import RejoinMarks, Tier, ZkState
from prodstate.core.rendezvous import choose_parent
from prodstate.core.rest import Pulse, at_rest
from prodstate.redis.control import parse_pulse
from tests.snapshot_builder import ME, NOW, ROOT_ADDR, addr, aged, replica, root_snap, snap


def settled_leaf(**kw):
    """A leaf on its rendezvous branch, fresh, link up: the fleet's usual node."""
    parent = addr(choose_parent(ME, ["b2", "b3"]))
    base = {"tier": Tier.LEAF, "redis": replica(master=parent), "freshness": aged(0.4)}
    return snap(**{**base, **kw})


def test_a_settled_leaf_rests_and_a_branch_on_the_root_too():
    s = settled_leaf()
    assert decide(s).action == Wait()
    assert at_rest(s, decide(s))
    b = snap(freshness=aged(0.4))
    assert decide(b).action == Wait() and at_rest(b, decide(b))


@pytest.mark.parametrize(
    "change",
    [
        {"freshness": aged(10.0)},  # stale
        {"freshness": replace(aged(0.4), streak=1)},  # a fall in progress
        {"zk_state": ZkState.SUSPENDED},
        {"redis": replica(master=addr("b2"), link_up=False)},
        {"redis": replica(master=addr("b2"), sync_in_progress=True)},
        {"configured": False},
        {"deferred": frozenset({"replicate"})},
        {"held_off": True},
        {"drains": (Drain("b3", by="ops", since=0.0),)},
        {"root": None},
        {"rejoin": RejoinMarks(False, NOW - 1, True)},  # branches rising after a new root
    ],
)
def test_anything_pending_or_unhealthy_keeps_the_agent_deciding_every_tick(change):
    s = settled_leaf(**change)
    assert not at_rest(s, decide(s))
    assert not at_rest(s, Decision(Wait(), "whatever the decision"))


def test_a_leaf_off_its_parent_does_not_rest_even_if_told_to_wait():
    wrong = addr("b2") if choose_parent(ME, ["b2", "b3"]) == "b3" else addr("b3")
    s = settled_leaf(redis=replica(master=wrong))
    assert isinstance(decide(s).action, Replicate)
    assert not at_rest(s, Decision(Wait(), "paced"))


def test_a_leaf_staying_off_its_branch_decides_until_the_avoid_ends():
    choice = choose_parent(ME, ["b2", "b3"])
    other = "b2" if choice == "b3" else "b3"
    s = settled_leaf(avoiding=frozenset({choice}), redis=replica(master=addr(other)))
    s = replace(s, registered=replace(s.registered, avoiding=(choice,)))  # published
    assert decide(s).action == Wait()  # where it should be while it avoids its branch
    assert not at_rest(s, decide(s))  # but it must be awake to go back when the avoid ends


def test_the_root_never_rests():
    s = root_snap(freshness=aged(0.1))
    assert not at_rest(s, Decision(Wait(), "serving"))


def test_a_pulse_reads_a_replicas_role_as_info_does():
    pulse = parse_pulse("12.5", ["slave", "10.0.0.1", 6379, "connected", 99])
    assert pulse == Pulse("12.5", "slave", "10.0.0.1:6379", True)
    assert pulse.matches(replica(master="10.0.0.1:6379"))
    assert not pulse.matches(replica(master="10.0.0.1:6379", link_up=False))
    assert not pulse.matches(replica(master=ROOT_ADDR))
    down = parse_pulse(None, ["slave", "10.0.0.1", 6379, "connect", -1])
    assert down == Pulse(None, "slave", "10.0.0.1:6379", False)
    assert parse_pulse("1", ["master", 5, []]) == Pulse("1", "master")


@pytest.mark.parametrize(
    ("beat", "role"),
    [
        ("1", []),
        ("1", "slave"),
        (5, ["master", 0, []]),
        ("1", ["slave", "h", "6379", "connected"]),
        ("1", ["slave", "h", 0, "connected"]),
        ("1", ["slave", "h"]),
    ],
)
def test_a_pulse_that_is_not_what_redis_answers_is_none(beat, role):
    assert parse_pulse(beat, role) is None


def test_an_overlong_heartbeat_reads_as_none():
    assert parse_pulse("9" * 100, ["master", 0, []]) == Pulse(None, "master")
