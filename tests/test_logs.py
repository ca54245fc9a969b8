"""Log formatting and the held-back repeats of chatty libraries."""

from __future__ import annotations

import logging

from prodstate.agent.logs import KeyValueFormatter, RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, "f.py", 1, msg, args, None)


def test_a_repeated_library_warning_passes_once_per_interval_with_the_count_held_back():
    clock = Clock()
    f = RepeatFilter(interval=60.0, clock=clock)
    name = "kazoo.protocol.connection"
    passed = []
    for second in range(0, 125, 5):  # a warning every 5 s for two minutes
        clock.now = float(second)
        r = record(name, "Connection dropped: %s", f"attempt {second}")
        if f.filter(r):
            passed.append((second, getattr(r, "repeated", 0)))
    assert passed == [(0, 0), (60, 11), (120, 11)]


def test_other_messages_and_prodstate_logs_are_never_held_back():
    f = RepeatFilter(interval=60.0, clock=Clock())
    assert f.filter(record("kazoo.client", "Connection dropped: %s", "x"))
    assert f.filter(record("kazoo.client", "Session has expired"))
    assert all(f.filter(record("prodstate.agent.loop", "action failed")) for _ in range(5))


def test_the_count_held_back_shows_as_a_field():
    clock = Clock()
    f = RepeatFilter(interval=10.0, clock=clock)
    f.filter(record("kazoo.client", "Transition to CONNECTING"))
    f.filter(record("kazoo.client", "Transition to CONNECTING"))
    clock.now = 10.0
    r = record("kazoo.client", "Transition to CONNECTING")
    assert f.filter(r)
    assert KeyValueFormatter("%(message)s").format(r) == "Transition to CONNECTING repeated=1"
