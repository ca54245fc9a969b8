"""The settings pages' shaping (pure): each namespace's row in the list, a namespace's
history as one page (newest first, every key's or one key's, bounded), and values shown as
the JSON they are."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prodstate.settings.history import Change
from prodstate.settings.records import ABSENT, Namespace


@dataclass(frozen=True)
class NamespaceRow:
    """A namespace as the list shows it: as read with its latest change, or why it could
    not be read (a malformed record is this namespace's problem only)."""

    name: str
    namespace: Namespace | None = None
    last: Change | None = None
    error: str | None = None


@dataclass(frozen=True)
class Listing:
    """The namespaces listed (the first ones by name) and how many exist."""

    rows: list[NamespaceRow]
    total: int


@dataclass(frozen=True)
class HistoryPage:
    """The changes shown, newest first; how many of the kept ones match (every change, or
    those of one key); how many older ones match but are not shown, and the ``before`` that
    shows them (None: none); the oldest version the history still keeps (None: empty)."""

    changes: list[Change]
    matching: int
    older: int
    before: int | None
    kept_from: int | None


def history_page(
    changes: Sequence[Change], key: str | None, before: int | None, limit: int
) -> HistoryPage:
    """The page of ``changes`` (oldest first, as read) of ``key`` (None: every change)
    older than version ``before`` (None: from the newest), at most ``limit`` of them."""
    matching = [c for c in reversed(changes) if key is None or c.key == key]
    picked = [c for c in matching if before is None or c.revision < before]
    shown = picked[:limit]
    more = len(picked) - len(shown)
    return HistoryPage(
        shown,
        len(matching),
        more,
        shown[-1].revision if more else None,
        changes[0].revision if changes else None,
    )


def as_json(value: Any, indent: int | None = None) -> str:
    """``value`` as the JSON it is (``"5"`` a string, ``5`` a number), keys sorted, other
    scripts kept as themselves (the page marks invisible characters); ``-`` when not set."""
    if value is ABSENT:
        return "-"
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent)
    except (TypeError, ValueError, RecursionError):  # not from a parsed record
        return f"(cannot be shown as JSON: {type(value).__name__})"


def what(change: Change) -> str:
    """``set page_threshold``, ``unset email``, ``schema``, ``rollback of k to 3``."""
    if change.kind == "schema":
        return "schema (free-form)" if change.new is None else "schema"
    if change.rollback_to is not None:
        return f"rollback of {change.key} to {change.rollback_to}"
    return f"{change.kind} {change.key}"
