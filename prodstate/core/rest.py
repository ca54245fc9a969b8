"""When an agent may rest, and what wakes it (pure).

A healthy replica that follows the parent it should has nothing to decide until
something changes: a watch fires in ZooKeeper, its heartbeat stops advancing, or its
Redis's role or link changes. While it rests, the agent reads only a :class:`Pulse` of
its Redis (the heartbeat and ``ROLE``) once per heartbeat interval (the heartbeat
changes no faster) and decides once every rest interval;
any change in the pulse, or in its freshness verdict, ends the rest at once. The root
never rests: it judges its branches' acknowledgements every tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from prodstate.core.actions import Decision, Wait
from prodstate.core.follow import follow_target, rejoining
from prodstate.core.health import health, role_of
from prodstate.core.model import RedisState, Snapshot


@dataclass(frozen=True)
class Pulse:
    """What a resting agent reads of its Redis at each pulse: the heartbeat's text (None if
    absent) and, from ``ROLE``, the role, the master's address and whether the link to it
    is up."""

    heartbeat: str | None
    role: str
    master: str = ""
    link_up: bool = False

    def matches(self, r: RedisState) -> bool:
        """True if this pulse shows the role, master and link of the full read ``r``."""
        return (self.role, self.master, self.link_up) == (r.role, r.master, r.link_up)


def at_rest(s: Snapshot, decision: Decision) -> bool:
    """True if this node may rest after deciding ``decision`` on ``s``: a healthy replica
    with a settled freshness verdict, following the parent it should, with nothing
    pending (no action, retry, hold-off, avoided branch, drain, switchover or maintenance
    in progress)."""
    if decision.action != Wait() or role_of(s) != "replica" or not health(s)[0]:
        return False
    r = s.redis
    settled = (
        s.freshness.streak == 0
        and s.configured
        and not s.deferred
        and not s.held_off
        and not s.drains
        and not s.avoiding  # it must decide when the avoid ends, to go back
        and not rejoining(s)  # nor when the branches' rejoin grace ends
        and s.switchover is None
        and not r.sync_in_progress
    )
    if not settled or s.root is None or s.holds_root:
        return False
    return r.master == follow_target(s)[0]
