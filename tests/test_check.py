"""``prodstate check``: judging the heartbeat, mapping Redis errors, validating options."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner
from redis import exceptions as redis_errors

from prodstate.cli.check import check
from prodstate.core.actions import Decision, Wait
from prodstate.ops import check as check_module
from prodstate.ops.check import CheckResult, Status, evaluate, format_age, read_heartbeat
from prodstate.redis.control import HEARTBEAT_KEY

NOW = 1_700_000_000.0


def beat(age: float) -> str:
    """The heartbeat value the root would have written ``age`` seconds before NOW."""
    return f"{NOW - age:.6f}"


def test_exit_codes_are_the_nagios_ones() -> None:
    assert [s.exit_code for s in Status] == [0, 1, 2, 3]
    assert [s.name for s in Status] == ["OK", "WARNING", "CRITICAL", "UNKNOWN"]


def test_fresh_heartbeat_is_ok_with_perfdata() -> None:
    result = evaluate(beat(0.412), NOW, 5, 30)
    assert result.status is Status.OK
    assert result.perfdata == "staleness=0.412s;5;30;0"
    assert result.line("localhost:6379") == (
        "PRODSTATE OK - heartbeat 0.4s old (localhost:6379) | staleness=0.412s;5;30;0"
    )


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (0.0, Status.OK),
        (5.0, Status.OK),  # equal to the threshold is still within it
        (5.001, Status.WARNING),
        (10.0, Status.WARNING),
        (30.0, Status.WARNING),
        (30.001, Status.CRITICAL),
        (3600.0, Status.CRITICAL),
    ],
)
def test_thresholds(age: float, status: Status) -> None:
    result = evaluate(beat(age), NOW, 5, 30)
    assert result.status is status
    assert result.perfdata == f"staleness={age:.3f}s;5;30;0"


def test_fractional_thresholds_in_perfdata() -> None:
    result = evaluate(beat(2.0), NOW, 1.5, 2.5)
    assert result.status is Status.WARNING
    assert result.perfdata == "staleness=2.000s;1.5;2.5;0"


def test_equal_thresholds_skip_warning() -> None:
    assert evaluate(beat(10.0), NOW, 10, 10).status is Status.OK
    assert evaluate(beat(10.5), NOW, 10, 10).status is Status.CRITICAL


def test_old_heartbeat_message_is_readable() -> None:
    result = evaluate(beat(2 * 3600 + 5 * 60), NOW, 5, 30)
    assert result.status is Status.CRITICAL
    assert result.message == "heartbeat 2h 5m old"
    assert result.perfdata == "staleness=7500.000s;5;30;0"


def test_missing_heartbeat_is_unknown() -> None:
    result = evaluate(None, NOW, 5, 30)
    assert result.status is Status.UNKNOWN
    assert HEARTBEAT_KEY in result.message and "missing" in result.message
    assert result.perfdata == ""
    assert (
        result.line("h:1") == f"PRODSTATE UNKNOWN - heartbeat key {HEARTBEAT_KEY} is missing (h:1)"
    )


@pytest.mark.parametrize("raw", ["", "abc", "12:00", "nan", "inf", "-inf", "1e999", "0x10"])
def test_garbage_heartbeat_is_unknown(raw: str) -> None:
    result = evaluate(raw, NOW, 5, 30)
    assert result.status is Status.UNKNOWN
    assert "is not a number" in result.message
    assert repr(raw) in result.message
    assert result.perfdata == ""


def test_garbage_cannot_break_the_status_line() -> None:
    raw = "a|b\nc" + "x" * 100
    line = evaluate(raw, NOW, 5, 30).line("h:1")
    assert "\n" not in line
    assert "|" not in line  # Nagios would read what follows as perfdata
    assert len(line) < 150


def test_small_future_offset_is_plain_skew() -> None:
    result = evaluate(beat(-0.8), NOW, 5, 30)
    assert result.status is Status.OK
    assert result.message == "heartbeat 0.0s old"
    assert result.perfdata == "staleness=0.000s;5;30;0"


def test_future_heartbeat_mentions_clock_skew() -> None:
    result = evaluate(beat(-4.2), NOW, 5, 30)
    assert result.status is Status.OK
    assert result.message == "heartbeat 0.0s old, 4.2s in the future (clock skew?)"
    assert result.perfdata == "staleness=0.000s;5;30;0"


@pytest.mark.parametrize("ahead", [5.5, 42.5, 11 * 86400])
def test_a_heartbeat_further_ahead_than_skew_is_unknown_not_fresh(ahead: float) -> None:
    """A forged (or wildly skewed) heartbeat must not hide a stale copy."""
    result = evaluate(beat(-ahead), NOW, 5, 30)
    assert result.status is Status.UNKNOWN
    assert "in the future, beyond the 5s allowed for clock skew" in result.message


def test_evaluate_rejects_inverted_thresholds() -> None:
    with pytest.raises(ValueError):
        evaluate(beat(1), NOW, 30, 5)
    with pytest.raises(ValueError):
        evaluate(beat(1), NOW, -1, 5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0s"), (59.94, "59.9s"), (60, "1m 0s"), (725, "12m 5s"), (90061, "1d 1h")],
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


class FakeRedis:
    """Stands in for a redis-py client: GET returns ``value`` or raises ``error``."""

    def __init__(self, value: str | None = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.closed = False

    def get(self, key: str) -> str | None:
        assert key == HEARTBEAT_KEY
        if self.error is not None:
            raise self.error
        return self.value

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    client = FakeRedis()
    monkeypatch.setattr(check_module, "connect", lambda address, timeout, **kw: client)
    return client


def test_read_heartbeat_evaluates_the_value(fake: FakeRedis) -> None:
    fake.value = beat(12)
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW)
    assert result == CheckResult(Status.WARNING, "heartbeat 12.0s old", "staleness=12.000s;5;30;0")
    assert fake.closed


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (redis_errors.BusyLoadingError("LOADING Redis is loading"), "loading its dataset"),
        (redis_errors.AuthenticationError("Authentication required."), "requires authentication"),
        (redis_errors.TimeoutError("Timeout reading"), "did not answer within 2s"),
        (redis_errors.ConnectionError("Connection refused."), "cannot connect to Redis"),
        (
            redis_errors.ResponseError("WRONGTYPE Op"),
            "refused GET prodstate:time: WRONG",
        ),
        (redis_errors.ResponseError("Link with MASTER is down"), "GET prodstate:time: Link"),
        (redis_errors.RedisError("odd"), "Redis error: odd"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "not valid UTF-8"),
        (RuntimeError("boom"), "unexpected error: RuntimeError: boom"),
    ],
)
def test_read_heartbeat_maps_errors_to_unknown(
    fake: FakeRedis, error: BaseException, reason: str
) -> None:
    fake.error = error
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW)
    assert result.status is Status.UNKNOWN
    assert reason in result.message
    assert result.perfdata == ""
    assert fake.closed


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(check, list(args), env=env, prog_name="prodstate check")


def test_command_prints_the_line_and_exits_with_the_status(fake: FakeRedis) -> None:
    fake.value = f"{check_module.time.time() - 100:.6f}"
    result = run("--redis", "h:1", "--warning", "5", "--critical", "30")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("PRODSTATE CRITICAL - heartbeat 1m 40s old (h:1) | staleness=")
    assert result.output.rstrip().endswith("s;5;30;0")


def test_command_reads_options_from_the_environment(
    fake: FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    monkeypatch.setattr(
        check_module, "connect", lambda address, timeout, **kw: seen.append(address) or fake
    )
    fake.value = f"{check_module.time.time() - 3:.6f}"
    env = {"PRODSTATE_REDIS": "example:7000", "PRODSTATE_WARNING": "1", "PRODSTATE_CRITICAL": "2"}
    result = run(env=env)
    assert seen == ["example:7000"]
    assert result.exit_code == 2, result.output
    assert "(example:7000)" in result.output and ";1;2;0" in result.output


def test_defaults(fake: FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PRODSTATE_REDIS", "PRODSTATE_WARNING", "PRODSTATE_CRITICAL"):
        monkeypatch.delenv(name, raising=False)
    fake.value = f"{check_module.time.time():.6f}"
    result = run()
    assert result.exit_code == 0, result.output
    assert "(localhost:6379)" in result.output and ";5;30;0" in result.output


def test_warning_above_critical_is_a_usage_error_exiting_3(fake: FakeRedis) -> None:
    result = run("--warning", "40", "--critical", "30")
    assert result.exit_code == 3
    assert result.stdout.startswith(
        "PRODSTATE UNKNOWN - usage error: --warning (40) must not exceed --critical (30)\n"
    )
    assert "Usage: prodstate check" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--warning", "-1"], "--warning"),
        (["--critical", "soon"], "--critical"),
        (["--warning", "nan"], "finite"),
        (["--critical", "inf"], "finite"),
        (["--redis", "localhost"], "not HOST:PORT"),
        (["--redis", "localhost:0"], "not HOST:PORT"),
        (["--bogus"], "No such option"),
        (["extra"], "unexpected extra argument"),
    ],
)
def test_bad_options_exit_3(fake: FakeRedis, args: list[str], complaint: str) -> None:
    result = run(*args)
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith("PRODSTATE UNKNOWN - usage error: ")
    assert complaint in result.stdout.splitlines()[0]
    assert not fake.closed  # Redis was never asked


def test_usage_errors_exit_3_when_run_as_a_subcommand(fake: FakeRedis) -> None:
    @click.group()
    def group() -> None:
        """Stand-in for the prodstate group."""

    group.add_command(check)
    result = CliRunner().invoke(group, ["check", "--warning", "9", "--critical", "3"])
    assert result.exit_code == 3
    assert result.stdout.startswith("PRODSTATE UNKNOWN - usage error: --warning (9)")


def test_help_exits_0() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "--warning" in result.output and "PRODSTATE_REDIS" in result.output


# --- the agent's own measure -----------------------------------------------------------------


@pytest.fixture
def agent_metrics():
    import time

    from prodstate.agent.metrics import AgentMetrics
    from prodstate.core.freshness import Freshness
    from tests.snapshot_builder import snap

    def observe(age: float, fresh: bool = True, pause=None) -> None:
        now = time.monotonic()  # what /freshness measures against
        freshness = Freshness("1.0", now - 100, now - age, fresh, checked_at=now)
        s = snap(now=now, freshness=freshness, pause=pause, wall_clock=time.time())
        m.observe(s, Decision(Wait(), "-"), 0.001, None)

    m = AgentMetrics("me", "prod", "leaf")
    m.serve(0, "127.0.0.1")
    yield m, observe
    m.close()


def test_with_the_agent_its_monotonic_measure_wins_over_the_clocks(fake, agent_metrics) -> None:
    """A heartbeat stamped an hour ahead (a root clock off) is judged by when it last
    changed here, not by its value."""
    m, observe = agent_metrics
    observe(0.5)
    fake.value = f"{NOW + 3600:.6f}"
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.OK
    assert result.message.startswith("heartbeat advanced ") and result.message.endswith(" (agent)")


def test_an_agent_that_measures_a_stale_copy_makes_the_check_critical(fake, agent_metrics):
    m, observe = agent_metrics
    observe(40.0, fresh=False)
    fake.value = beat(0.1)  # the clocks would say fresh
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.CRITICAL and "(agent)" in result.message


def test_with_the_agent_dead_the_check_compares_clocks_and_says_so(fake) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    fake.value = beat(12)
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{port}")
    assert result.status is Status.WARNING
    assert result.message.startswith("heartbeat 12.0s old by clock comparison: agent at ")
    assert "not answering" in result.message


def test_an_agent_that_read_no_heartbeat_yet_means_clocks(fake, agent_metrics) -> None:
    m, _ = agent_metrics
    fake.value = beat(1)
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert "by clock comparison" in result.message and "stuck" in result.message


def test_the_agent_tells_the_check_and_the_metrics_of_a_maintenance_pause(fake, agent_metrics):
    import time

    from prodstate.core.maintenance import Pause

    m, observe = agent_metrics
    pause = Pause("network work", "ops@admin1", time.time() - 5, time.time() + 3600)
    observe(0.5, pause=pause)
    fake.value = beat(0.1)
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.OK
    assert '(agent); cluster paused by ops@admin1: "network work", 60m left' in result.message
    sample = m.registry.get_sample_value
    assert sample("prodstate_paused") == 1
    assert sample("prodstate_pause_expiry_timestamp_seconds") == pause.expires
    observe(0.5)
    assert sample("prodstate_paused") == 0
    result = read_heartbeat("h:1", 5, 30, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert "paused" not in result.message
