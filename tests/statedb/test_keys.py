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
