"""JSON from outside read within bounds: size and nesting checked before parsing, NaN,
infinities and repeated keys refused, every refusal a ValueError in one line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.settings.documents import check, dumps, nesting, parse


def test_values_of_every_json_type_parse():
    for text, value in [
        ("5", 5),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('"page"', "page"),
        ("[1, [2]]", [1, [2]]),
        ('{"b": 1, "a": {"c": []}}', {"a": {"c": []}, "b": 1}),
    ]:
        assert parse(text, "the value", 100, 3) == value


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 17 + "]" * 17, "nests 17 levels deep: at most 16"),
        ("[" * 100_000, "bytes long"),
        ('"' + "x" * 200 + '"', "bytes as compact JSON: at most 100"),
        ("NaN", "NaN is not a JSON number"),
        ("1e999", "out of range"),
        ("9" * 5000, "not accepted JSON"),
        ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
        ("5O", "is not JSON"),
        ("", "is not JSON"),
        ("\ud800", "not UTF-8"),
    ],
)
def test_hostile_documents_are_refused_in_one_line(text, says):
    limit = 100 if len(text) < 1000 else 4096
    with pytest.raises(ValueError, match=says) as refused:
        parse(text, "the value", limit, 16)
    assert "\n" not in str(refused.value)


def test_nesting_skips_brackets_inside_strings():
    assert nesting('"[[[["') == 0
    assert nesting('["\\"[", {"a": [1]}]') == 3
    assert nesting("7") == 0


def test_check_bounds_parsed_values():
    assert check({"a": [1, 2]}, "the value", 20, 2) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="nests 3 levels"):
        check([[[1]]], "the value", 100, 2)
    with pytest.raises(ValueError, match="at most 5"):
        check("long text", "the value", 5, 2)
    with pytest.raises(ValueError, match="not JSON"):
        check(float("nan"), "the value", 100, 2)
    with pytest.raises(ValueError, match="not JSON"):
        check({1j}, "the value", 100, 2)


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_with_a_value_error(text):
    try:
        value = parse(text, "the value", 200, 4)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(dumps(value)) <= 200 and nesting(dumps(value)) <= 4


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_what_is_written_reads_back_the_same(value):
    text = json.dumps(value)
    assert parse(text, "the value", 10_000, 50) == value
