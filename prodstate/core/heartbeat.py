"""The heartbeat: the root's clock, written into the dataset and replicated to every node.

The root agent writes ``time.time()`` to :data:`HEARTBEAT_KEY` at least once a second, so
``now - heartbeat`` read on a node is how far behind the root its copy is (plus any clock
difference). There is no TTL on the key: replicas hide expired keys by their own clock.
"""

from __future__ import annotations

import math

#: The root's wall clock, replicated with the data.
HEARTBEAT_KEY = "prodstate:time"
#: The root's epoch: the fencing token every write is checked against.
EPOCH_KEY = "prodstate:epoch"


def parse_heartbeat(raw: str | bytes | None) -> float | None:
    """The heartbeat in wall-clock seconds; None if it is missing or not a finite number
    ("nan" would compare as fresh, "inf" as from the future)."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def age(raw: str | bytes | None, now: float) -> float | None:
    """Seconds from the heartbeat ``raw`` to ``now`` (never below 0: a heartbeat ahead of
    this clock is skew, not freshness); None if there is no usable heartbeat."""
    value = parse_heartbeat(raw)
    return None if value is None else max(0.0, now - value)
