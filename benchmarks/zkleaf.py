"""A simulated leaf agent for ``zk_sessions.py``: the leaf's ZooKeeper traffic on asyncio.

An asynchronous copy of what a leaf agent does, kept to the agent's code:

* its store: ``zkstore.AsyncStore``, the requests of ``prodstate.zk.store.ZkStore`` and of
  its ``prodstate.zk.members.Members``;
* its loop (``prodstate.agent.loop.AgentLoop``): a tick every ``tick`` s, a full re-read every
  ``refresh_interval`` s, a watch or a state change waking the loop and scheduling a read
  after the agent's random reaction delay (``reaction_delay``), a failed read retried on the
  next tick, a ZooKeeper action followed by a read at once, the branches it avoids;
* its decision: the real ``prodstate.core.decide.decide`` on a snapshot whose Redis part is
  simulated (``DataPath``): an empty master until its first ``Replicate``, a replica without
  the tree's data for ``sync_delay`` s (a full sync), then one holding it; the root's
  heartbeat reaches it while the root serves and its parent lives, and its ``Freshness``
  (the real record, observed at each tick) judges it as the agent does. So a leaf
  registers as a real one does: empty, then available, then fresh; stale when its parent
  or the root dies, again when it stays off a parent whose link went stale.

Ticks that would change nothing are skipped: the loop sleeps until the next tick (on its own
grid of ``tick`` s) at which something is due, so 10,000 idle leaves cost no CPU; a leaf
whose copy may change its verdict ticks at each freshness check.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from dataclasses import dataclass, field, replace

from kazoo.exceptions import ConnectionLoss, KazooException
from kazoo.protocol.serialization import Watch
from kazoo.security import ACL
from zkstore import AsyncStore, Unavailable
from zkwire import CONNECTED, LOST, Session

from prodstate import __version__
from prodstate.core.actions import Register, Replicate
from prodstate.core.decide import decide
from prodstate.core.follow import follow_target, rejoin_marks
from prodstate.core.freshness import DEFAULT_POLICY, Freshness
from prodstate.core.model import RedisState, RejoinMarks, Snapshot, Tier, ZkState
from prodstate.core.rendezvous import full_read_delay, reaction_delay
from prodstate.zk.store import View

WATCH_NONE = -1  # kazoo's EventType.NONE: watches dropped with the connection
WATCH_DELETED = 2  # ZooKeeper's NodeDeleted
POLICY = DEFAULT_POLICY
COLD_START_WAIT = 30.0  # the agent's default --cold-start-wait


@dataclass(frozen=True)
class LeafConfig:
    """What every simulated leaf of a worker shares (the agent's options)."""

    hosts: tuple[tuple[str, int], ...]
    cluster: str
    session_timeout: float = 10.0
    tick: float = 0.2
    jitter: float = 0.5
    refresh_interval: float = 60.0
    #: Seconds from a leaf's first ``Replicate`` until it holds the tree's data (a full
    #: sync waits ``repl-diskless-sync-delay``, 5 s, for company).
    sync_delay: float = 5.0
    #: ``(user, password)`` of the agents' ZooKeeper identity, or None (an open cluster).
    auth: tuple[str, str] | None = None
    acl: tuple[ACL, ...] | None = None

    @property
    def request_timeout(self) -> float:
        """The store's bound on one request."""
        return max(0.5, self.session_timeout / 3)


@dataclass
class DataPath:
    """Whether the root's heartbeat reaches a leaf, as the benchmark tells the workers: the
    Redis addresses that died and since when, and since when the root writes no heartbeat."""

    dead: dict[str, float] = field(default_factory=dict)
    source_down: float | None = None

    def cut_since(self, parent: str) -> float | None:
        """Since when no heartbeat reaches a replica of ``parent`` (None: it flows)."""
        cuts = [t for t in (self.dead.get(parent), self.source_down) if t is not None]
        return min(cuts) if cuts else None

    def heartbeat(self, parent: str, now: float) -> str:
        """The heartbeat a replica of ``parent`` holds at ``now``: the root writes one
        every heartbeat interval, and the last before a cut stays."""
        cut = self.cut_since(parent)
        at = now if cut is None else min(now, cut)
        return str(math.floor(at / POLICY.heartbeat_interval))


def next_tick(anchor: float, due: float, tick: float) -> float:
    """The first tick of a loop that last ticked at ``anchor`` (one every ``tick`` s) at or
    after ``due``; never ``anchor`` itself."""
    steps = max(1, math.ceil((due - anchor) / tick - 1e-9))
    return anchor + steps * tick


class SimLeaf:
    """One leaf: its session and store, its loop's timing, its simulated Redis."""

    def __init__(self, node_id: str, config: LeafConfig, rng: random.Random, path: DataPath):
        self.node_id = node_id
        self.address = f"{node_id}.sim:6379"
        self.config = config
        self.rng = rng
        self.path = path
        self.session = Session(
            list(config.hosts),
            config.session_timeout,
            on_state=self._on_state,
            on_watch=self._on_watch,
            auth=("digest", f"{config.auth[0]}:{config.auth[1]}") if config.auth else None,
            rng=rng,
        )
        acl = list(config.acl) if config.acl else None
        self.store = AsyncStore(
            self.session, config.cluster, node_id, config.request_timeout, acl, self.wake
        )
        self.view: View | None = None
        # The simulated Redis: its master, since when, and when its first full sync ends.
        self.master = ""
        self.master_since: float | None = None
        self.synced_at: float | None = None
        self.freshness = Freshness()
        self.avoiding: dict[str, float] = {}
        self.rejoin = RejoinMarks()
        # The loop.
        self.refresh_at: float | None = 0.0
        self.next_full_read: float | None = None  # None: at the next read
        self.anchor = 0.0
        self.again = False
        self.decided: tuple[object, ...] = ()
        self.decide_again = False
        self.stopped = False
        self._wakeup: asyncio.Future[None] | None = None
        #: (time, parent address, root node id, branch ids read) after every decision.
        self.decisions: list[tuple[float, str, str, tuple[str, ...]]] = []
        self.connected_at: float | None = None
        self.reconnected_at: float | None = None  # the last time it connected
        self.registered_at: float | None = None
        self.chose_at: float | None = None
        self.fresh_at: float | None = None  # when it first registered fresh
        self.failures = 0

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """The agent loop until ``stop``."""
        self.session.start()
        loop = asyncio.get_running_loop()
        while not self.stopped:
            self.anchor = time.monotonic()
            await self._tick(self.anchor)
            if self.again:
                self.again = False
                continue
            due = self._next_due()
            self._wakeup = loop.create_future()
            timer = None
            if due is not None:
                timer = loop.call_at(next_tick(self.anchor, due, self.config.tick), self._wake_loop)
            await self._wakeup
            if timer is not None:
                timer.cancel()

    def _wake_loop(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _next_due(self) -> float | None:
        """When a tick could next change something (None: only a wake-up can tell)."""
        dues = list(self.avoiding.values())
        if self.rejoin.after_none_fresh and self.rejoin.fresh_since is not None:
            dues.append(self.rejoin.fresh_since + POLICY.rejoin_grace + 0.01)
        if self.decide_again:
            dues.append(self.anchor)
        if self.synced_at is not None and self.synced_at > self.anchor:
            dues.append(self.synced_at)
        if self.judging_copy():
            checked = self.freshness.checked_at or self.anchor
            dues.append(checked + POLICY.heartbeat_interval)
            since = self.freshness.changed_at or self.freshness.first_seen
            if since is not None and self.master_since is not None:
                dues.append(max(since, self.master_since) + POLICY.leaf_stale_after + 0.01)
        if self.session.connected:
            if self.refresh_at is not None:
                dues.append(self.refresh_at)
            dues.append(0.0 if self.next_full_read is None else self.next_full_read)
        return min(dues, default=None)

    def judging_copy(self) -> bool:
        """Whether the copy's verdict may change: it holds a heartbeat, and is not fresh or
        no longer receives it."""
        if self.redis_heartbeat(self.anchor) is None:
            return False
        return not self.freshness.fresh or self.path.cut_since(self.master) is not None

    def wake(self) -> None:
        """A watch fired or the session changed state (``AgentLoop.wake``)."""
        if self.refresh_at is None:
            self.refresh_at = time.monotonic() + reaction_delay(self.config.jitter, self.rng)
        self._wake_loop()

    def data_path_changed(self, at: float) -> None:
        """The benchmark cut or healed the heartbeat's path at ``at``: a copy that was fresh
        with nothing to judge last saw the heartbeat change then."""
        hb = self.redis_heartbeat(at)
        if hb is not None and self.freshness.fresh and self.freshness.value != hb:
            self.freshness = replace(self.freshness, value=hb, changed_at=at, checked_at=at)
        self._wake_loop()

    def _on_state(self, state: str) -> None:
        self.store.cache.clear()
        if state == CONNECTED:
            self.reconnected_at = time.monotonic()
            self.connected_at = self.connected_at or self.reconnected_at
        if state == LOST:
            self.store.new_session = True
        self.wake()

    def _on_watch(self, event: Watch) -> None:
        if event.type == WATCH_DELETED:
            self.store.cache.deleted(event.path)
        else:
            self.store.cache.invalidate(None if event.type == WATCH_NONE else event.path)
        self.wake()

    async def _tick(self, now: float) -> None:
        """``AgentLoop.tick`` for a leaf: observe the copy, refresh the view when due,
        decide, act. A decision whose inputs did not change since the last is not made
        again (it would repeat itself)."""
        self.freshness = self.freshness.observe(self.redis_heartbeat(now), now, POLICY)
        self.avoiding = {b: until for b, until in self.avoiding.items() if until > now}
        read = await self._refresh_view(now)
        if self.view is None:
            return
        snapshot = self._snapshot(now)
        self.rejoin = rejoin_marks(self.rejoin, snapshot)
        snapshot = replace(snapshot, rejoin=self.rejoin)
        inputs = self._inputs(snapshot)
        if not (read or self.decide_again or inputs != self.decided):
            return
        self.decide_again, self.decided = False, inputs
        action = decide(snapshot).action
        if isinstance(action, Register):
            try:
                await self.store.register(replace(action.member, version=__version__))
            except (Unavailable, KazooException):
                self.failures += 1
                self.decide_again = True  # the next tick decides again
                return
            at = time.monotonic()
            self.registered_at = self.registered_at or at
            if action.member.fresh:
                self.fresh_at = self.fresh_at or at
            self.refresh_at, self.again = 0.0, True
            return
        if isinstance(action, Replicate):
            self.replicate(action.address, now)
            if action.avoid:
                self.avoiding[action.avoid] = now + POLICY.avoid_for
        at = time.monotonic()
        if self.master and self.chose_at is None:
            self.chose_at = at
        root = self.view.root.node_id if self.view.root else ""
        self.decisions.append((at, self.master, root, tuple(m.node_id for m in self.view.branches)))

    def _inputs(self, s: Snapshot) -> tuple[object, ...]:
        """What, besides the view, the leaf's decision depends on."""
        stale_for = s.freshness.age(s.now) or 0.0
        if s.master_since is not None:
            stale_for = min(stale_for, s.now - s.master_since)
        blame = stale_for > POLICY.leaf_stale_after
        target = follow_target(s)[0] if s.root is not None else None
        return (s.freshness.fresh, s.freshness.judging, s.redis, blame, s.avoiding, target)

    async def _refresh_view(self, now: float) -> bool:
        """``AgentLoop._refresh_view``: whether a read was made."""
        due = self.refresh_at is not None and now >= self.refresh_at
        first = self.next_full_read is None
        full = self.next_full_read is None or now >= self.next_full_read
        if not (due or full) or not self.session.connected:
            return False
        self.refresh_at = None
        self.session.counts.tag = "full" if full else "read"
        try:
            self.view = await self.store.read_view(full)
            if full:
                self.next_full_read = now + full_read_delay(
                    self.config.refresh_interval, first, self.rng
                )
        except Unavailable:
            self.failures += 1
            if self.refresh_at is None:
                self.refresh_at = now
            return False
        except KazooException:
            self.failures += 1
            self.store.new_session = True  # recheck_paths
            if self.refresh_at is None:
                self.refresh_at = now + self.config.tick
            return False
        return True

    # --- the simulated Redis ------------------------------------------------------------------

    def replicate(self, address: str, now: float) -> None:
        """REPLICAOF: a full sync the first time, a partial resync after."""
        if self.synced_at is None:
            self.synced_at = now + self.config.sync_delay
        self.master, self.master_since = address, now

    def synced(self, now: float) -> bool:
        return self.synced_at is not None and now >= self.synced_at

    def redis_heartbeat(self, now: float) -> str | None:
        """The heartbeat key in the simulated Redis (None before its first full sync)."""
        return self.path.heartbeat(self.master, now) if self.synced(now) else None

    def _snapshot(self, now: float) -> Snapshot:
        view = self.view
        assert view is not None
        if self.synced(now):
            tree = view.lineage.replids[0] if view.lineage.replids else ""
            redis = RedisState(reachable=True, role="slave", replid=tree, offset=1,
                               master=self.master, link_up=True)  # fmt: skip
        else:  # empty: a master of its own, or a replica whose first sync is under way
            redis = RedisState(reachable=True, role="slave" if self.master else "master",
                               replid="0" * 40, master=self.master)  # fmt: skip
        return Snapshot(
            node_id=self.node_id,
            tier=Tier.LEAF,
            address=self.address,
            now=now,
            zk_state=ZkState.CONNECTED if self.session.connected else ZkState.SUSPENDED,
            suspended_since=None,
            session_timeout=self.config.session_timeout,
            session_id=self.store.session_id,
            redis=redis,
            branches=view.branches,
            candidates=(),
            in_election=False,
            root=view.root,
            root_confirmed_at=None,
            lineage=view.lineage,
            registered=view.registered,
            cold_start_wait=COLD_START_WAIT,
            freshness=self.freshness,
            master_since=self.master_since,
            avoiding=frozenset(self.avoiding),
            view_outdated=self.refresh_at is not None,
            pause=view.pause,
            switchover=view.switchover,
            drains=view.drains,
        )

    async def stop(self) -> None:
        """Stop the loop and close the session."""
        self.stopped = True
        self._wake_loop()
        with contextlib.suppress(ConnectionLoss):
            await self.session.close()
