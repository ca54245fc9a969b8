"""Services and where they run: instance records written by phone-home commands and by
process discovery, and the queries over them. Decisions and queries are pure."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prodstate.statedb.keys import (
    ERROR_SERVICES,
    NAME_RE,
    SERVICE_EVENTS,
    SERVICE_EVENTS_MAX,
    SERVICES,
    capped_xadd,
    check_name,
    check_version,
    dumps,
    errors,
    host_services,
    instances,
    loads,
)

RUNNING, STOPPED = "running", "stopped"
PHONE_HOME, DISCOVERY = "phone-home", "discovery"


def instance_commands(
    service: str,
    host: str,
    state: str,
    now: float,
    version: str | None = None,
    source: str = PHONE_HOME,
    previous: Mapping[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """The writes recording that ``service`` is ``state`` on ``host``: the instance record
    under both indexes, the service in the registry, and an event in the capped stream.

    A stop keeps the version last known to run; ValueError for a stop of an instance
    never recorded (a typo must not create a service).
    """
    check_name(service, "service")
    check_name(host, "host")
    if state == STOPPED and not previous:
        raise ValueError(f"{service} was never recorded on {host}: nothing to mark stopped")
    if version is not None:
        check_version(version)
    known = (previous or {}).get("version")
    record = {
        "state": state,
        "version": version if version is not None else known,
        "since": now,
        "source": source,
    }
    raw = dumps(record)
    event = {
        "service": service,
        "host": host,
        "action": state,
        "version": record["version"],
        "source": source,
    }
    return [
        ("HSET", instances(service), host, raw),
        ("HSET", host_services(host), service, raw),
        ("HSETNX", SERVICES, service, "{}"),
        capped_xadd(SERVICE_EVENTS, SERVICE_EVENTS_MAX, event),
    ]


def forget_commands(service: str, hosts: Iterable[str]) -> list[tuple[Any, ...]]:
    """The writes that remove a retired service: its registry entry, its instances under
    both indexes (``hosts``: those its instance hash names) and its errors. The deploy
    log and service events keep their history."""
    service = check_name(service, "service")
    commands: list[tuple[Any, ...]] = [("HDEL", SERVICES, service)]
    valid = sorted(h for h in hosts if NAME_RE.fullmatch(h))  # no other can be indexed
    commands += [("HDEL", host_services(host), service) for host in valid]
    commands += [
        ("DEL", instances(service)),
        ("DEL", errors(service)),
        ("ZREM", ERROR_SERVICES, service),
    ]
    return commands


@dataclass(frozen=True)
class Pattern:
    """A service and the regular expression its processes' command lines match."""

    service: str
    regex: re.Pattern[str]


def parse_patterns(text: str) -> list[Pattern]:
    """Discovery patterns from TOML: ``[services]`` of ``NAME = "REGEX"``; ValueError
    naming the bad entry."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    table = doc.get("services")
    if not isinstance(table, dict) or not table:
        raise ValueError('expected a [services] table of NAME = "REGEX"')
    patterns = []
    for name, regex in sorted(table.items()):
        check_name(name, "service")
        if not isinstance(regex, str):
            raise ValueError(f"services.{name}: the pattern must be a string")
        try:
            patterns.append(Pattern(name, re.compile(regex)))
        except re.error as exc:
            raise ValueError(f"services.{name}: bad regular expression: {exc}") from None
    return patterns


def running_services(patterns: Iterable[Pattern], cmdlines: Iterable[str]) -> set[str]:
    """The services at least one of ``cmdlines`` matches."""
    lines = list(cmdlines)
    return {p.service for p in patterns if any(p.regex.search(line) for line in lines)}


def discovery_plan(
    found: set[str], current: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], list[str]]:
    """(to mark running, to mark stopped) on this host. ``current`` is its instance records
    by service. Only instances discovery itself found running are marked stopped, so a
    phone-home record is never overridden by a missed match."""
    start = sorted(s for s in found if current.get(s, {}).get("state") != RUNNING)
    stop = sorted(
        s
        for s, rec in current.items()
        if s not in found and rec.get("state") == RUNNING and rec.get("source") == DISCOVERY
    )
    return start, stop


def instances_by_key(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """An instance hash (HGETALL of either index) with its records parsed."""
    return {key: loads(value) for key, value in sorted(raw.items())}


def running(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Only the records in state running."""
    return {k: r for k, r in records.items() if r.get("state") == RUNNING}
