"""May the local Redis be rendered from: synced, fresh, holding the tree's history."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prodstate.render.gate import SourceState, notifications_missing, refusal, same_data

GOOD = SourceState(
    reachable=True,
    role="slave",
    replid="a" * 40,
    offset=100,
    history_known=True,
    history_by="agent",
    age=0.4,
    age_by="agent",
)


def test_a_synced_fresh_copy_with_history_may_be_rendered() -> None:
    assert refusal(GOOD, 30.0) == ""
    assert refusal(replace(GOOD, role="master"), 30.0) == ""
    assert refusal(replace(GOOD, age=30.0), 30.0) == ""  # the threshold itself is within


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"reachable": False, "error": "Connection refused"}, "unreachable: Connection refused"),
        ({"loading": True}, "loading"),
        ({"sync_in_progress": True}, "full copy"),
        ({"history_known": False, "history_by": "agent"}, "history"),
        ({"history_known": None}, "cannot tell"),
        ({"age": None}, "no usable heartbeat"),
        ({"age": 30.1}, "stale: heartbeat advanced 30.1s ago (agent)"),
    ],
)
def test_every_reason_to_keep_the_files_is_given(change: dict, words: str) -> None:
    assert words in refusal(replace(GOOD, **change), 30.0)


def test_reads_straddling_replicated_data_are_not_the_same_data() -> None:
    assert same_data(GOOD, replace(GOOD, age=9.0))
    assert not same_data(GOOD, replace(GOOD, offset=101))
    assert not same_data(GOOD, replace(GOOD, replid="b" * 40))


def test_silent_notifications_are_noticed_only_while_the_heartbeat_advances() -> None:
    # Heartbeat 0.4 s old, no notification for 61 s of a 60 s interval: they are off.
    assert notifications_missing(None, 0.0, 61.0, 0.4, 60.0)
    assert notifications_missing(1.0, 0.0, 62.0, 0.4, 60.0)
    # One arrived within the interval (the heartbeat's own notifications count).
    assert not notifications_missing(30.0, 0.0, 61.0, 0.4, 60.0)
    # Not yet an interval since start.
    assert not notifications_missing(None, 0.0, 59.0, 0.4, 60.0)
    # A heartbeat that does not advance publishes nothing: no verdict.
    assert not notifications_missing(None, 0.0, 61.0, 90.0, 60.0)
    assert not notifications_missing(None, 0.0, 61.0, None, 60.0)
