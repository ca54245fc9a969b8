"""The namespace at an earlier version, from its history: rollback's value, diff, gaps."""

from __future__ import annotations

import pytest

from prodstate.settings.history import HistoryGap, diff, matches, parse_entry, value_at
from prodstate.settings.keys import HISTORY_MAX
from prodstate.settings.records import ABSENT, Refused
from tests.settings.builders import SCHEMA, Replica


def history() -> Replica:
    ns = Replica()
    ns.schema(None)  # 1
    ns.set("page_threshold", 5)  # 2
    ns.set("email", "ops@example.com")  # 3
    ns.set("page_threshold", 9)  # 4
    ns.set("email")  # 5: unset
    ns.schema(SCHEMA)  # 6
    return ns


def test_value_at_each_version():
    ns = history()
    current, changes = ns.namespace(), ns.changes()
    assert matches(current, changes)
    at = {v: value_at(current, changes, "page_threshold", v) for v in range(7)}
    assert at == {0: ABSENT, 1: ABSENT, 2: 5, 3: 5, 4: 9, 5: 9, 6: 9}
    email = [value_at(current, changes, "email", v) for v in range(7)]
    assert email == [ABSENT, ABSENT, ABSENT, "ops@example.com", "ops@example.com", ABSENT, ABSENT]
    with pytest.raises(Refused, match="there is no version 7: errors is at version 6"):
        value_at(current, changes, "email", 7)


def test_diff_between_versions():
    ns = history()
    current, changes = ns.namespace(), ns.changes()
    differences, schema_changed = diff(current, changes, 2, 6)
    found = [(d.key, d.old, d.new) for d in differences]
    assert found == [("page_threshold", 5, 9)] and schema_changed
    differences, schema_changed = diff(current, changes, 1, 3)
    found = [(d.key, d.old, d.new) for d in differences]
    assert found == [("email", ABSENT, "ops@example.com"), ("page_threshold", ABSENT, 5)]
    assert not schema_changed
    assert diff(current, changes, 4, 4) == ([], False)


def test_a_version_older_than_the_kept_history_is_a_gap():
    ns = Replica("busy")
    ns.schema(None)
    ns.set("stable", "kept")  # 2: never changes again
    for i in range(HISTORY_MAX):
        ns.set("n", i)  # 3 .. HISTORY_MAX + 2
    current, changes = ns.namespace(), ns.changes()
    assert changes[0].revision == 3 and matches(current, changes)
    assert value_at(current, changes, "n", 3) == 0
    assert value_at(current, changes, "n", 2) is ABSENT  # the entry of version 3 says so
    assert value_at(current, changes, "stable", 2) == "kept"  # unchanged since
    with pytest.raises(HistoryGap, match="older than its history reaches"):
        value_at(current, changes, "n", 1)


def test_a_history_read_across_a_change_does_not_match():
    ns = history()
    current = ns.namespace()
    ns.set("page_threshold", 10)
    assert not matches(current, ns.changes())
    assert not matches(current, ns.changes()[:-2])
    assert not matches(current, [])


def test_malformed_entries_are_refused():
    good = history().stream[1]
    assert parse_entry(good).key == "page_threshold"
    for broken in [
        {**good, "revision": "x"},
        {**good, "kind": "drop"},
        {**good, "new": "{"},
        {**good, "new": "[" * 100_000 + "]" * 100_000},  # past the parser's depth
        {k: v for k, v in good.items() if k != "who"},
    ]:
        with pytest.raises(ValueError, match="malformed history entry"):
            parse_entry(broken)
