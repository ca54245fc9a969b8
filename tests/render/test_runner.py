"""The renderer's glue, fed with states and times: it keeps files when refused, never writes
a render whose reads straddled replicated data, and renders a burst once."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from prodstate.render.config import TemplateSpec
from prodstate.render.debounce import Wait
from prodstate.render.gate import SourceState
from prodstate.render.runner import Job, Renderer
from prodstate.render.templates import load
from tests.render.test_templates import Data

NO_WAIT = Wait()
GOOD = SourceState(reachable=True, role="slave", replid="r", offset=1, history_known=True, age=0.5)


class States:
    """A source whose gate states and offsets are given in turn (the data from a dict)."""

    def __init__(self, data: dict, states: list[SourceState], offsets: list[SourceState]):
        self.conn = Data(data)
        self.states, self.offsets = states, offsets

    def state(self) -> SourceState:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def offset(self) -> SourceState:
        return self.offsets.pop(0) if len(self.offsets) > 1 else self.offsets[0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def renderer(tmp_path: Path, source: States, wait: Wait = NO_WAIT, clock=None) -> Renderer:
    (tmp_path / "t.j2").write_text("{{ get('a') }}\n")
    spec = TemplateSpec(str(tmp_path / "t.j2"), str(tmp_path / "out"), wait=wait)
    job = Job(spec, load(spec.source))
    kw = {"clock": clock} if clock else {}
    return Renderer([job], source, max_staleness=10, out=io.StringIO(), **kw)  # type: ignore[arg-type]


def test_a_refused_render_keeps_the_file_and_stays_pending(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("last good\n")
    stale = replace(GOOD, age=11.0)
    r = renderer(tmp_path, States({"a": "new"}, [stale], [GOOD]))
    assert not r.once()
    assert (tmp_path / "out").read_text() == "last good\n"
    r.source.states = [GOOD]  # type: ignore[attr-defined]
    assert r.once()
    assert (tmp_path / "out").read_text() == "new\n"


def test_reads_that_straddle_replicated_data_are_done_again(tmp_path: Path) -> None:
    moved = replace(GOOD, offset=2)
    source = States({"a": "v"}, [GOOD, moved], [moved, moved])
    r = renderer(tmp_path, source)
    assert r.once()  # second attempt: before and after both at offset 2
    assert (tmp_path / "out").read_text() == "v\n"


def test_data_that_keeps_changing_is_not_written(tmp_path: Path) -> None:
    offsets = [replace(GOOD, offset=n) for n in range(2, 10)]
    r = renderer(tmp_path, States({"a": "v"}, [GOOD], offsets))
    assert not r.once()
    assert not (tmp_path / "out").exists()


def test_a_burst_is_rendered_once_after_the_wait(tmp_path: Path) -> None:
    clock = Clock()
    data = {"a": "0"}
    source = States(data, [GOOD], [GOOD])
    r = renderer(tmp_path, source, Wait(1.0, 5.0), clock)
    for i in range(1, 20):  # 19 changes over 0.95 s
        clock.now = i * 0.05
        data["a"] = str(i)
        r.changed(f"key{i}")
        assert r.cycle(clock.now) == clock.now + 1.0  # asleep until 1 s of quiet
    r.changed("prodstate:time")  # the heartbeat is no data change
    clock.now = 2.0
    r.cycle(clock.now)
    assert (tmp_path / "out").read_text() == "19\n"
    assert r.jobs[0].writes == 1 and not r.jobs[0].debounce.pending
