"""Freshness: the heartbeat's age on the local monotonic clock, with rise/fall hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.core.freshness import Freshness, FreshnessPolicy, Since

POLICY = FreshnessPolicy(heartbeat_interval=0.5, stale_after=3.0, fall=2, rise=4)


def run(f: Freshness, beats, start: float, end: float, step: float = 0.5) -> Freshness:
    """Observe every ``step`` from ``start`` to ``end``; ``beats(t)`` is the value read."""
    t = start
    while t <= end + 1e-9:
        f = f.observe(beats(t), t, POLICY)
        t += step
    return f


def advancing(t: float) -> str:
    return f"{1_700_000_000 + t:.6f}"


def frozen_after(cut: float):
    return lambda t: advancing(min(t, cut))


def test_a_new_agent_is_stale_until_it_has_seen_the_heartbeat_advance_rise_times():
    f = Freshness().observe(advancing(0), 0.0, POLICY)
    assert not f.fresh and f.age(0.0) == 0.0
    assert f.describe(1.0) == "heartbeat not seen advancing in 1.0s"
    f = run(f, advancing, 0.5, 1.5)
    assert not f.fresh  # three fresh checks: one short of rise
    f = f.observe(advancing(2.0), 2.0, POLICY)
    assert f.fresh and f.describe(2.0) == "heartbeat advanced 0.0s ago"


def test_a_new_agent_is_judging_until_it_rises_or_sees_the_heartbeat_stand_still():
    """Judging is not a verdict: a restarted agent over a healthy Redis rises; one whose
    heartbeat does not advance is stale once it has stood still for stale_after."""
    healthy = run(Freshness(), advancing, 0.0, 1.5)
    assert not healthy.fresh and healthy.judging
    healthy = run(healthy, advancing, 2.0, 2.0)
    assert healthy.fresh and not healthy.judging
    cut = run(Freshness(), lambda t: "frozen", 0.0, POLICY.stale_after)
    assert not cut.fresh and cut.judging
    cut = run(cut, lambda t: "frozen", POLICY.stale_after + 0.5, POLICY.stale_after + 0.5)
    assert not cut.fresh and not cut.judging
    slow = run(Freshness(), lambda t: None, 0.0, 60.0)  # no heartbeat read (Redis syncing)
    assert slow.judging
    slow = run(slow, advancing, 60.5, 62.5)
    assert slow.fresh and not slow.judging
    fallen = run(run(Freshness(), advancing, 0.0, 10.0), frozen_after(10.0), 10.5, 20.0)
    assert not fallen.fresh and not fallen.judging
    assert not run(fallen, advancing, 20.5, 21.0).judging  # once judged, never again


def test_a_former_root_is_stale_until_the_new_roots_heartbeat_reaches_it():
    """The heartbeat a root saw advance was its own: once it stops holding the root its
    verdict starts again as stale (not judging, which leaves would still follow), and only
    the new root's heartbeats, ``rise`` checks of them, make it fresh."""
    own = run(Freshness(), advancing, 0.0, 10.0)
    assert own.fresh
    former = own.forgotten()
    assert not former.fresh and not former.judging
    cut = run(former, lambda t: advancing(10.0), 10.5, 20.0)  # its own last heartbeat stays
    assert not cut.fresh and not cut.judging
    new_root = run(cut, lambda t: f"new {t}", 20.5, 21.5)
    assert not new_root.fresh  # three fresh checks: one short of rise
    assert run(new_root, lambda t: f"new {t}", 22.0, 22.0).fresh


def test_a_heartbeat_that_never_advances_is_never_fresh_however_young_it_looks():
    """Skew-free: the value itself is never compared with this machine's clock, so a
    heartbeat stamped in the future (a clock ahead at the root) does not look fresh."""
    future = f"{1_700_000_000 + 10**6:.6f}"
    f = run(Freshness(), lambda t: future, 0.0, 30.0)
    assert not f.fresh and f.age(30.0) == 30.0


def test_a_heartbeat_stamped_hours_in_the_past_is_fresh_while_it_advances():
    """A root whose clock is hours behind: what counts is that the value changes."""
    behind = lambda t: f"{1_000 + t:.6f}"  # noqa: E731
    assert run(Freshness(), behind, 0.0, 5.0).fresh


def test_falls_after_fall_stale_checks_and_reports_the_age():
    f = run(Freshness(), advancing, 0.0, 10.0)
    assert f.fresh
    f = run(f, frozen_after(10.0), 10.5, 13.0)
    assert f.fresh  # 3.0 s: not past stale_after yet
    f = f.observe(advancing(10.0), 13.5, POLICY)
    assert f.fresh  # one stale check of two
    f = f.observe(advancing(10.0), 14.0, POLICY)
    assert not f.fresh and f.age(14.0) == pytest.approx(4.0)
    assert f.describe(14.0) == "heartbeat advanced 4.0s ago"


def test_checks_count_at_most_once_per_heartbeat_interval():
    """A loop woken ten times in a tick does not fall ten times faster."""
    f = run(Freshness(), advancing, 0.0, 10.0)
    for i in range(20):
        f = f.observe(advancing(10.0), 13.5 + i * 0.01, POLICY)
    assert f.fresh


def test_unreadable_redis_counts_as_stale_and_keeps_the_last_value():
    f = run(Freshness(), advancing, 0.0, 10.0)
    f = run(f, lambda t: None, 10.5, 15.0)
    assert not f.fresh and f.value == advancing(10.0)


def test_a_notified_advance_counts_like_a_read_one_and_the_next_read_is_not_another():
    """A resting agent is told of each heartbeat (keyspace notifications) instead of
    reading it; the value it reads next is the one it was told of, not a later advance,
    so a heartbeat that stopped after the last notification ages from that notification."""
    f = run(Freshness(), advancing, 0.0, 10.0)
    for t in (10.5, 11.0, 11.5):
        f = f.advanced(t, POLICY)
    assert f.fresh and f.age(11.5) == 0.0 and f.notified
    f = f.observe(advancing(11.5), 12.5, POLICY)  # read a second after the last notification
    assert not f.notified and f.value == advancing(11.5) and f.age(12.5) == pytest.approx(1.0)
    f = run(f, frozen_after(11.5), 13.0, 15.0)
    assert f.fresh  # 3.5 s: one stale check of two
    f = f.observe(advancing(11.5), 15.5, POLICY)
    assert not f.fresh and f.age(15.5) == pytest.approx(4.0)
    f = f.advanced(16.0, POLICY)  # the heartbeat is back: a rise starts from it
    assert f.changed_at == 16.0 and not f.fresh and f.streak == 1


def test_notifications_alone_keep_a_heartbeat_fresh_and_their_silence_makes_it_stale():
    f = run(Freshness(), advancing, 0.0, 10.0)
    t = 10.5
    while t <= 60.0:
        f = f.advanced(t, POLICY)
        t += 0.5
    assert f.fresh
    f = f.observe(None, 63.5, POLICY)  # Redis unreadable: nothing advances
    f = f.observe(None, 64.0, POLICY)
    assert not f.fresh and f.age(64.0) == pytest.approx(4.0)


def test_a_flapping_link_needs_longer_to_be_trusted_each_time():
    """Each fall soon after a rise doubles the rise; from the second, the heartbeat must
    also keep advancing for as long as it stood still (5.5 s here, longer than 8 checks)."""
    f = run(Freshness(), advancing, 0.0, 10.0)
    t, rises = 10.0, []
    for _ in range(4):
        cut = t
        f = run(f, frozen_after(cut), t + 0.5, t + 5.0)
        assert not f.fresh
        t += 5.0
        heal = t
        while not f.fresh:
            t += 0.5
            f = f.observe(advancing(t), t, POLICY)
        rises.append(round(t - heal, 1))
    assert rises == [2.0, 6.0, 8.0, 16.0]


#: The fault suite's policy and its flapping link: 2.5 s down, 1.5 s up, five times.
SUITE = FreshnessPolicy(heartbeat_interval=0.2, stale_after=1.2, fall=2, rise=4)
FLAP_DOWN, FLAP_UP, FLAPS = 2.5, 1.5, 5


@pytest.mark.parametrize("resume_delay", [0.0, 0.2, 0.4, 0.8])
@pytest.mark.parametrize("check_every", [0.201, 0.25])
def test_a_flapping_link_is_not_trusted_again_while_it_flaps(resume_delay, check_every):
    """Heartbeats reach the node only while the link is up (``resume_delay`` after it comes
    up: TCP's retransmission timer). A check still looks fresh for ``stale_after`` into
    each down phase, so a doubled rise counted on such checks fits in an up phase and the
    next down phase; the node rises at most once while the link flaps, and again once the
    link holds."""
    f, beat = Freshness(), 0
    for i in range(1, 51):  # fresh before the flapping starts
        beat += 1
        f = f.observe(str(beat), i * check_every, SUITE)
    assert f.fresh
    start, rises, was = 50 * check_every, 0, True
    end = start + FLAPS * (FLAP_DOWN + FLAP_UP)
    for i in range(1, round(40 / check_every)):
        t = start + i * check_every
        if t >= end or (t - start) % (FLAP_DOWN + FLAP_UP) >= FLAP_DOWN + resume_delay:
            beat += 1
        f = f.observe(str(beat), t, SUITE)
        rises += f.fresh and not was and t < end
        was = f.fresh
    assert rises <= 1
    assert f.fresh  # once the link holds, the node is trusted again


def test_a_settled_node_starts_again_from_the_plain_rise():
    f = run(Freshness(), advancing, 0.0, 10.0)
    f = run(f, frozen_after(10.0), 10.5, 15.0)
    f = run(f, advancing, 15.5, 20.0)
    assert f.fresh and f.flaps == 1
    f = run(f, advancing, 20.5, 20.0 + POLICY.settle + 1)  # fresh for longer than settle
    t = 21.0 + POLICY.settle
    f = run(f, frozen_after(t), t + 0.5, t + 5.0)
    assert not f.fresh and f.flaps == 1 and f.rise_needed(POLICY) == POLICY.rise


@given(st.lists(st.sampled_from(["beat", "same", "none"]), max_size=200))
def test_the_verdict_only_changes_after_a_streak(steps):
    """However the heartbeat behaves, fresh turns stale only after ``fall`` stale checks in
    a row and stale turns fresh only after ``rise`` fresh ones."""
    f, t, value = Freshness(), 0.0, 0
    history = []
    for step in steps:
        t += 0.5
        value += step == "beat"
        f = f.observe(None if step == "none" else str(value), t, POLICY)
        history.append(f.fresh)
    for i in range(1, len(history)):
        if history[i] and not history[i - 1]:
            assert i >= POLICY.rise - 1
        if not history[i] and history[i - 1]:
            assert i >= POLICY.fall


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(heartbeat_interval=0),
        dict(heartbeat_interval=float("nan")),
        dict(stale_after=0.5, heartbeat_interval=0.5),
        dict(fall=0),
        dict(rise=0),
    ],
)
def test_bad_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        FreshnessPolicy(**kwargs)


def test_since_tracks_when_a_value_last_changed():
    since = Since()
    assert since.update("a", 1.0) == 1.0
    assert since.update("a", 5.0) == 1.0
    assert since.update("b", 6.0) == 6.0
