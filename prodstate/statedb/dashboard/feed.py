"""What changed recently (pure): the tree's changes this dashboard saw, service starts and
stops, deploys, locks taken and errors, merged newest first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prodstate.statedb.dashboard.tree import Change
from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.keys import stream_time
from prodstate.statedb.locks import LockRecord

#: Entries the feed shows.
FEED_LENGTH = 20


@dataclass(frozen=True)
class Event:
    """One line of the feed: when, what kind, its text, the page it links to, if it is bad."""

    at: float
    kind: str
    text: str
    link: str | None = None
    bad: bool = False


def service_events(raw: Iterable[tuple[str, Mapping[str, str]]]) -> list[Event]:
    """``infra:service-events`` entries (XREVRANGE) as events."""
    found = []
    for entry_id, fields in raw:
        service = fields.get("service", "?")
        version = fields.get("version")
        text = f"{service} {fields.get('action', '?')} on {fields.get('host', '?')}"
        if version:
            text += f" ({version})"
        found.append(Event(stream_time(entry_id), "service", text, f"/services/{service}"))
    return found


def deploy_events(deploys: Iterable[Deploy]) -> list[Event]:
    """A deploy's start, and its outcome once it has one."""
    found = []
    for d in deploys:
        what = f"{d.service} {d.version} by {d.who}"
        link = f"/services/{d.service}"
        found.append(Event(d.started_at, "deploy", f"deploy of {what} started", link))
        if d.finished_at is not None:
            bad = d.outcome != "succeeded"
            text = f"deploy of {what} {d.describe_outcome()}"
            found.append(Event(d.finished_at, "deploy", text, link, bad))
    return found


def lock_events(locks: Iterable[LockRecord]) -> list[Event]:
    """Each lock's acquisition."""
    return [
        Event(r.acquired_at, "lock", f"lock {r.name} taken by {r.holder}: {r.reason}", "/locks")
        for r in locks
    ]


def error_events(found: Mapping[str, Sequence[ErrorEntry]]) -> list[Event]:
    """Each error."""
    return [
        Event(e.at, "error", f"{e.service} on {e.host}: {e.message}", f"/services/{name}", True)
        for name, items in found.items()
        for e in items
    ]


def change_events(changes: Iterable[Change]) -> list[Event]:
    """The tree's changes."""
    return [Event(c.at, "tree", c.text, "/", c.bad) for c in changes]


def merged(*sources: Iterable[Event], length: int = FEED_LENGTH) -> list[Event]:
    """The newest ``length`` events of every source."""
    every = [event for source in sources for event in source]
    return sorted(every, key=lambda e: e.at, reverse=True)[:length]
