"""A change as one fenced write: refused before any write when its value, bounds or
schema say so; conditions on the revision read and on --if-version; the history entry."""

from __future__ import annotations

import pytest

from prodstate.settings.changes import schema_change, stamp, value_change
from prodstate.settings.keys import HISTORY_MAX, KEYS_MAX, REASON_MAX, VALUE_MAX
from prodstate.settings.records import ABSENT, Refused
from tests.settings.builders import BY, SCHEMA, Replica


def test_a_set_writes_value_version_and_history_together_under_conditions():
    ns = Replica()
    ns.schema(SCHEMA)
    read = ns.namespace()
    write = value_change(read, "errors", "page_threshold", 5, BY, if_version=0)
    assert write.expect == [
        ("settings:ns:errors", "version:page_threshold", None),
        ("settings:ns:errors", "revision", "1"),
    ]
    assert write.if_version == 0
    hset, xadd = write.commands
    assert hset[:4] == ("HSET", "settings:ns:errors", "revision", 2)
    assert hset[6:] == ("version:page_threshold", 2)
    assert xadd[:5] == ("XADD", "settings:history:errors", "MAXLEN", HISTORY_MAX, "*")
    ns.apply(write)
    changed = ns.set("page_threshold", 7, if_version=2)
    assert (changed.revision, changed.old, changed.new) == (3, 5, 7)
    setting = ns.namespace().settings["page_threshold"]
    assert (setting.value, setting.version, setting.stamp) == (7, 3, BY)


def test_a_value_the_schema_refuses_writes_nothing():
    ns = Replica()
    ns.schema(SCHEMA)
    with pytest.raises(Refused, match=r"schema of errors, nothing written: \$.page_threshold"):
        ns.set("page_threshold", -1)
    with pytest.raises(Refused, match="'page_treshold' was unexpected"):
        ns.set("page_treshold", 5)
    ns.set("page_threshold", 5)
    with pytest.raises(Refused, match="'page_threshold' is a required property"):
        ns.set("page_threshold")  # unset
    assert ns.namespace().revision == 2 and len(ns.stream) == 2


def test_a_free_form_namespace_takes_any_value_within_the_bounds():
    ns = Replica("misc")
    ns.schema(None)
    ns.set("anything", {"nested": [1, "two", None]})
    with pytest.raises(ValueError, match=f"at most {VALUE_MAX}"):
        ns.set("big", "x" * VALUE_MAX)
    with pytest.raises(ValueError, match="nests 17 levels"):
        ns.set("deep", [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]])
    assert ns.namespace().document() == {"anything": {"nested": [1, "two", None]}}


def test_refusals_before_any_write():
    ns = Replica("misc")
    with pytest.raises(Refused, match="there is no namespace misc"):
        ns.set("a", 1)
    ns.schema(None)
    with pytest.raises(Refused, match="misc/a is not set"):
        ns.set("a")
    with pytest.raises(ValueError, match="setting name"):
        ns.set("a b", 1)
    for i in range(KEYS_MAX):
        ns.set(f"k{i}", i)
    with pytest.raises(Refused, match=f"at most {KEYS_MAX}"):
        ns.set("one-more", 1)
    ns.set("k0", "changing an existing key is fine")


def test_a_new_schema_must_accept_the_current_settings():
    ns = Replica()
    ns.schema(None)
    ns.set("page_threshold", 0)
    with pytest.raises(Refused, match=r"break the new schema, nothing written: .*minimum"):
        ns.schema(SCHEMA)
    ns.set("page_threshold", 3)
    assert ns.schema(SCHEMA).old is None  # it was free-form
    with pytest.raises(ValueError, match="not valid JSON Schema"):
        schema_change(ns.namespace(), "errors", {"type": 5}, BY)


def test_a_new_namespace_is_created_only_if_absent_at_the_root():
    write = schema_change(None, "web", SCHEMA, BY)
    assert write.expect == [("settings:ns:web", "revision", None)]
    assert ("SADD", "settings:namespaces", "web") in write.commands
    assert write.change.old is ABSENT and write.change.new == SCHEMA


def test_the_history_is_trimmed_to_its_bound():
    ns = Replica("busy")
    ns.schema(None)
    for i in range(HISTORY_MAX + 20):
        ns.set("n", i)
    revisions = [c.revision for c in ns.changes()]
    assert len(revisions) == HISTORY_MAX and revisions[-1] == HISTORY_MAX + 21


def test_stamp_checks_the_reason_and_defaults_to_user_at_host():
    by = stamp("raise for the sale", 5.0, host="h7")
    assert by.who.endswith("@h7") and by.host == "h7" and by.at == 5.0
    for reason, says in [
        (" ", "must not be empty"),
        ("a\nb", "one line"),
        ("x" * (REASON_MAX + 1), f"at most {REASON_MAX}"),
    ]:
        with pytest.raises(ValueError, match=says):
            stamp(reason, 5.0)
