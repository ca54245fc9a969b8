"""The root's heartbeat writer thread: it writes while serving, and only then."""

from __future__ import annotations

import threading

from prodstate.agent.beat import HeartbeatWriter
from prodstate.testing import wait_until


class FakeControl:
    def __init__(self) -> None:
        self.writes: list[float] = []
        self.lock = threading.Lock()
        self.closed = False
        self.written = threading.Event()

    def heartbeat(self, now: float) -> bool:
        with self.lock:
            self.writes.append(now)
        self.written.set()
        return True

    def close(self) -> None:
        self.closed = True

    def count(self) -> int:
        with self.lock:
            return len(self.writes)


def test_writes_every_interval_while_serving_and_stops_at_once():
    control = FakeControl()
    beat = HeartbeatWriter(control, interval=0.01)  # type: ignore[arg-type]
    beat.start()
    try:
        assert not control.written.wait(0.1)  # not serving: nothing written
        beat.serve(True)
        wait_until(lambda: control.count() >= 5, timeout=5, what="five heartbeats")
        beat.serve(False)
        control.written.wait(1)  # the write under way when serving stopped, if any
        control.written.clear()
        assert not control.written.wait(0.3), "a heartbeat was written while not serving"
        assert not beat.serving
    finally:
        beat.stop()
    assert control.closed
    assert control.writes == sorted(control.writes)


def test_reports_the_round_trip_of_each_accepted_write():
    control = FakeControl()
    seen: list[float] = []
    beat = HeartbeatWriter(control, interval=0.01, written=seen.append)  # type: ignore[arg-type]
    beat.start()
    try:
        beat.serve(True)
        wait_until(lambda: len(seen) >= 3, timeout=5, what="three round trips reported")
    finally:
        beat.stop()
    assert len(seen) <= control.count()
    assert all(0 <= s < 5 for s in seen)


class RefusingControl(FakeControl):
    def heartbeat(self, now: float) -> bool:
        super().heartbeat(now)
        return False  # a fenced Redis refuses it


def test_reports_no_round_trip_for_a_refused_write():
    control = RefusingControl()
    seen: list[float] = []
    beat = HeartbeatWriter(control, interval=0.01, written=seen.append)  # type: ignore[arg-type]
    beat.start()
    try:
        beat.serve(True)
        wait_until(lambda: control.count() >= 3, timeout=5, what="three refused writes")
    finally:
        beat.stop()
    assert seen == []


def test_an_agent_that_never_serves_runs_no_heartbeat_thread():
    control = FakeControl()
    beat = HeartbeatWriter(control, interval=0.01)  # type: ignore[arg-type]
    beat.start()
    beat.serve(False)
    assert not beat._thread.is_alive()
    beat.serve(True)
    try:
        assert beat._thread.is_alive()
        wait_until(lambda: control.count() >= 1, timeout=5, what="a heartbeat")
    finally:
        beat.stop()
    assert not beat._thread.is_alive()
