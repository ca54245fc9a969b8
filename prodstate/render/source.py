"""Reading what the gate needs from the local Redis and, if one is named, the local agent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import redis

from prodstate.core import heartbeat
from prodstate.core.heartbeat import EPOCH_KEY, HEARTBEAT_KEY
from prodstate.ops.check import freshness_of, read_agent
from prodstate.render.gate import SourceState


def read_redis(conn: redis.Redis) -> SourceState:
    """INFO replication and persistence of the local Redis, and whether it holds the
    tree's keys; never raises (an unreadable Redis is a state that refuses)."""
    try:
        pipe = conn.pipeline(transaction=False)
        pipe.info("replication")
        pipe.info("persistence")
        pipe.get(HEARTBEAT_KEY)
        pipe.exists(EPOCH_KEY)
        repl, persistence, beat, epoch = pipe.execute()
    except redis.BusyLoadingError:
        return SourceState(reachable=True, loading=True)
    except (redis.RedisError, OSError) as exc:
        return SourceState(reachable=False, error=" ".join(str(exc).split()) or type(exc).__name__)
    try:
        offset = int(repl.get("master_repl_offset", 0))
        syncing = bool(int(repl.get("master_sync_in_progress", 0)))
        loading = bool(int(persistence.get("loading", 0)))
    except (TypeError, ValueError, AttributeError):
        return SourceState(reachable=False, error="INFO reply is malformed")
    has_keys = beat is not None and bool(epoch)
    return SourceState(
        reachable=True,
        loading=loading,
        role=str(repl.get("role", "")),
        sync_in_progress=syncing,
        replid=str(repl.get("master_replid", "")),
        offset=offset,
        history_known=has_keys,
        history_by="keys" if has_keys else f"keys: no {HEARTBEAT_KEY} or {EPOCH_KEY}",
        age=heartbeat.age(beat, time.time()) if isinstance(beat, str) else None,
        age_by="clock comparison",
    )


class Source:
    """The local Redis (and agent) a renderer reads: :meth:`state` for the gate."""

    def __init__(
        self,
        conn: redis.Redis,
        agent: str | None = None,
        read_agent: Callable[[str], tuple[dict | None, str]] = read_agent,
    ) -> None:
        self.conn = conn
        self.agent = agent
        self._read_agent = read_agent

    def state(self) -> SourceState:
        """The Redis's state, with the agent's freshness and lineage verdict when an agent
        is named and answers (else the heartbeat compared with this machine's clock, and the
        tree's keys as the sign of its history)."""
        state = read_redis(self.conn)
        if self.agent is None or not state.reachable or state.loading:
            return state
        data, why = self._read_agent(self.agent)
        if data is None:
            return replace(state, age_by=f"clock comparison: agent at {self.agent} {why}")
        age, why, _ = freshness_of(data)
        if age is not None:
            state = replace(state, age=age, age_by="agent")
        else:
            state = replace(state, age_by=f"clock comparison: agent at {self.agent} {why}")
        known = data.get("history_known")
        if known is False:
            by = "agent: its replication id is not in the tree's lineage"
            state = replace(state, history_known=False, history_by=by)
        return state

    def offset(self) -> SourceState:
        """The Redis alone (no agent): enough to see whether data replicated meanwhile."""
        return read_redis(self.conn)
