"""Maintenance records an operator writes to ZooKeeper (pure): a pause of automatic
failover and moves (``prodstate pause``), a planned hand-over of the root (``prodstate
switchover``), a branch drained of its leaves (``prodstate drain``)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass

from prodstate.core.durations import format_duration
from prodstate.core.model import (
    MAX_ZNODE_BYTES,
    DataError,
    _field,
    _load_object,
    validate_node_id,
)

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
        since = _numbers(obj, ("since",), what)["since"]
        expires = None
        if obj.get("expires") is not None:
            expires = _numbers(obj, ("expires",), what)["expires"]
        return cls(reason, by, since, expires)


def _numbers(obj: dict[str, object], keys: tuple[str, ...], what: str) -> dict[str, float]:
    """The number fields ``keys`` of a decoded znode; DataError naming one that is not."""
    found = {}
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DataError(f"{what}: field {key!r} must be a number, got {value!r}")
        found[key] = float(value)
    return found


def _utc(wall: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(wall))


@dataclass(frozen=True)
class Switchover:
    """A planned hand-over of the root (``prodstate switchover``, or a root agent that is
    stopping): root ``source`` of ``epoch`` fences, waits until ``target`` holds its
    offset, and releases the root; ``target`` takes it with the next epoch while every
    other candidate waits. It applies until ``deadline`` (wall-clock seconds), and only
    to that root and epoch: a later tree ignores it."""

    id: str
    source: str
    epoch: int
    target: str
    by: str
    requested_at: float
    deadline: float

    def __post_init__(self) -> None:
        validate_node_id(self.source)
        validate_node_id(self.target)
        if self.source == self.target:
            raise DataError("a switchover needs a target other than the root")
        if self.epoch < 1:
            raise DataError(f"switchover epoch {self.epoch} is not a root's epoch")
        for value in (self.requested_at, self.deadline):
            if not (math.isfinite(value) and value >= 0):
                raise DataError(f"switchover time {value!r} is not a time")

    def applies(self, source: str, epoch: int, wall_now: float) -> bool:
        """True for root ``source`` at ``epoch`` before the deadline."""
        return (source, epoch) == (self.source, self.epoch) and wall_now < self.deadline

    def to_json(self) -> bytes:
        """Encode as the switchover znode's data."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Switchover:
        """Decode the switchover znode; DataError if anything is off."""
        what = "switchover znode"
        obj = _load_object(raw, what)
        times = _numbers(obj, ("requested_at", "deadline"), what)
        return cls(
            _field(obj, "id", str, what),
            _field(obj, "source", str, what),
            _field(obj, "epoch", int, what),
            _field(obj, "target", str, what),
            _field(obj, "by", str, what),
            **times,
        )


@dataclass(frozen=True)
class Drain:
    """Branch ``node_id`` is drained (``prodstate drain``): leaves move off it, each at
    its own moment within ``spread`` seconds of ``since`` (wall clock), so the branches
    taking them are not flooded; it is never elected root while drained."""

    node_id: str
    by: str
    since: float
    spread: float = 10.0

    def __post_init__(self) -> None:
        validate_node_id(self.node_id)
        for value in (self.since, self.spread):
            if not (math.isfinite(value) and value >= 0):
                raise DataError(f"drain time {value!r} is not a time")

    def move_at(self, leaf_id: str) -> float:
        """When (wall clock) leaf ``leaf_id`` moves off this branch: a point of the spread
        fixed by hashing, the same on every reading."""
        digest = hashlib.blake2b(f"drain\x00{self.node_id}\x00{leaf_id}".encode(), digest_size=8)
        return self.since + self.spread * int.from_bytes(digest.digest(), "big") / 2**64

    def to_json(self) -> bytes:
        """Encode as the drain znode's data."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, name: str, raw: bytes) -> Drain:
        """Decode the drain znode of branch ``name``; DataError if anything is off."""
        what = f"drain znode {name}"
        obj = _load_object(raw, what)
        numbers = _numbers(obj, ("since", "spread"), what)
        drain = cls(_field(obj, "node_id", str, what), _field(obj, "by", str, what), **numbers)
        if drain.node_id != name:
            raise DataError(f"{what}: it names node {drain.node_id}")
        return drain
