"""The heartbeat: the root's clock, written into the dataset and replicated to every node.

The root agent writes ``time.time()`` to :data:`HEARTBEAT_KEY` at least once a second, so
``now - heartbeat`` read on a node is how far behind the root its copy is (plus any clock
difference). There is no TTL on the key: replicas hide expired keys by their own clock.

This module is the one reader of the value, for the client, ``check``, ``status`` and the
agent's metrics: a heartbeat that is not a finite number, or is further ahead of this
machine's clock than clock skew explains, is no heartbeat at all (it would make a stale
copy look fresh for as long as it is ahead).
"""

from __future__ import annotations

import math

#: The root's wall clock, replicated with the data.
HEARTBEAT_KEY = "prodstate:time"
#: The root's epoch: the fencing token every write is checked against.
EPOCH_KEY = "prodstate:epoch"
#: Seconds a heartbeat may be ahead of this machine's clock and still count, as 0 s old.
MAX_FUTURE = 5.0
#: The longest heartbeat text read ("1700000000.123456" is 17 characters).
MAX_TEXT = 32


def parse_heartbeat(raw: str | bytes | None) -> float | None:
    """The heartbeat in wall-clock seconds; None if it is missing, longer than
    :data:`MAX_TEXT` or not a finite number ("nan" would compare as fresh, "inf" as from
    the future)."""
    if raw is None or len(raw) > MAX_TEXT:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def age_of(value: float | None, now: float, max_future: float = MAX_FUTURE) -> float | None:
    """Seconds from the heartbeat ``value`` to ``now``: 0 while it is up to ``max_future``
    ahead (clock skew); None if there is none, or it is further ahead."""
    if value is None or value - now > max_future:
        return None
    return max(0.0, now - value)


def age(raw: str | bytes | None, now: float, max_future: float = MAX_FUTURE) -> float | None:
    """:func:`age_of` the heartbeat text ``raw``."""
    return age_of(parse_heartbeat(raw), now, max_future)


def problem(raw: str | bytes | None, now: float, max_future: float = MAX_FUTURE) -> str:
    """Why ``raw`` is no usable heartbeat at ``now`` ("" if it is one)."""
    if raw is None:
        return f"heartbeat key {HEARTBEAT_KEY} is missing"
    value = parse_heartbeat(raw)
    if value is None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        shown = text if len(text) <= 40 else text[:40] + "..."
        return f"heartbeat {HEARTBEAT_KEY} is not a number: {shown!r}"
    if value - now > max_future:
        ahead = value - now
        return (
            f"heartbeat {HEARTBEAT_KEY} is {ahead:.1f}s in the future, beyond the "
            f"{max_future:g}s allowed for clock skew"
        )
    return ""
