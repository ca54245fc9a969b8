"""Service errors: a capped stream per service plus the time of each service's latest
error, and counts per time bucket ("over time"). All pure but the reads' shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prodstate.statedb.keys import (
    ERROR_MESSAGE_MAX,
    ERROR_SERVICES,
    ERRORS_MAX,
    capped_xadd,
    check_name,
    clip,
    errors,
    stream_time,
)


def report_commands(service: str, host: str, message: str, now: float) -> list[tuple[Any, ...]]:
    """The writes recording one error of ``service`` on ``host``."""
    check_name(service, "service")
    check_name(host, "host")
    if not message.strip():
        raise ValueError("an error needs a message")
    return [
        capped_xadd(
            errors(service), ERRORS_MAX, {"host": host, "message": clip(message, ERROR_MESSAGE_MAX)}
        ),
        ("ZADD", ERROR_SERVICES, int(now * 1000), service),
    ]


@dataclass(frozen=True)
class ErrorEntry:
    """One reported error."""

    service: str
    at: float
    host: str
    message: str


def entries(service: str, raw: Iterable[tuple[str, dict[str, str]]]) -> list[ErrorEntry]:
    """Stream entries (XREVRANGE) as errors, newest first."""
    found = [
        ErrorEntry(service, stream_time(i), f.get("host", "?"), f.get("message", ""))
        for i, f in raw
    ]
    return sorted(found, key=lambda e: e.at, reverse=True)


def histogram(found: Sequence[ErrorEntry], now: float, bucket: float, buckets: int) -> list[int]:
    """Errors per bucket of ``bucket`` seconds, the oldest of ``buckets`` first, the last
    ending at ``now``; older errors are not counted."""
    counts = [0] * buckets
    for entry in found:
        back = int((now - entry.at) // bucket)
        if 0 <= back < buckets:
            counts[buckets - 1 - back] += 1
    return counts


_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """Counts as a line of block characters (blank for zero)."""
    top = max(counts, default=0)
    if top == 0:
        return " " * len(counts)
    return "".join(_BARS[0 if c == 0 else max(1, round(c / top * 8))] for c in counts)
