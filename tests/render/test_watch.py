"""prodstate watch: which changed keys a pattern reports."""

from __future__ import annotations

import pytest

from prodstate.render.watch import KeyFilter, glob_regex


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("db:foobar", "db:foobar", True),
        ("db:foobar", "db:foobarx", False),
        ("service:*", "service:web:machines", True),
        ("service:*", "services", False),
        ("h?llo", "hallo", True),
        ("h?llo", "hllo", False),
        ("h[ae]llo", "hello", True),
        ("h[ae]llo", "hillo", False),
        ("h[^e]llo", "hallo", True),
        ("h[^e]llo", "hello", False),
        ("h[a-c]llo", "hbllo", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a.b", "axb", False),
        ("[", "[", True),
    ],
)
def test_glob_matches_as_redis_does(pattern: str, key: str, matches: bool) -> None:
    assert (glob_regex(pattern).fullmatch(key) is not None) is matches


def test_the_trees_own_keys_are_skipped_unless_named() -> None:
    assert not KeyFilter("*").matches("prodstate:time")
    assert KeyFilter("*").matches("db:foobar")
    assert KeyFilter("prodstate:*").matches("prodstate:time")


def test_a_channel_names_its_key() -> None:
    keys = KeyFilter("db:*")
    assert keys.key_of("__keyspace@0__:db:foobar") == "db:foobar"
    assert keys.key_of("__keyspace@0__:web") is None
    assert keys.key_of("__keyspace@1__:db:foobar") is None
