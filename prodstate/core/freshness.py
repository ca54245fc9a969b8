"""Freshness: how long ago the root's heartbeat last advanced in the local Redis (pure).

A live ZooKeeper session proves that an agent runs, not that its Redis receives the root's
stream: a silently dead link stays ``master_link_status:up`` for ``repl-timeout``, and a
leaf under a branch that lost the root stays "up" for ever. The root writes its heartbeat
every ``heartbeat_interval``; every agent notes on its own monotonic clock when the value
it reads last *changed*. How long ago that was is the age of the local copy, and no clock
difference between machines enters it.

The verdict has hysteresis, as nerve's checks do: at most one check per heartbeat
interval; ``fall`` stale checks in a row make a fresh node stale, ``rise`` fresh checks in
a row make a stale node fresh again. A link that keeps failing needs longer to be trusted
again: each fall within ``settle`` of the last rise doubles the rise needed (up to 2**5),
and after such a fall the heartbeat must also have kept advancing for as long as it last
stood still. A check looks fresh for ``stale_after`` after the heartbeat stops, so rise
counts alone would let a link that flaps fast enough be trusted between two outages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: The most a rise is doubled for a flapping link.
MAX_FLAP_DOUBLINGS = 5


@dataclass(frozen=True)
class FreshnessPolicy:
    """The heartbeat period and the thresholds (``prodstate agent --heartbeat-interval``,
    ``--stale-after``, ``--fall``, ``--rise``)."""

    #: Seconds between the root's heartbeat writes, and between freshness checks.
    heartbeat_interval: float = 0.5
    #: A check is stale when the heartbeat has not advanced for longer than this.
    stale_after: float = 3.0
    #: Stale checks in a row that make a fresh node stale.
    fall: int = 2
    #: Fresh checks in a row that make a stale node fresh (doubled for a flapping link).
    rise: int = 4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.heartbeat_interval) and self.heartbeat_interval > 0):
            raise ValueError("heartbeat interval must be a positive number of seconds")
        if not (math.isfinite(self.stale_after) and self.stale_after > self.heartbeat_interval):
            raise ValueError("stale-after must be longer than the heartbeat interval")
        if self.fall < 1 or self.rise < 1:
            raise ValueError("fall and rise must be at least 1")

    @property
    def leaf_stale_after(self) -> float:
        """How long a leaf's copy is stale before the leaf blames its own parent's link:
        twice ``stale_after``, by when a branch that lost the root has withdrawn (its
        leaves then move because of that, and must not blame the link as well)."""
        return 2 * self.stale_after

    @property
    def settle(self) -> float:
        """Seconds a node must stay fresh before an earlier fall is forgotten."""
        return 20 * self.stale_after

    @property
    def hold_off(self) -> float:
        """Seconds a root that gave up for lack of acknowledgements stays out of the
        election (unless it has followed a new root and is fresh again first)."""
        return 4 * self.stale_after

    @property
    def rejoin_grace(self) -> float:
        """Seconds after the first branch turns fresh again, when every branch had fallen
        behind (the root was lost), during which leaves choose among all branches: after
        a new root, branches rise a moment apart."""
        return self.stale_after

    @property
    def avoid_for(self) -> float:
        """Seconds a leaf stays off a parent whose link it found stale."""
        return 20 * self.stale_after


@dataclass(frozen=True)
class Freshness:
    """One agent's view of the heartbeat in its local Redis (monotonic times)."""

    #: The heartbeat text last read (None: not read, or missing).
    value: str | None = None
    #: When the agent first read a heartbeat, and when it last saw it change.
    first_seen: float | None = None
    changed_at: float | None = None
    #: The verdict, and how many checks in a row have disagreed with it.
    fresh: bool = False
    streak: int = 0
    #: When the last counted check ran.
    checked_at: float | None = None
    #: Falls in a row, each within ``settle`` of being fresh again (doubles the rise).
    flaps: int = 0
    #: When the verdict last became fresh.
    fresh_since: float | None = None
    #: True once the agent has a verdict of its own: it has risen, or seen the heartbeat
    #: not advance for longer than ``stale_after``. Until then it is *judging*.
    judged: bool = False
    #: True when the last advance was told by a keyspace notification, not read: the next
    #: value read is taken as the one that arrived then, not as a later advance.
    notified: bool = False
    #: When the heartbeat's current run of advances began (its first advance after standing
    #: still for longer than ``stale_after``), and how long it had stood still then.
    run_since: float | None = None
    last_gap: float = 0.0

    def age(self, now: float) -> float | None:
        """Seconds since the heartbeat last advanced; before it has been seen to, how long
        it has been watched without a change (a lower bound); None before any heartbeat."""
        since = self.changed_at if self.changed_at is not None else self.first_seen
        return None if since is None else max(0.0, now - since)

    @property
    def judging(self) -> bool:
        """True while this agent has no verdict of its own yet (see ``judged``). A
        restarted agent whose Redis kept replicating is judging, not stale: leaves keep
        it as their parent until it has risen, or its heartbeat is seen not advancing."""
        return not self.fresh and not self.judged

    def rise_needed(self, policy: FreshnessPolicy) -> int:
        """Fresh checks in a row needed to turn fresh now."""
        return policy.rise * 2 ** min(max(0, self.flaps - 1), MAX_FLAP_DOUBLINGS)

    def held(self, policy: FreshnessPolicy) -> bool:
        """True unless a fall soon after a rise requires the heartbeat to keep advancing for
        as long as it last stood still (at most ``settle``), and it has not yet."""
        if self.flaps < 2:
            return True
        if self.run_since is None or self.changed_at is None:
            return False
        return self.changed_at - self.run_since >= min(self.last_gap, policy.settle)

    def observe(self, raw: str | None, now: float, policy: FreshnessPolicy) -> Freshness:
        """This record after reading ``raw`` (the heartbeat text, None if unreadable) at
        monotonic ``now``."""
        new = self
        if raw is not None and self.notified:
            new = replace(new, value=raw, notified=False)
        elif raw is not None and raw != self.value:
            if self.value is None and self.first_seen is None:
                new = replace(new, first_seen=now)
            else:
                new = new._advance(now, policy)
            new = replace(new, value=raw)
        return new._checked(now, policy)

    def advanced(self, now: float, policy: FreshnessPolicy) -> Freshness:
        """This record after Redis told, at monotonic ``now``, that the heartbeat was
        written (a keyspace notification: the value is not read)."""
        if self.value is None and self.first_seen is None:
            new = replace(self, first_seen=now, notified=True)
        else:
            new = replace(self._advance(now, policy), notified=True)
        return new._checked(now, policy)

    def _advance(self, now: float, policy: FreshnessPolicy) -> Freshness:
        """This record with the heartbeat seen advancing at ``now``."""
        last = self.changed_at if self.changed_at is not None else self.first_seen
        if self.run_since is None or last is None or now - last > policy.stale_after:
            gap = 0.0 if last is None else now - last
            return replace(self, changed_at=now, run_since=now, last_gap=gap)
        return replace(self, changed_at=now)

    def _checked(self, now: float, policy: FreshnessPolicy) -> Freshness:
        """Checked, unless the last check was less than a heartbeat interval ago."""
        if self.checked_at is not None and now - self.checked_at < policy.heartbeat_interval:
            return self
        return self._check(now, policy)

    def _check(self, now: float, policy: FreshnessPolicy) -> Freshness:
        age = self.age(now)
        looks_fresh = self.changed_at is not None and age is not None
        looks_fresh = looks_fresh and age <= policy.stale_after
        new = replace(self, checked_at=now)
        if not new.judged and age is not None and age > policy.stale_after:
            new = replace(new, judged=True)
        if looks_fresh == self.fresh:
            return replace(new, streak=0)
        streak = self.streak + 1
        if self.fresh and streak >= policy.fall:
            recent = self.fresh_since is not None and now - self.fresh_since < policy.settle
            return replace(new, fresh=False, streak=0, flaps=self.flaps + 1 if recent else 1)
        if not self.fresh and streak >= self.rise_needed(policy) and self.held(policy):
            return replace(new, fresh=True, streak=0, fresh_since=now, judged=True)
        return replace(new, streak=streak)

    def forgotten(self) -> Freshness:
        """A stale verdict with no heartbeat seen, for an agent that stops holding the root:
        the heartbeat it saw advance was its own, which says nothing of its link to the new
        root. It turns fresh only on heartbeats that reach it as a replica (``rise``
        checks), so leaves and the election do not take a cut-off former root (whose Redis
        may hold writes no branch received) for a fresh branch meanwhile."""
        return Freshness(judged=True)

    def describe(self, now: float) -> str:
        """``heartbeat advanced 0.4s ago`` (or why there is no such figure)."""
        age = self.age(now)
        if age is None:
            return "no heartbeat read yet"
        if self.changed_at is None:
            return f"heartbeat not seen advancing in {age:.1f}s"
        return f"heartbeat advanced {age:.1f}s ago"


class Since:
    """When a value (a Redis's master, its offset) last changed, on the monotonic clock."""

    def __init__(self) -> None:
        self._value: object = None
        self._since: float | None = None

    def update(self, value: object, now: float) -> float:
        """Note ``value`` at ``now``; return since when it has held."""
        if self._since is None or value != self._value:
            self._value, self._since = value, now
        return self._since


#: The thresholds an agent uses unless told otherwise.
DEFAULT_POLICY = FreshnessPolicy()
#: A freshness record that says fresh (for snapshots built without one).
ASSUMED_FRESH = Freshness(fresh=True)
