"""A namespace's history: its entries parsed, and the state of the namespace at an earlier
version worked out from them (for rollback and diff). Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prodstate.settings.keys import HISTORY_MAX
from prodstate.settings.records import ABSENT, Namespace, Refused, Stamp

#: Kinds of change: a value set, a key unset, the schema set (key "").
KINDS = ("set", "unset", "schema")


class HistoryGap(Refused):
    """The history kept does not reach back to the version asked for."""


@dataclass(frozen=True)
class Change:
    """One entry of the history: the namespace's ``revision`` after it, what changed
    (``key``; "" for the schema), its value before and after (ABSENT: not set), who, when,
    where and why, and the version it rolled back to (None: not a rollback)."""

    revision: int
    kind: str
    key: str
    old: Any
    new: Any
    stamp: Stamp
    rollback_to: int | None = None

    def fields(self) -> dict[str, str]:
        """The stream entry's fields (``old``/``new`` as JSON, left out when ABSENT)."""
        found = {"revision": str(self.revision), "kind": self.kind, "key": self.key}
        for name in ("old", "new"):
            value = getattr(self, name)
            if value is not ABSENT:
                found[name] = json.dumps(value, separators=(",", ":"), sort_keys=True)
        stamp = self.stamp
        found.update(who=stamp.who, host=stamp.host, at=repr(stamp.at), reason=stamp.reason)
        if self.rollback_to is not None:
            found["to"] = str(self.rollback_to)
        return found

    def as_json(self) -> dict[str, Any]:
        """The change as a JSON object (``old``/``new`` left out when ABSENT)."""
        doc: dict[str, Any] = {"version": self.revision, "kind": self.kind, "key": self.key}
        for name in ("old", "new"):
            value = getattr(self, name)
            if value is not ABSENT:
                doc[name] = value
        doc.update(vars(self.stamp))
        if self.rollback_to is not None:
            doc["rollback_to"] = self.rollback_to
        return doc


def parse_entry(fields: dict[str, str]) -> Change:
    """A history entry's fields as a Change; ValueError if malformed."""
    try:
        revision = int(fields["revision"])
        kind = fields["kind"]
        if kind not in KINDS or revision < 1:
            raise ValueError(kind)
        old, new = (json.loads(fields[n]) if n in fields else ABSENT for n in ("old", "new"))
        stamp = Stamp(fields["who"], fields["host"], float(fields["at"]), fields["reason"])
        to = int(fields["to"]) if "to" in fields else None
        return Change(revision, kind, fields["key"], old, new, stamp, to)
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"malformed history entry ({type(exc).__name__}: {exc})") from None


def parse_entries(raw: Sequence[tuple[str, dict[str, str]]]) -> list[Change]:
    """``XRANGE`` entries, oldest first, as Changes; ValueError if one is malformed."""
    return [parse_entry(fields) for _, fields in raw]


def matches(namespace: Namespace, changes: Sequence[Change]) -> bool:
    """True if ``changes`` are the history of ``namespace`` as read: consecutive revisions,
    the last one the namespace's (False: they were read across a change, or altered)."""
    if not changes:
        return False
    revisions = [c.revision for c in changes]
    expected = list(range(revisions[0], revisions[0] + len(changes)))
    return revisions == expected and revisions[-1] == namespace.revision


def state_at(
    namespace: Namespace, changes: Sequence[Change], version: int
) -> tuple[dict[str, Any], Any]:
    """The namespace's settings (as one object) and schema (ABSENT before it had one) at
    ``version``: the current state with the changes after ``version`` undone, newest first.
    Refused for a version beyond the namespace's; HistoryGap if a change after it is no
    longer kept."""
    if not 0 <= version <= namespace.revision:
        raise Refused(
            f"there is no version {version}: {namespace.name} is at version {namespace.revision}"
        )
    document = namespace.document()
    schema = namespace.schema.schema
    if version == namespace.revision:
        return document, schema
    oldest = changes[0].revision if changes else namespace.revision + 1
    if oldest > version + 1:
        raise HistoryGap(
            f"version {version} of {namespace.name} is older than its history reaches "
            f"(the last {HISTORY_MAX} changes are kept: from version {oldest - 1})"
        )
    for change in reversed(changes):
        if change.revision <= version:
            break
        if change.kind == "schema":
            schema = change.old
        elif change.old is ABSENT:
            document.pop(change.key, None)
        else:
            document[change.key] = change.old
    return document, schema


def value_at(namespace: Namespace, changes: Sequence[Change], key: str, version: int) -> Any:
    """``key``'s value at ``version`` (ABSENT: not set then); see :func:`state_at`."""
    found = namespace.settings.get(key)
    if found is not None and found.version <= version <= namespace.revision:
        return found.value  # unchanged since then: no history needed
    return state_at(namespace, changes, version)[0].get(key, ABSENT)


@dataclass(frozen=True)
class Difference:
    """A key whose value differs between two versions (ABSENT: not set in that one)."""

    key: str
    old: Any
    new: Any


def diff(
    namespace: Namespace, changes: Sequence[Change], start: int, end: int
) -> tuple[list[Difference], bool]:
    """The keys whose values differ between versions ``start`` and ``end``, and whether
    the schema differs; see :func:`state_at` for the errors."""
    before, schema_before = state_at(namespace, changes, start)
    after, schema_after = state_at(namespace, changes, end)
    found = [
        Difference(key, before.get(key, ABSENT), after.get(key, ABSENT))
        for key in sorted(set(before) | set(after))
        if _canonical(before.get(key, ABSENT)) != _canonical(after.get(key, ABSENT))
    ]
    return found, _canonical(schema_before) != _canonical(schema_after)


def _canonical(value: Any) -> str:
    """A value compared as JSON (1 and 1.0 and True stay distinct; ABSENT is not null)."""
    if value is ABSENT:
        return "\x00absent"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
