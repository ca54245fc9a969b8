"""Running a template's command: status, output, timeout."""

from __future__ import annotations

import time

from prodstate.render.command import run


def test_status_and_output_are_reported() -> None:
    ok = run("echo reloaded; echo warn >&2", 5)
    assert ok.ok and ok.status == 0 and ok.output == "reloaded warn"
    failed = run("exit 3", 5)
    assert not failed.ok and failed.status == 3 and failed.describe().startswith("exit 3")


def test_the_environment_reaches_the_command() -> None:
    assert run('echo "$PRODSTATE_DESTINATION"', 5, {"PRODSTATE_DESTINATION": "/x"}).output == "/x"


def test_a_command_past_its_timeout_is_killed_with_its_children() -> None:
    started = time.monotonic()
    outcome = run("sleep 30 & sleep 30", 0.3)
    assert outcome.timed_out and not outcome.ok
    assert outcome.status == 128 + 15  # SIGTERM, as a shell reports it
    assert time.monotonic() - started < 5
    assert "timed out" in outcome.describe()


def test_a_daemon_left_behind_does_not_hang_the_wait() -> None:
    started = time.monotonic()
    outcome = run("(sleep 2 &) ; echo started", 3)
    assert outcome.ok and outcome.output == "started"
    assert time.monotonic() - started < 1.5
