"""``prodstate check``: judging the heartbeat, mapping Redis errors, validating options."""

from __future__ import annotations

import os

import click
import pytest
from click.testing import CliRunner

import prodstate
from prodstate.cli import check as check_cli
from prodstate.cli import load_command
from prodstate.core.actions import Decision, Wait
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.nagios_range import Range, parse_range
from prodstate.ops import check as check_module
from prodstate.ops.check import CheckResult, Status, format_age, read_heartbeat
from prodstate.redis.resp import ProtocolError, ReplyError

NOW = 1_700_000_000.0
W, C = Range(0, 5), Range(0, 30)


def evaluate(raw: str | None, now: float, warning: float | str, critical: float | str):
    """:func:`prodstate.ops.check.evaluate` with thresholds written as on the command line."""
    return check_module.evaluate(raw, now, parse_range(f"{warning}"), parse_range(f"{critical}"))


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


@pytest.mark.parametrize(
    ("warning", "critical", "age", "status", "perfdata"),
    [
        ("10:", "5:", 7, Status.WARNING, "staleness=7.000s;10:;5:;0"),  # alert when too young
        ("~:1", "@0:0.5", 0.2, Status.CRITICAL, "staleness=0.200s;~:1;@0.5;0"),
        ("@2:4", "~:", 3, Status.WARNING, "staleness=3.000s;@2:4;~:;0"),
        ("40", "30", 35, Status.CRITICAL, "staleness=35.000s;40;30;0"),  # no order is forced
    ],
)
def test_ranges_decide_the_state_and_go_into_the_perfdata(warning, critical, age, status, perfdata):
    result = evaluate(beat(age), NOW, warning, critical)
    assert (result.status, result.perfdata) == (status, perfdata)


def test_an_unset_threshold_never_alerts_and_leaves_its_perfdata_field_empty() -> None:
    only_critical = check_module.evaluate(beat(20), NOW, None, Range(0, 3))
    assert only_critical.status is Status.CRITICAL
    assert only_critical.perfdata == "staleness=20.000s;;3;0"
    only_warning = check_module.evaluate(beat(9e5), NOW, Range(0, 3), None)
    assert only_warning.status is Status.WARNING
    assert only_warning.perfdata == "staleness=900000.000s;3;;0"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0s"), (59.94, "59.9s"), (60, "1m 0s"), (725, "12m 5s"), (90061, "1d 1h")],
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


class FakeRedis:
    """Stands in for :class:`prodstate.redis.resp.Connection`: GET returns ``value`` (str,
    sent as bytes) or raises ``error``. Real servers answer in integration/."""

    def __init__(self, value: str | None = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.closed = False

    def call(self, *args: str, max_bulk: int = 0) -> bytes | None:
        assert args == ("GET", HEARTBEAT_KEY)
        if self.error is not None:
            raise self.error
        return None if self.value is None else self.value.encode()

    def __enter__(self) -> FakeRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    client = FakeRedis()
    monkeypatch.setattr(check_module, "Connection", lambda address, timeout, **kw: client)
    return client


def test_read_heartbeat_evaluates_the_value(fake: FakeRedis) -> None:
    fake.value = beat(12)
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW)
    assert result == CheckResult(Status.WARNING, "heartbeat 12.0s old", "staleness=12.000s;5;30;0")
    assert fake.closed


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ReplyError("LOADING Redis is loading"), "loading its dataset"),
        (ReplyError("NOAUTH Authentication required."), "requires authentication: NOAUTH"),
        (ReplyError("WRONGPASS invalid username-password pair"), "requires authentication"),
        (TimeoutError("timed out"), "did not answer within 10s"),
        (ConnectionRefusedError(111, "Connection refused"), "cannot connect to Redis: "),
        (ReplyError("WRONGTYPE Op"), "refused GET prodstate:time: WRONGTYPE Op"),
        (ReplyError("MASTERDOWN Link with MASTER is down"), "GET prodstate:time: MASTERDOWN"),
        (ProtocolError("bulk string of 5000 bytes"), "not a Redis reply: bulk string"),
        (RuntimeError("boom"), "unexpected error: RuntimeError: boom"),
    ],
)
def test_read_heartbeat_maps_errors_to_unknown(
    fake: FakeRedis, error: BaseException, reason: str
) -> None:
    fake.error = error
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW)
    assert result.status is Status.UNKNOWN
    assert reason in result.message
    assert result.perfdata == ""
    assert fake.closed


class Ran:
    """What the check printed and returned."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, stdout, stderr
        self.output = stdout


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``prodstate check ARGS`` in this process, with only the PRODSTATE_* variables given."""
    for name in [k for k in os.environ if k.startswith("PRODSTATE_")]:
        monkeypatch.delenv(name)

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        try:
            code = check_cli.main(list(args))
        except SystemExit as exc:  # -h and -V, as argparse ends them
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def test_command_prints_the_line_and_exits_with_the_status(fake: FakeRedis, run) -> None:
    fake.value = f"{check_module.time.time() - 100:.6f}"
    result = run("--redis", "h:1", "--warning", "5", "--critical", "30")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("PRODSTATE CRITICAL - heartbeat 1m 40s old (h:1) | staleness=")
    assert result.output.rstrip().endswith("s;5;30;0")


def test_short_options_take_ranges(fake: FakeRedis, run) -> None:
    fake.value = f"{check_module.time.time() - 100:.6f}"
    result = run("--redis", "h:1", "-w", "@90:200", "-c", "~:1000", "-t", "3")
    assert result.exit_code == 1, result.output
    assert result.output.rstrip().endswith("s;@90:200;~:1000;0")


@pytest.mark.parametrize(
    ("args", "code", "perfdata"),
    [
        (["-c", "3"], 2, ";;3;0"),  # -c alone: no warning threshold
        (["--critical", "300"], 0, ";;300;0"),
        (["-w", "3"], 1, ";3;;0"),  # -w alone: no critical threshold
        ([], 2, ";5;30;0"),  # neither: the defaults
    ],
)
def test_either_threshold_alone_is_accepted(fake: FakeRedis, run, args, code, perfdata) -> None:
    fake.value = f"{check_module.time.time() - 100:.6f}"
    result = run("--redis", "h:1", *args)
    assert result.exit_code == code, result.output
    assert result.output.rstrip().endswith(perfdata)
    assert len(result.output.splitlines()) == 1


def test_command_reads_options_from_the_environment(
    fake: FakeRedis, monkeypatch: pytest.MonkeyPatch, run
) -> None:
    seen = []
    monkeypatch.setattr(
        check_module, "Connection", lambda address, timeout, **kw: seen.append(address) or fake
    )
    fake.value = f"{check_module.time.time() - 3:.6f}"
    env = {"PRODSTATE_REDIS": "example:7000", "PRODSTATE_WARNING": "1", "PRODSTATE_CRITICAL": "2"}
    result = run(env=env)
    assert seen == ["example:7000"]
    assert result.exit_code == 2, result.output
    assert "(example:7000)" in result.output and ";1;2;0" in result.output


def test_defaults(fake: FakeRedis, run) -> None:
    fake.value = f"{check_module.time.time():.6f}"
    result = run()
    assert result.exit_code == 0, result.output
    assert "(localhost:6379)" in result.output and ";5;30;0" in result.output


def test_version(run) -> None:
    result = run("-V")
    assert result.exit_code == 0
    assert result.stdout == f"prodstate check {prodstate.__version__}\n"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--warning", "-1"], "--warning: '-1' is not a range: its start is above its end"),
        (["-c", "soon"], "-c/--critical: 'soon' is not a range"),
        (["-w", "10:5"], "start is above its end"),
        (["-w", "nan"], "not a number"),
        (["--critical", "inf"], "not a number"),
        (["-c"], "-c/--critical: expected one argument"),
        (["-t", "0"], "-t/--timeout: '0': must be above 0"),
        (["-t", "nan"], "-t/--timeout: 'nan'"),
        (["-t", "1e9"], "at most 3600"),
        (["-t", "soon"], "'soon' is not a number of seconds"),
        (["--redis", "localhost"], "not HOST:PORT"),
        (["--redis", "localhost:0"], "not HOST:PORT"),
        (["--agent", "x"], "--agent: address 'x' is not HOST:PORT"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--warn", "3"], "unrecognized arguments: --warn"),  # no abbreviations
        (["extra"], "unrecognized arguments: extra"),
        (["--tls-cert-file", "c.pem"], "TLS needs a CA file"),
        (["--credentials-file", "/nonexistent/creds.toml"], "--credentials-file: "),
    ],
)
def test_bad_options_are_unknown_in_one_line_exiting_3(fake: FakeRedis, run, args, complaint):
    result = run(*args)
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith("PRODSTATE UNKNOWN - usage error: ")
    assert len(result.stdout.splitlines()) == 1
    assert complaint in result.stdout
    assert result.stderr == ""
    assert not fake.closed  # Redis was never asked


def test_a_bad_environment_value_is_a_usage_error(fake: FakeRedis, run) -> None:
    result = run(env={"PRODSTATE_CRITICAL": "30:10"})
    assert result.exit_code == 3
    assert result.stdout == (
        "PRODSTATE UNKNOWN - usage error: argument -c/--critical: '30:10' is not a range: "
        "its start is above its end\n"
    )


def test_as_a_subcommand_of_the_group_usage_errors_still_exit_3(fake: FakeRedis) -> None:
    from prodstate.cli import cli

    result = CliRunner().invoke(cli, ["check", "-w", "9:3"])
    assert result.exit_code == 3
    assert result.stdout.startswith("PRODSTATE UNKNOWN - usage error: argument -w/--warning")
    assert isinstance(load_command("check"), click.Command)


def test_help_exits_0(run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "-w RANGE, --warning RANGE" in result.output and "PRODSTATE_WARNING" in result.output
    assert "@10:20" in result.output


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
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.OK
    assert result.message.startswith("heartbeat advanced ") and result.message.endswith(" (agent)")


def test_an_agent_that_measures_a_stale_copy_makes_the_check_critical(fake, agent_metrics):
    m, observe = agent_metrics
    observe(40.0, fresh=False)
    fake.value = beat(0.1)  # the clocks would say fresh
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.CRITICAL and "(agent)" in result.message


def test_with_the_agent_dead_the_check_compares_clocks_and_says_so(fake) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    fake.value = beat(12)
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{port}")
    assert result.status is Status.WARNING
    assert result.message.startswith("heartbeat 12.0s old by clock comparison: agent at ")
    assert "not answering" in result.message


def test_an_agent_that_read_no_heartbeat_yet_means_clocks(fake, agent_metrics) -> None:
    m, _ = agent_metrics
    fake.value = beat(1)
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert "by clock comparison" in result.message and "stuck" in result.message


def test_the_agent_tells_the_check_and_the_metrics_of_a_maintenance_pause(fake, agent_metrics):
    import time

    from prodstate.core.maintenance import Pause

    m, observe = agent_metrics
    pause = Pause("network work", "ops@admin1", time.time() - 5, time.time() + 3600)
    observe(0.5, pause=pause)
    fake.value = beat(0.1)
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert result.status is Status.OK
    assert '(agent); cluster paused by ops@admin1: "network work", 60m left' in result.message
    sample = m.registry.get_sample_value
    assert sample("prodstate_paused") == 1
    assert sample("prodstate_pause_expiry_timestamp_seconds") == pause.expires
    observe(0.5)
    assert sample("prodstate_paused") == 0
    result = read_heartbeat("h:1", W, C, clock=lambda: NOW, agent=f"127.0.0.1:{m.port}")
    assert "paused" not in result.message
