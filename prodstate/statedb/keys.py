"""The ``infra:`` keys of the state database, their bounds, and checks of names and times."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prodstate.core.durations import format_duration, parse_span

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
#: Longest reason (of a lock), error message (longer ones are kept cut, marked), and
#: deploy output tail.
TEXT_MAX = 2_000
ERROR_MESSAGE_MAX = 1_000
TAIL_MAX = 2_000
#: Most machines one deploy names; longest "who" of a deploy and holder of a lock.
TARGETS_MAX = 32
WHO_MAX = 128
#: Longest deploy command line kept in its record (longer ones are kept cut, marked).
COMMAND_MAX = 500
#: Longest span a duration may give (a lock's TTL, how far back to look): ten years.
SPAN_MAX = 3650 * 86400.0
#: Times a record may hold or a query may name: 1970-01-01 to 9999-12-31 (UTC).
TIME_MIN, TIME_MAX = 0.0, 253402300799.0

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION_MAX = 128
VERSION_RE = re.compile(rf"[!-~]{{1,{VERSION_MAX}}}")  # printable ASCII, no spaces


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


def check_text(text: str, what: str, limit: int = TEXT_MAX) -> str:
    """``text`` if it is one line (no control characters), not blank, of at most ``limit``
    characters; ValueError saying which it is not."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must not be empty")
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text)} characters long: at most {limit}")
    bad = next((c for c in text if c < " " or "\x7f" <= c < "\xa0"), None)
    if bad is not None:
        raise ValueError(f"{what} must be one line of text (it holds {bad!r})")
    return text


def check_targets(targets: Sequence[str]) -> list[str]:
    """``targets`` (machine names, duplicates dropped, order kept) if at most TARGETS_MAX;
    ValueError otherwise."""
    unique = list(dict.fromkeys(check_name(t, "target") for t in targets))
    if len(unique) > TARGETS_MAX:
        raise ValueError(
            f"{len(unique)} targets: at most {TARGETS_MAX} (deploy to more as several deploys)"
        )
    return unique


def check_span(text: str, maximum: float = SPAN_MAX) -> float:
    """The seconds ``text`` (``90s``, ``2h``, ``3d``) names, at most ``maximum``."""
    seconds = parse_span(text)
    if seconds > maximum:
        raise ValueError(f"duration {text!r} is too long: at most {format_duration(maximum)}")
    return seconds


def check_time(ts: float, what: str = "time") -> float:
    """``ts`` if it lies between 1970 and 9999; ValueError otherwise."""
    if not TIME_MIN <= ts <= TIME_MAX:
        raise ValueError(f"{what} must lie between 1970-01-01 and 9999-12-31")
    return ts


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
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError, TypeError):
        return "(invalid time)"  # a record not written by these commands


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time: a duration ago (``2h``) or an ISO date/time (UTC unless it says)."""
    now = time.time() if now is None else now
    if _is_span(text):
        return check_time(now - check_span(text), f"{text!r} ago")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration ago (2h, 3d) nor a date (2026-05-01T12:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return check_time(moment.timestamp(), f"date {text!r}")


def _is_span(text: str) -> bool:
    try:
        parse_span(text)
    except ValueError:
        return False
    return True
