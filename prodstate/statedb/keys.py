"""The ``infra:`` keys of the state database, their bounds, and checks of names and times."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from prodstate.core.durations import parse_span

PREFIX = "infra:"
#: hash: host -> JSON machine facts (one field per machine).
MACHINES = "infra:machines"
#: hash: service -> JSON {version, deployed_at, deployed_by, deploy} ("{}" until deployed).
SERVICES = "infra:services"
#: stream of service starts and stops (phone-home and discovery), capped.
SERVICE_EVENTS = "infra:service-events"
#: stream of deploy starts and outcomes, capped.
DEPLOYS = "infra:deploys"
#: stream of the output tails of finished deploys {id, output}, capped shorter than the log.
DEPLOY_OUTPUT = "infra:deploy-output"
#: hash: lock name -> JSON lock record, the mirror of ZooKeeper's locks.
LOCKS = "infra:locks"
#: sorted set: service -> time (ms) of its latest error.
ERROR_SERVICES = "infra:error-services"

#: Approximate caps (XADD MAXLEN ~) of the streams.
SERVICE_EVENTS_MAX = 10_000
DEPLOYS_MAX = 10_000
DEPLOY_OUTPUT_MAX = 1_000
ERRORS_MAX = 200
#: Longest text kept in a record field (reasons), in an error message, and in a deploy's
#: output tail.
TEXT_MAX = 2_000
ERROR_MESSAGE_MAX = 1_000
TAIL_MAX = 2_000

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION_RE = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces


def instances(service: str) -> str:
    """hash: host -> JSON instance record {state, version, since, source}, one per host."""
    return f"{PREFIX}service:{check_name(service, 'service')}:hosts"


def host_services(host: str) -> str:
    """hash: service -> JSON instance record, the same records indexed by host."""
    return f"{PREFIX}host:{check_name(host, 'host')}:services"


def errors(service: str) -> str:
    """stream of one service's errors {host, message}, capped at ERRORS_MAX."""
    return f"{PREFIX}errors:{check_name(service, 'service')}"


def check_name(name: str, what: str) -> str:
    """``name`` if it is a valid service, host or lock name; ValueError saying why not."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_version(version: str) -> str:
    """``version`` if it is 1-128 printable characters without spaces; ValueError otherwise."""
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ValueError(f"version {version!r} must be 1-128 printable characters, no spaces")
    return version


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """``text`` cut to ``limit`` characters (the end kept is the start)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def capped_xadd(key: str, cap: int, fields: dict[str, Any]) -> tuple[Any, ...]:
    """An ``XADD key MAXLEN ~ cap * field value ...`` command."""
    words: list[Any] = ["XADD", key, "MAXLEN", "~", cap, "*"]
    for name, value in fields.items():
        words += [name, "" if value is None else str(value)]
    return tuple(words)


def dumps(record: dict[str, Any]) -> str:
    """A record as compact JSON."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def loads(raw: str | None) -> dict[str, Any]:
    """A JSON record; {} when missing or malformed (records are never trusted blindly)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stream_time(entry_id: str) -> float:
    """The time (seconds) in a stream entry id ``<ms>-<seq>``."""
    return int(entry_id.split("-", 1)[0]) / 1000.0


def fmt_time(ts: float | None) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS`` (``-`` for none)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time: a duration ago (``2h``) or an ISO date/time (UTC unless it says)."""
    now = time.time() if now is None else now
    try:
        return now - parse_span(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration ago (2h, 3d) nor a date (2026-05-01T12:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
