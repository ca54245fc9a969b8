"""The debounce state machine, fed with times (consul-template's wait = "min:max")."""

from __future__ import annotations

import pytest

from prodstate.render.debounce import Debounce, Wait


def test_a_burst_renders_once_after_min_of_quiet() -> None:
    d = Debounce(Wait(2.0, 10.0))
    for t in (0.0, 0.5, 1.0, 1.5):
        d = d.changed(t)
        assert not d.due(t)
    assert d.due_at() == 3.5
    assert not d.due(3.4)
    assert d.due(3.5)
    assert d.changes == 4
    d = d.rendered()
    assert not d.pending and d.due_at() is None and not d.due(100.0)


def test_a_steady_stream_still_renders_every_max() -> None:
    d = Debounce(Wait(2.0, 10.0))
    t = 0.0
    while not d.due(t):
        d = d.changed(t)
        t += 1.0  # a change every second: never two seconds of quiet
    assert t == 10.0  # max after the first change of the burst


def test_zero_wait_renders_at_once() -> None:
    d = Debounce(Wait()).changed(5.0)
    assert d.due(5.0)


def test_a_batch_of_changes_counts_from_its_first() -> None:
    d = Debounce(Wait(1.0, 3.0)).changed(0.0).changed(0.9, 99)
    assert (d.first, d.last, d.changes) == (0.0, 0.9, 100)
    assert d.due_at() == 1.9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2s:10s", Wait(2.0, 10.0)),
        ("2s", Wait(2.0, 8.0)),
        ("500ms:2s", Wait(0.5, 2.0)),
        ("0", Wait(0.0, 0.0)),
        ("0:1m", Wait(0.0, 60.0)),
    ],
)
def test_wait_parses(text: str, expected: Wait) -> None:
    assert Wait.parse(text) == expected


@pytest.mark.parametrize("text", ["", "x", "10s:2s", "-1s", "1s:2s:3s", "nanms", "infms"])
def test_a_bad_wait_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError):
        Wait.parse(text)
