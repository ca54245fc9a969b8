"""The state database in numbers (pure): machines by freshness, locks held and expired,
deploys by outcome, errors per service; the overview's tiles and the metrics come from
these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import Machine
from prodstate.statedb.services import RUNNING

#: Every outcome a deploy in the log can have (each is counted, zero or not).
#: What may follow a service's name in the name of a lock of its own.
SEPARATORS = ("-", ".", "_")
OUTCOMES = ("running", "succeeded", "failed", "killed", "aborted", "abandoned")


def machines_by_freshness(found: Iterable[Machine]) -> dict[str, int]:
    """``{"fresh": n, "stale": n}``."""
    stale = Counter(m.stale for m in found)
    return {"fresh": stale[False], "stale": stale[True]}


def locks_by_state(found: Iterable[LockRecord], now: float) -> dict[str, int]:
    """``{"held": n, "expired": n}`` (an expired lock is free until someone takes it)."""
    expired = Counter(r.expired(now) for r in found)
    return {"held": expired[False], "expired": expired[True]}


def deploys_by_outcome(found: Iterable[Deploy]) -> dict[str, int]:
    """How many deploys have each outcome (``running``: no outcome recorded yet)."""
    seen = Counter(d.outcome for d in found)
    return {**{o: seen[o] for o in OUTCOMES}, **seen}


def errors_by_service(found: Mapping[str, Sequence[ErrorEntry]], since: float) -> dict[str, int]:
    """Errors at or after ``since`` per service."""
    return {name: sum(1 for e in items if e.at >= since) for name, items in found.items()}


@dataclass(frozen=True)
class Tile:
    """A number on the overview, what it counts, how it looks and where it leads."""

    id: str
    label: str
    value: str
    health: str
    link: str


def tiles(
    nodes: Mapping[str, int] | None,
    machines: Mapping[str, int] | None,
    locks: Mapping[str, int] | None,
    deploys: Mapping[str, int] | None,
    errors: Mapping[str, int] | None,
) -> list[Tile]:
    """The overview's tiles; a count that could not be read shows ``?``."""

    def tile(tile_id: str, label: str, value: int | None, bad: bool, link: str) -> Tile:
        shown = "?" if value is None else f"{value:,}"
        look = "unknown" if value is None else ("bad" if bad else "ok")
        return Tile(tile_id, label, shown, look, link)

    found = []
    if nodes is None:
        found.append(tile("nodes", "nodes", None, False, "/"))
    else:
        total = sum(nodes.values())
        found.append(tile("nodes", "nodes", total, False, "/"))
        troubled = nodes.get("bad", 0)
        found.append(tile("troubled", "nodes with problems", troubled, bool(troubled), "/"))
    stale = None if machines is None else machines["stale"]
    fresh = None if machines is None else machines["fresh"]
    found.append(tile("fresh", "machines reporting", fresh, False, "/machines"))
    found.append(tile("stale", "machines stale", stale, bool(stale), "/machines"))
    held = None if locks is None else locks["held"]
    found.append(tile("locks", "locks held", held, False, "/locks"))
    running = None if deploys is None else deploys.get("running", 0)
    failed = None
    if deploys is not None:
        failed = sum(deploys.get(o, 0) for o in ("failed", "killed", "aborted", "abandoned"))
    found.append(tile("running", "deploys running", running, False, "/deploys"))
    found.append(tile("failed", "deploys failed (24h)", failed, bool(failed), "/deploys"))
    recent = None if errors is None else sum(errors.values())
    found.append(tile("errors", "errors (last hour)", recent, bool(recent), "/errors"))
    return found


def versions(instances: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """The versions running (``?`` when unknown) and on which hosts, most hosts first."""
    by_version: dict[str, list[str]] = {}
    for host, record in sorted(instances.items()):
        if record.get("state") == RUNNING:
            by_version.setdefault(str(record.get("version") or "?"), []).append(host)
    return sorted(by_version.items(), key=lambda item: (-len(item[1]), item[0]))


def locks_of(found: Iterable[LockRecord], service: str) -> list[LockRecord]:
    """The locks of ``service``: the one named after it, and those named after it and a
    separator (``shop-db``, ``shop.schema``)."""
    prefixes = tuple(service + s for s in SEPARATORS)
    return [r for r in found if r.name == service or r.name.startswith(prefixes)]


def matching_errors(
    found: Mapping[str, Sequence[ErrorEntry]], host: str | None, text: str | None
) -> dict[str, list[ErrorEntry]]:
    """The errors on ``host`` whose message holds ``text`` (case-insensitive), by service;
    services left without errors are dropped."""
    needle = (text or "").lower()
    kept = {
        name: [
            e
            for e in items
            if (not host or e.host == host) and (not needle or needle in e.message.lower())
        ]
        for name, items in found.items()
    }
    return {name: items for name, items in kept.items() if items}


@dataclass(frozen=True)
class MachinePick:
    """The machines a list shows, out of how many there are and how many are stale."""

    shown: list[Machine]
    matching: int
    total: int
    stale: int


def pick_machines(
    found: Sequence[Machine], text: str | None, stale_only: bool, limit: int
) -> MachinePick:
    """The machines whose name holds ``text`` (case-insensitive), only the stale ones if
    ``stale_only``, stale first then by name, at most ``limit`` of them."""
    needle = (text or "").lower()
    matching = [m for m in found if needle in m.host.lower() and (m.stale or not stale_only)]
    matching.sort(key=lambda m: (not m.stale, m.host))
    stale = sum(1 for m in found if m.stale)
    return MachinePick(matching[:limit], len(matching), len(found), stale)
