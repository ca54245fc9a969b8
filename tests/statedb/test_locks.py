"""Pure lock decisions: expiry, who may release, record parsing, descriptions."""

from __future__ import annotations

import pytest

from prodstate.statedb.keys import LOCKS
from prodstate.statedb.locks import (
    LockRecord,
    mirror_command,
    new_lock,
    release_refusal,
)

NOW = 1_800_000_000.0


def test_a_lock_with_a_ttl_expires_exactly_at_its_end():
    lock = new_lock("web", "ann@h1", "migration 42", NOW, ttl=60)
    assert lock.expires_at == NOW + 60
    assert not lock.expired(NOW + 59.9)
    assert lock.expired(NOW + 60)


def test_a_lock_without_ttl_never_expires():
    lock = new_lock("web", "ann@h1", "migration", NOW)
    assert lock.expires_at is None
    assert not lock.expired(NOW + 10**9)


@pytest.mark.parametrize(
    ("name", "holder", "reason", "ttl", "message"),
    [
        ("bad name", "ann", "r", None, "lock name"),
        ("", "ann", "r", None, "lock name"),
        ("web", "ann", "  ", None, "reason"),
        ("web", "", "r", None, "holder"),
        ("web", "ann", "r", 0, "TTL"),
        ("web", "ann", "r", 366 * 86400, "at most 365d"),
        ("web", "ann", "x" * 2001, None, "reason is 2001 characters long"),
        ("web", "a" * 129, "r", None, "holder is 129 characters long"),
        ("web", "ann", "line\nbreak", None, "one line"),
    ],
)
def test_bad_locks_are_refused_with_the_reason(name, holder, reason, ttl, message):
    with pytest.raises(ValueError, match=message):
        new_lock(name, holder, reason, NOW, ttl)


def test_only_the_holder_may_release_unless_forced_or_expired():
    lock = new_lock("web", "ann@h1", "migration 42", NOW, ttl=60)
    refusal = release_refusal(lock, "bob@h2", force=False, now=NOW + 1)
    assert refusal is not None
    assert "ann@h1" in refusal and "migration 42" in refusal and "--force" in refusal
    assert release_refusal(lock, "ann@h1", force=False, now=NOW + 1) is None
    assert release_refusal(lock, "bob@h2", force=True, now=NOW + 1) is None
    assert release_refusal(lock, "bob@h2", force=False, now=NOW + 60) is None


def test_records_round_trip_and_malformed_ones_are_refused():
    lock = new_lock("web", "ann@h1", "why", NOW, ttl=5)
    assert LockRecord.from_json("web", lock.to_json()) == lock
    for raw in (
        b"not json",
        b"[]",
        b'{"holder": "x"}',
        b'{"holder":"a","reason":"r","acquired_at":"soon"}',
    ):
        with pytest.raises(ValueError, match="lock web: malformed"):
            LockRecord.from_json("web", raw)


def test_description_says_who_why_and_until_when():
    lock = new_lock("web", "ann@h1", "db migration", NOW, ttl=3600)
    text = lock.describe(NOW)
    assert text.startswith("web is held by ann@h1 since ")
    assert "expires" in text and text.endswith(": db migration")
    assert "expired" in lock.describe(NOW + 3600)
    assert "until released" in new_lock("web", "a", "r", NOW).describe(NOW)


def test_mirror_sets_a_held_lock_and_deletes_a_free_one():
    lock = new_lock("web", "ann", "r", NOW)
    assert mirror_command(lock, "web") == ("HSET", LOCKS, "web", lock.to_json())
    assert mirror_command(None, "web") == ("HDEL", LOCKS, "web")


def test_the_longest_reason_is_kept_whole():
    lock = new_lock("web", "ann", "x" * 2000, NOW)
    assert lock.reason == "x" * 2000
