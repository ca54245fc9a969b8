"""Key names, name checks, durations and times of the state database."""

from __future__ import annotations

import pytest

from prodstate.statedb import keys

NOW = 1_800_000_000.0


def test_per_record_keys_live_under_the_prefix():
    assert keys.instances("web") == "infra:service:web:hosts"
    assert keys.host_services("h1.example") == "infra:host:h1.example:services"
    assert keys.errors("api") == "infra:errors:api"


@pytest.mark.parametrize("name", ["", "a b", "-x", "a/b", "x" * 65, "a:b"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="service name"):
        keys.instances(name)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1.5h", 5400),
    ],
)
def test_spans(text, seconds):
    assert keys.parse_span(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "5y", "1h30m"])
def test_bad_spans_say_what_is_expected(text):
    with pytest.raises(ValueError, match="duration"):
        keys.parse_span(text)


def test_points_in_time_are_ago_or_iso_dates():
    assert keys.parse_when("2h", now=NOW) == NOW - 7200
    assert keys.parse_when("2026-01-01") == 1767225600
    assert keys.parse_when("2026-01-01T02:00:00+02:00") == 1767225600
    with pytest.raises(ValueError, match="neither a duration"):
        keys.parse_when("yesterday")


def test_capped_xadd_and_clip():
    cmd = keys.capped_xadd("infra:deploys", 100, {"a": 1, "b": None})
    assert cmd == ("XADD", "infra:deploys", "MAXLEN", "~", 100, "*", "a", "1", "b", "")
    assert keys.clip("abc", 2) == "a…"
    assert keys.clip("abc", 3) == "abc"


def test_malformed_json_records_read_as_empty():
    assert keys.loads("{bad") == {}
    assert keys.loads("[1]") == {}
    assert keys.loads(None) == {}
    assert keys.loads(keys.dumps({"v": 1})) == {"v": 1}
    assert keys.stream_time("1767225600123-0") == 1767225600.123


def test_spans_and_times_are_range_checked():
    assert keys.check_span("3650d") == keys.SPAN_MAX
    with pytest.raises(ValueError, match="too long: at most 3650d"):
        keys.check_span("99999999999d")
    with pytest.raises(ValueError, match="too long: at most 2h"):
        keys.check_span("3h", maximum=7200)
    with pytest.raises(ValueError, match="too long"):
        keys.parse_when("99999999999d", now=NOW)
    with pytest.raises(ValueError, match="between 1970-01-01 and 9999-12-31"):
        keys.parse_when("0001-01-01")
    assert keys.check_time(0.0) == 0.0
    with pytest.raises(ValueError, match="between"):
        keys.check_time(-1.0)


@pytest.mark.parametrize("ts", [1e20, -1e20, float("nan"), float("inf")])
def test_times_a_record_holds_out_of_range_still_format(ts):
    assert keys.fmt_time(ts) == "(invalid time)"


def test_fields_are_one_bounded_line():
    assert keys.check_text("db migration", "the reason") == "db migration"
    for text, message in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 2001, "2001 characters long: at most 2000"),
        ("two\nlines", r"one line of text \(it holds '\\n'\)"),
        ("bell\x07", "one line"),
        ("c1\x9b", "one line"),
    ]:
        with pytest.raises(ValueError, match=message):
            keys.check_text(text, "the reason")
    assert keys.check_text("é ü 日本", "the reason", 8) == "é ü 日本"


def test_targets_are_names_at_most_thirty_two_without_repeats():
    assert keys.check_targets(["b", "a", "b"]) == ["b", "a"]
    assert len(keys.check_targets([f"h{i}" for i in range(32)])) == 32
    with pytest.raises(ValueError, match="33 targets: at most 32"):
        keys.check_targets([f"h{i}" for i in range(33)])
    with pytest.raises(ValueError, match="target name"):
        keys.check_targets(["ok", "not ok"])
