"""Maintenance records an operator writes to ZooKeeper (pure): a pause of automatic
failover and moves (``prodstate pause``)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass

from prodstate.core.model import MAX_ZNODE_BYTES, DataError, _field, _load_object

#: The longest a pause reason may be.
MAX_REASON = 500


@dataclass(frozen=True)
class Pause:
    """The cluster is in maintenance: no automatic failover and no moves until resumed or
    ``expires`` (wall-clock seconds since the epoch, as each agent's clock reads it)."""

    reason: str
    by: str
    since: float
    expires: float | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise DataError("a pause needs a reason")
        if len(self.reason) > MAX_REASON:
            raise DataError(f"the reason is over {MAX_REASON} characters")
        for value in (self.since, self.expires):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise DataError(f"pause time {value!r} is not a time")

    def active(self, wall_now: float) -> bool:
        """True until it expires."""
        return self.expires is None or wall_now < self.expires

    def describe(self, wall_now: float) -> str:
        """``paused by ops@host: "ZooKeeper upgrade", 40m left`` (or ``expired 5s ago``)."""
        text = f'paused by {self.by}: "{self.reason}"'
        if self.expires is None:
            return f"{text}, until resumed"
        left = self.expires - wall_now
        if left <= 0:
            return f"{text}, expired {format_duration(-left)} ago"
        return f"{text}, {format_duration(left)} left (until {_utc(self.expires)})"

    def to_json(self) -> bytes:
        """Encode as the pause znode's data."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Pause:
        """Decode the pause znode; DataError if anything is off."""
        what = "pause znode"
        if len(raw) > MAX_ZNODE_BYTES:
            raise DataError(f"{what}: over the size limit")
        obj = _load_object(raw, what)
        reason = _field(obj, "reason", str, what)
        by = _field(obj, "by", str, what)
        since = obj.get("since")
        expires = obj.get("expires")
        for name, value in (("since", since), ("expires", expires)):
            if value is None and name == "expires":
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise DataError(f"{what}: field {name!r} must be a number, got {value!r}")
        return cls(reason, by, float(since), None if expires is None else float(expires))


def format_duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h20m``, ``2d4h``: a coarse, readable span."""
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _utc(wall: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(wall))
