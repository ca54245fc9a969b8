"""Machines and their facts in the dataset (``infra:machines``), and how fresh they are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prodstate.statedb.keys import (
    MACHINES,
    NAME_RE,
    check_name,
    dumps,
    host_services,
    instances,
    loads,
)

#: A machine that has not reported for this long is shown as stale.
STALE_AFTER = 86_400.0


#: Largest machine record (JSON bytes); the longest text kept in one of its fields.
FACTS_MAX = 4_096
FACT_TEXT_MAX = 256


def bounded(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` within FACTS_MAX: texts cut to FACT_TEXT_MAX, then the last disks and
    addresses dropped (their number kept as ``omitted``) until the record fits."""
    kept = {k: v[:FACT_TEXT_MAX] if isinstance(v, str) else v for k, v in facts.items()}
    lists = [k for k in ("disks", "addresses") if isinstance(kept.get(k), list)]
    for key in lists:
        kept[key] = list(kept[key])
    omitted = 0
    while len(dumps(kept).encode()) > FACTS_MAX:
        longest = max(lists, key=lambda k: len(kept[k]), default=None)
        if longest is None or not kept[longest]:
            break
        kept[longest].pop()
        omitted += 1
        kept["omitted"] = omitted
    return kept


def record_command(facts: dict[str, Any]) -> tuple[Any, ...]:
    """The write that records a machine's facts (its field replaced as a whole), bounded
    (see :func:`bounded`)."""
    return ("HSET", MACHINES, check_name(facts["host"], "host"), dumps(bounded(facts)))


def forget_commands(host: str, services: Iterable[str]) -> list[tuple[Any, ...]]:
    """The writes that remove a machine: its facts, and its instance of each service in
    ``services`` (those its ``host_services`` hash names) from both indexes. The deploy
    log and service events keep their history."""
    host = check_name(host, "host")
    commands: list[tuple[Any, ...]] = [("HDEL", MACHINES, host)]
    valid = sorted(s for s in services if NAME_RE.fullmatch(s))  # no other can be indexed
    commands += [("HDEL", instances(service), host) for service in valid]
    commands.append(("DEL", host_services(host)))
    return commands


@dataclass(frozen=True)
class Machine:
    """A machine's facts, the age of its last report and whether that is too old."""

    host: str
    facts: dict[str, Any]
    age: float | None
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        """The facts plus ``age`` and ``stale``."""
        return {**self.facts, "host": self.host, "age": self.age, "stale": self.stale}


def machines(raw: dict[str, str], now: float, stale_after: float = STALE_AFTER) -> list[Machine]:
    """The machines in ``infra:machines`` (HGETALL) by host; a report older than
    ``stale_after`` seconds, or without a time, marks a machine stale."""
    found = []
    for host in sorted(raw):
        facts = loads(raw[host])
        reported = facts.get("reported_at")
        age = max(0.0, now - reported) if isinstance(reported, int | float) else None
        found.append(Machine(host, facts, age, age is None or age > stale_after))
    return found


def human_bytes(count: Any) -> str:
    """``16.0G``-style size (``-`` if unknown)."""
    if not isinstance(count, int | float) or count < 0:
        return "-"
    value = float(count)
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def human_age(age: float | None) -> str:
    """``45s``, ``12m``, ``3h``, ``5d`` (``never`` when unknown)."""
    if age is None:
        return "never"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if age >= size:
            return f"{int(age // size)}{unit}"
    return f"{int(age)}s"
