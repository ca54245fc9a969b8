"""May the local Redis be rendered from now? Synced, fresh, holding the tree's history (pure).

consul-template's users saw blank files rendered while Consul held an election. Here the
local copy is refused, and the last good file kept, while Redis is loading its dataset or
taking a full copy from its parent (a replica that has not finished its first sync holds
nothing, or is about to flush what it holds), when it does not hold the tree's history (a
Redis restarted empty and promoted by nobody has no heartbeat and no epoch key), and when
its heartbeat has not advanced for longer than the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceState:
    """What a render needs to know about the local Redis, read just before (and after) it."""

    reachable: bool
    #: Why it could not be read ("" when reachable).
    error: str = ""
    loading: bool = False
    role: str = ""
    sync_in_progress: bool = False
    #: The replication id and offset: a render whose reads straddle a change of either is
    #: retried, so a file is never made of two versions of the data.
    replid: str = ""
    offset: int = 0
    #: True if the Redis holds the tree's history, False if not, None if nobody can tell.
    history_known: bool | None = None
    #: How it was judged (``agent``: the local agent's lineage; ``keys``: the tree's keys).
    history_by: str = ""
    #: Seconds since the heartbeat last advanced (None: no usable heartbeat).
    age: float | None = None
    #: How the age was measured (``agent`` or ``clock``), and why not by the agent.
    age_by: str = ""


def refusal(state: SourceState, max_staleness: float) -> str:
    """Why the data must not be rendered now ("" if it may)."""
    if not state.reachable:
        return (
            f"local Redis unreachable: {state.error}" if state.error else "local Redis unreachable"
        )
    if state.loading:
        return "local Redis is loading its dataset"
    if state.role == "slave" and state.sync_in_progress:
        return "local Redis is taking a full copy from its parent (sync not finished)"
    if state.history_known is False:
        return f"local Redis does not hold the tree's history (judged by {state.history_by})"
    if state.history_known is None:
        return "cannot tell whether the local Redis holds the tree's history"
    if state.age is None:
        return "no usable heartbeat in the local Redis"
    if state.age > max_staleness:
        return (
            f"data is stale: heartbeat advanced {state.age:.1f}s ago ({state.age_by}), "
            f"over --max-staleness {max_staleness:g}s"
        )
    return ""


def same_data(before: SourceState, after: SourceState) -> bool:
    """True if nothing replicated between the two reads (same history, same offset)."""
    return (before.replid, before.offset) == (after.replid, after.offset)


def notifications_missing(
    last_event: float | None, started: float, now: float, heartbeat_age: float | None, within: float
) -> bool:
    """True if no keyspace notification arrived in the last ``within`` seconds (since
    ``started`` if none ever did) although the heartbeat advanced in that time: the local
    Redis does not publish them (``notify-keyspace-events`` lacks ``K`` and ``A``)."""
    if heartbeat_age is None or heartbeat_age >= within:
        return False
    since = last_event if last_event is not None else started
    return now - since > within
