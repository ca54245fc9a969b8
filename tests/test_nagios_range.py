"""Nagios threshold ranges: the guidelines' table, and any text parsed or refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.core.nagios_range import MAX_TEXT, Range, RangeError, parse_range

INF = math.inf


@pytest.mark.parametrize(
    ("text", "parsed", "alerting", "quiet"),
    [
        ("10", Range(0, 10), [-0.1, 10.5, 1e9], [0, 5, 10]),
        ("10:", Range(10, INF), [-1, 0, 9.99], [10, 11, 1e9]),
        ("~:10", Range(-INF, 10), [10.01, 1e9], [-1e9, 0, 10]),
        ("10:20", Range(10, 20), [9.99, 20.01, -5], [10, 15, 20]),
        ("@10:20", Range(10, 20, inside=True), [10, 15, 20], [9.99, 20.01, 0]),
        ("@5", Range(0, 5, inside=True), [0, 2.5, 5], [-0.1, 5.1]),
        ("-5:5", Range(-5, 5), [-5.1, 5.1], [-5, 0, 5]),
        ("1.5", Range(0, 1.5), [1.6], [0, 1.5]),
        ("1e3", Range(0, 1000), [1001], [1000]),
        (":10", Range(0, 10), [-1, 11], [0, 10]),  # an empty start is 0, as check_* do
        ("~:", Range(-INF, INF), [], [-1e300, 0, 1e300]),
        ("0", Range(0, 0), [-0.1, 0.1], [0]),
    ],
)
def test_the_guidelines_ranges(text, parsed, alerting, quiet):
    r = parse_range(text)
    assert r == parsed
    assert [v for v in alerting if not r.alerts(v)] == []
    assert [v for v in quiet if r.alerts(v)] == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("@", "empty"),
        ("~", "not a number"),
        ("10:5", "start is above its end"),
        ("-5", "start is above its end"),  # 0 .. -5
        ("abc", "'abc' is not a number"),
        ("1:2:3", "'2:3' is not a number"),
        ("5:~", "'~' is not a number"),  # ~ stands only for the start
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("1:inf", "not a number"),
        (" 5", "not a number"),
        ("1_0", "not a number"),
        ("@@5", "not a number"),
        ("x" * (MAX_TEXT + 1), f"at most {MAX_TEXT} characters"),
    ],
)
def test_what_is_not_a_range(text, why):
    with pytest.raises(RangeError, match=why.replace("(", r"\(")):
        parse_range(text)


@pytest.mark.parametrize(
    ("r", "text"),
    [
        (Range(0, 5), "5"),
        (Range(10, INF), "10:"),
        (Range(-INF, 10), "~:10"),
        (Range(10, 20, inside=True), "@10:20"),
        (Range(0, 0.5), "0.5"),
        (Range(0, INF), "0:"),
        (Range(-INF, INF), "~:"),
        (Range(2.5, 1e20), "2.5:1e+20"),
    ],
)
def test_a_range_is_written_as_the_guidelines_write_it(r, text):
    assert str(r) == text


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18)


@st.composite
def ranges(draw) -> Range:
    start = draw(st.just(-INF) | finite)
    end = draw(st.just(INF) | finite.filter(lambda e: e >= start))
    return Range(start, end, inside=draw(st.booleans()))


@given(ranges())
def test_a_range_reads_back_as_written(r):
    assert parse_range(str(r)) == r


@given(ranges(), finite)
def test_a_range_alerts_outside_its_ends_or_inside_with_at(r, value):
    within = r.start <= value <= r.end
    assert r.alerts(value) is (within if r.inside else not within)


@given(st.text(max_size=80) | st.from_regex(r"@?(~|-?[0-9.e]{0,6})?:?-?[0-9.e]{0,6}"))
def test_any_text_is_a_range_or_refused_with_a_reason(text):
    try:
        r = parse_range(text)
    except RangeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert r.start <= r.end and not math.isnan(r.start) and not math.isnan(r.end)
