"""The agent loop: gather a snapshot, decide, log the reason, act. Nothing else.

Watch events and ZooKeeper state changes only wake the loop early; every
decision is taken by ``prodstate.core.decide.decide`` from a fresh snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import replace

from kazoo.exceptions import KazooException

from prodstate.agent.backoff import Backoff, is_denied
from prodstate.agent.beat import HeartbeatWriter
from prodstate.agent.config import AgentConfig
from prodstate.agent.execute import Executor
from prodstate.agent.handover import HANDOVER_TIMEOUT_SESSIONS, NotYet, handover_request
from prodstate.agent.metrics import AgentMetrics, RedisStats, read_stats
from prodstate.agent.notify import ServiceNotifier
from prodstate.agent.resting import RestingWait
from prodstate.agent.waker import Waker
from prodstate.core.actions import (
    QUIET,
    AdoptPrevious,
    Claim,
    Decision,
    Fence,
    FenceRemote,
    HandOver,
    Heartbeat,
    JoinElection,
    LeaveElection,
    Probe,
    Promote,
    PublishReplid,
    Register,
    RepairEpoch,
    RepairRoot,
    Serve,
    StepDown,
)
from prodstate.core.decide import decide, unacked_since
from prodstate.core.follow import no_branch_since, rejoin_marks
from prodstate.core.freshness import Freshness, Since
from prodstate.core.maintenance import Switchover
from prodstate.core.model import (
    Lineage,
    PeerState,
    RedisState,
    RejoinMarks,
    Snapshot,
    Tier,
    ZkState,
)
from prodstate.core.rendezvous import full_read_delay, reaction_delay
from prodstate.core.rest import at_rest
from prodstate.redis.control import RedisControl
from prodstate.redis.link import RedisError
from prodstate.redis.users import leaf_replication_user
from prodstate.security.tls import ServerChecks
from prodstate.zk.client import ZK_ERRORS
from prodstate.zk.errors import StoreUnavailable, UntrustedZnodes
from prodstate.zk.maintenance import clear_switchover
from prodstate.zk.session import SavedSession, SessionFile
from prodstate.zk.store import View, ZkStore

log = logging.getLogger("prodstate.agent.loop")


#: Seconds before an action refused for lack of rights is tried again: doubling up to the max.
REFUSED_FIRST_RETRY = 1.0
REFUSED_MAX_RETRY = 30.0


class Agent:
    """One agent beside one Redis."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._wake = Waker()
        self._stop = threading.Event()
        #: The TLS check of every address a Redis is made to replicate from (one per move).
        self.servers = ServerChecks(config.tls)
        self.redis = RedisControl(config.redis, servers=self.servers, **config.redis_options())
        #: This node's saved session and its lock (None without a state directory).
        self.session_file: SessionFile | None = None
        saved = None
        if config.state_dir:
            self.session_file = SessionFile(config.state_dir, config.cluster, config.node_id)
            saved = self.session_file.open()  # SessionFileError: the agent must not run
        self.zk = ZkStore(
            config.zk,
            config.cluster,
            config.session_timeout,
            self.wake,
            credentials=config.credentials,
            tls=config.zk_tls,
            resume=saved,
            on_session=self._save_session,
        )
        self.view: View | None = None
        self.execute = Executor(config, self.redis, self.zk, self.servers)
        self._refresh_at: float | None = 0.0
        self._next_full_read: float | None = None  # None: at the next read
        #: The last decision logged, and the last probe (so one each tick logs once).
        self._last_logged: dict[bool, tuple[str, str]] = {}
        self._configured_run_id = ""
        self.last_decision: Decision | None = None
        self.last_snapshot: Snapshot | None = None
        self.metrics = AgentMetrics(config.node_id, config.cluster, str(config.tier))
        self.resting_wait = RestingWait(config, self.redis, self._wake, self.metrics)
        self._stats: RedisStats | None = None
        self._stats_read_at = -float("inf")
        self._no_branch_since: float | None = None
        self._rejoin = RejoinMarks()
        self._refused = Backoff(first=REFUSED_FIRST_RETRY, cap=REFUSED_MAX_RETRY)
        self._untrusted_logged = ""
        self.freshness = Freshness()
        #: When this root last read its own root znode (None: not a root, or it failed).
        self._root_confirmed_at: float | None = None
        self._resting = False
        self._master_since = Since()
        self._offset_since = Since()
        self._unacked_since: float | None = None
        #: Whether the last snapshot found this agent holding the root.
        self._held_root = False
        #: Branches this leaf stays off, until when (monotonic).
        self._avoiding: dict[str, float] = {}
        self._held_off_until: float | None = None
        self._last_at_once: object = None
        #: The switchover this agent asked for while stopping as root, and its deadline.
        self._handover: Switchover | None = None
        self._handover_until = 0.0
        self._handover_wait = ""
        self.beat = HeartbeatWriter(
            RedisControl(config.redis, **config.redis_options()),
            config.freshness.heartbeat_interval,
            written=self.metrics.heartbeat_written,
        )
        #: Readiness and stopping, told to systemd when it runs the agent (Type=notify).
        self.service = ServiceNotifier()

    # --- lifecycle ---------------------------------------------------------------------------

    def preflight(self, timeout: float) -> str:
        """Connect and check the cluster's znodes before the loop runs: why the agent must
        not run ("" if it may; ZooKeeper out of reach is no reason, the loop waits for it)."""
        self.zk.start()
        deadline = time.monotonic() + timeout
        while self.zk.state is not ZkState.CONNECTED and time.monotonic() < deadline:
            self._wake.wait(0.1)  # the state listener sets it
            self._wake.clear()
        try:
            self.zk.connected_session()
        except UntrustedZnodes as exc:
            return str(exc)
        except (StoreUnavailable, KazooException):
            pass
        return ""

    def run(self) -> None:
        """Run until stop() is called (and a serving root has handed over)."""
        log.info("agent starting", extra=self._identity())
        self.zk.start()
        self.beat.start()
        try:
            while True:
                self.tick()
                self.service.observe(self.last_snapshot)
                if self._stop.is_set() and self._may_exit():
                    break
                self._until_next_decision()
        finally:
            self.shutdown(close_session=False)

    def _until_next_decision(self) -> None:
        """Wait a tick, or, at rest (:mod:`prodstate.core.rest`), up to the rest interval
        while the heartbeat shows nothing changed (:mod:`prodstate.agent.resting`); a
        wake-up ends either at once."""
        s, decision = self.last_snapshot, self.last_decision
        resting = (
            self.config.rest_interval > 0
            and s is not None
            and decision is not None
            and self._refresh_at is None
            and not self._stop.is_set()
            and at_rest(s, decision)
        )
        if resting != self._resting:
            log.debug(
                "resting: following the heartbeat until the next decision"
                if resting
                else "deciding every tick",
                extra=self._identity(),
            )
            self._resting = resting
        if resting:
            assert s is not None
            until = time.monotonic() + self.config.rest_interval
            self.freshness = self.resting_wait.wait(s, self.freshness, until)
        else:
            self.resting_wait.close()
            self._wake.wait(self.config.tick)
        self._wake.clear()

    def stop(self) -> None:
        """Ask the loop to end (SIGTERM): a serving root first hands the root to the best
        branch, as a switchover; then the agent exits, keeping its session for a restart."""
        self.service.stop()
        self._stop.set()
        self._wake.set()

    def _may_exit(self) -> bool:
        """Whether a stopping agent may exit now: it does not serve as root, or it has
        handed over and the target has claimed, or the hand-over could not be made in
        time (logged)."""
        s = self.last_snapshot
        now = time.monotonic()
        cfg = self.config
        if not self._handover_until:
            self._handover_until = now + HANDOVER_TIMEOUT_SESSIONS * cfg.session_timeout
        serving = s is not None and s.holds_root and s.redis.is_master
        if not serving and self._handover is not None:
            # The request leads the election to its target: it stays until the claim.
            claimed = s is not None and s.root is not None and s.root.node_id != cfg.node_id
            if not claimed and now <= self._handover_until:
                return False
            with contextlib.suppress(*ZK_ERRORS):
                clear_switchover(self.zk.client, cfg.cluster, self._handover.id)
            return True
        if not serving:
            return True
        if self._handover is None and now <= self._handover_until:
            try:
                self._handover = handover_request(
                    self.zk.client, cfg.cluster, s, self.execute.peer_state, cfg.session_timeout
                )
            except NotYet as exc:
                if str(exc) != self._handover_wait:
                    log.info(
                        f"stopping: {exc} before handing the root over", extra=self._identity()
                    )
                    self._handover_wait = str(exc)
                return False
            if self._handover is None:
                return True
        if now > self._handover_until:
            log.warning(
                "stopping: the hand-over did not complete in time; exiting as root (the "
                "tree fails over once this session expires)",
                extra={
                    **self._identity(),
                    "target": self._handover.target if self._handover else "",
                },
            )
            return True
        return False

    def shutdown(self, close_session: bool = True) -> None:
        """Stop the agent; Redis keeps running. With ``close_session`` the ZooKeeper
        session ends (its ephemeral znodes go at once) and the saved one is forgotten;
        without, the session lives on for the session timeout, for a restart to resume."""
        keeping = not close_session and self.session_file is not None
        log.info(
            "agent stopping: Redis keeps serving as it is"
            + (
                f"; the session waits {self.config.session_timeout:g}s for a restart"
                if keeping
                else ""
            ),
            extra=self._identity(),
        )
        self.beat.stop()
        if not keeping:
            self.zk.stop()
        if self.session_file is not None:
            if not keeping:
                self.session_file.forget()
            self.session_file.close()
        self.redis.close()
        self.resting_wait.close()
        self.metrics.close()

    def _save_session(self, session: SavedSession) -> None:
        """Keep a new ZooKeeper session for a restart of this agent (logged)."""
        extra = {**self._identity(), "session": hex(session.session_id)}
        resumed = self.zk.resumed_session
        if resumed and session.session_id == resumed:
            log.info("resumed the previous process's ZooKeeper session", extra=extra)
        elif resumed:
            log.info(
                "the previous process's ZooKeeper session had expired: started a new one",
                extra={**extra, "previous": hex(resumed)},
            )
        if self.session_file is None:
            return
        try:
            self.session_file.save(session)
        except OSError as exc:
            log.warning(
                "cannot save the ZooKeeper session: a restart will start a new one",
                extra={**extra, "error": exc.strerror},
            )

    def serve_metrics(self) -> int | None:
        """Serve /metrics and /healthz if a port is configured; the bound port. OSError if not."""
        if self.config.metrics_port is None:
            return None
        self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
        return self.metrics.port

    def wake(self) -> None:
        """A watch fired: re-read ZooKeeper (leaves after a random delay)."""
        if self._refresh_at is None:
            jitter = self.config.jitter if self.config.tier is Tier.LEAF else 0.0
            self._refresh_at = time.monotonic() + reaction_delay(jitter)
        self._wake.set()

    # --- one tick ------------------------------------------------------------------------------

    def tick(self) -> Decision:
        """Gather, decide, log, act; return the decision.

        A decision that needs other nodes' Redis asks for them (``Probe``): the loop reads
        them into the snapshot and decides again, so each decision sees them fresh.
        """
        snapshot = self.snapshot()
        started = time.monotonic()
        decision = decide(snapshot)
        if isinstance(decision.action, Probe):
            self._log(decision, snapshot)
            snapshot = self._probe(decision.action, snapshot)
            decision = decide(snapshot)
        self._log(decision, snapshot)
        self.last_snapshot, self.last_decision = snapshot, decision
        acted = False
        # The heartbeat thread writes while, and only while, the root serves.
        self.beat.serve(isinstance(decision.action, Heartbeat))
        if time.monotonic() - snapshot.now > max(1.0, self.config.session_timeout / 3):
            log.warning("snapshot went stale before acting: skipping", extra=self._identity())
        else:
            acted = self._act(decision, snapshot)
        self._observe(snapshot, decision, time.monotonic() - started, acted)
        return decision

    def _observe(self, s: Snapshot, decision: Decision, seconds: float, acted: bool) -> None:
        """Update the metrics; Redis's sync counters are read once a second."""
        if s.now - self._stats_read_at >= self.config.metrics_interval:
            self._stats_read_at = s.now
            self._stats = read_stats(self.redis.link) if s.redis.reachable else None
        self.metrics.observe(s, decision, seconds, self._stats, acted=acted)

    def snapshot(self) -> Snapshot:
        """Read the local Redis and (when due) ZooKeeper into an immutable Snapshot."""
        redis_state = self.redis.state()
        now = time.monotonic()  # after the read: a hung Redis takes its whole timeout
        policy = self.config.freshness
        self.freshness = self.freshness.observe(redis_state.heartbeat, now, policy)
        master_since = self._master_since.update(redis_state.master, now)
        offset_since = self._offset_since.update(redis_state.offset, now)
        self._avoiding = {b: until for b, until in self._avoiding.items() if until > now}
        if self._held_off_until is not None and (
            now >= self._held_off_until or (self.freshness.fresh and redis_state.role == "slave")
        ):
            self._held_off_until = None
        self._refresh_view(now)
        view = self.view
        zk_state = self.zk.state
        root = view.root if view else None
        confirmed_at = None
        if (
            view is not None
            and root is not None
            and root.held_by(self.config.node_id, self.zk.session_id)
            and zk_state is ZkState.CONNECTED
        ):
            last = self._root_confirmed_at
            if last is None or now - last >= self.config.confirm_interval:
                try:
                    root, damage = self.zk.confirm_root()
                    self._root_confirmed_at = now
                    self.view = view = replace(view, root=root, root_damage=damage)
                except StoreUnavailable:
                    self._root_confirmed_at = None
            confirmed_at = self._root_confirmed_at
        else:
            self._root_confirmed_at = None
        snapshot = Snapshot(
            node_id=self.config.node_id,
            tier=self.config.tier,
            address=self.config.advertise,
            now=now,
            zk_state=zk_state,
            suspended_since=self.zk.suspended_since,
            session_timeout=self.config.session_timeout,
            session_id=self.zk.session_id,
            redis=redis_state,
            branches=view.branches if view else (),
            candidates=view.candidates if view else (),
            in_election=self.zk.in_election,
            root=root,
            root_confirmed_at=confirmed_at,
            lineage=view.lineage if view else Lineage(),
            registered=view.registered if view else None,
            lineage_readable=view.lineage_readable if view else True,
            cold_start_wait=self.config.cold_start_wait,
            configured=redis_state.run_id == self._configured_run_id,
            deferred=self._refused.waiting(now),
            probed=False,
            root_damage=view.root_damage if view else "",
            lineage_damage=view.lineage_damage if view else "",
            zk_untrusted=self.zk.untrusted,
            policy=policy,
            freshness=self.freshness,
            master_since=master_since if redis_state.reachable else None,
            offset_since=offset_since if redis_state.reachable else None,
            avoiding=frozenset(self._avoiding),
            view_outdated=self._refresh_at is not None,
            held_off=self._held_off_until is not None,
            untrusted_masters=self.servers.refused(now),
            leaf_replicas_allowed=self._leaf_replicas_allowed(redis_state),
            pause=view.pause if view else None,
            wall_clock=time.time(),
            switchover=view.switchover if view else None,
            drains=view.drains if view else (),
        )
        if self._held_root and not snapshot.holds_root:
            log.info(
                "no longer the root: the heartbeat it saw was its own, so its copy counts as "
                "stale until the new root's heartbeat reaches it",
                extra=self._identity(),
            )
            self.freshness = self.freshness.forgotten()
        self._held_root = snapshot.holds_root
        self._no_branch_since = no_branch_since(self._no_branch_since, snapshot)
        self._unacked_since = unacked_since(self._unacked_since, snapshot)
        self._rejoin = rejoin_marks(self._rejoin, snapshot)
        return replace(
            snapshot,
            freshness=self.freshness,
            no_branch_since=self._no_branch_since,
            unacked_since=self._unacked_since,
            rejoin=self._rejoin,
        )

    def _leaf_replicas_allowed(self, state: RedisState) -> bool | None:
        """Whether the leaf replication user is on in the local Redis (None without a
        separate branch identity, or when it cannot be read)."""
        user = leaf_replication_user(self.config.credentials)
        if user is None or not state.reachable or state.loading:
            return None
        return self.redis.user_enabled(user.user)

    def _refresh_view(self, now: float) -> None:
        due = self._refresh_at is not None and now >= self._refresh_at
        first = self._next_full_read is None
        full = self._next_full_read is None or now >= self._next_full_read
        if not (due or full) or self.zk.state is not ZkState.CONNECTED:
            return
        # Cleared before reading: a watch that fires during the read schedules another one.
        self._refresh_at = None
        try:
            # Between full re-reads only what a watch or this agent's writes changed is read.
            self.view = self.zk.read_view(self.config.node_id, self.config.tier, full=full)
            if full:
                self._next_full_read = now + full_read_delay(self.config.full_read_interval, first)
        except UntrustedZnodes as exc:
            if str(exc) != self._untrusted_logged:
                log.error(
                    "refusing to act on this cluster's znodes: their ACLs are not the agents'",
                    extra={**self._identity(), "error": str(exc)},
                )
                self._untrusted_logged = str(exc)
            if self._refresh_at is None:
                self._refresh_at = now + self.config.session_timeout
        except StoreUnavailable as exc:
            log.debug("could not read ZooKeeper", extra={"error": str(exc)})
            if self._refresh_at is None:
                self._refresh_at = now
        except KazooException as exc:  # e.g. a prodstate znode deleted by hand: not fatal
            log.warning(
                "could not read ZooKeeper; re-creating missing znodes and retrying",
                extra={"error": repr(exc)},
            )
            self.zk.recheck_paths()
            if self._refresh_at is None:
                self._refresh_at = now + self.config.tick

    def _probe(self, probe: Probe, s: Snapshot) -> Snapshot:
        """The snapshot with the Redis states ``probe`` asked for (unreachable ones as such)."""
        peers = tuple(
            PeerState(node_id, address, self.execute.peer_state(address))
            for node_id, address in probe.candidates
        )
        previous = None
        if probe.previous_root is not None:
            node_id, address = probe.previous_root
            previous = PeerState(node_id, address, self.execute.peer_state(address))
        new_parent = None
        if probe.new_parent is not None:
            new_parent = PeerState("", probe.new_parent, self.execute.peer_state(probe.new_parent))
        return replace(s, probed=True, peers=peers, previous_root=previous, new_parent=new_parent)

    # --- acting ---------------------------------------------------------------------------------

    def _act(self, decision: Decision, s: Snapshot) -> bool:
        """Carry out the action; False if it failed (the next tick decides again)."""
        action = decision.action
        if self._refused.remaining(action.name, s.now) > 0:
            return False  # refused for lack of rights before: backing off
        try:
            effects = self.execute.run(action, s, self.view)
        except (StoreUnavailable, KazooException, RedisError, OSError) as exc:
            if is_denied(exc):
                retry_in = self._refused.refused(action.name, s.now)
                log.warning(
                    "action refused for lack of rights: check the agent's credentials and "
                    "the ACLs; retrying later",
                    extra={
                        **self._identity(),
                        "action": action.name,
                        "error": repr(exc),
                        "retry_in": retry_in,
                    },
                )
                return False
            log.warning(
                "action failed; the next tick decides again",
                extra={**self._identity(), "action": action.name, "error": repr(exc)},
            )
            return False
        self._refused.succeeded(action.name)
        if effects.avoid is not None:
            branch, until = effects.avoid
            self._avoiding[branch] = until
        if effects.held_off_until is not None:
            self._held_off_until = effects.held_off_until
        if effects.configured_run_id is not None:
            self._configured_run_id = effects.configured_run_id
        if isinstance(action, _ZK_ACTIONS):
            self._refresh_at = 0.0  # read back what this action changed on the next tick
            self._wake.set()
        elif isinstance(action, _NEXT_AT_ONCE) and action != self._last_at_once:
            # A step of a takeover or hand-over: the next one follows now (but the same
            # step twice in a row waits a tick, so one that does not take cannot spin).
            self._wake.set()
        self._last_at_once = action if isinstance(action, _NEXT_AT_ONCE) else None
        return True

    # --- logging -------------------------------------------------------------------------------

    def _identity(self) -> dict[str, str]:
        return {"node_id": self.config.node_id, "tier": str(self.config.tier)}

    def _log(self, decision: Decision, s: Snapshot) -> None:
        """Log the decision's reason; a quiet one only when it differs from the last."""
        key = (decision.action.name, decision.reason)
        slot = isinstance(decision.action, Probe)
        if isinstance(decision.action, QUIET) and key == self._last_logged.get(slot):
            return
        self._last_logged[slot] = key
        log.info(
            decision.reason,
            extra={
                **self._identity(),
                "action": decision.action.name,
                "zk": str(s.zk_state),
                "role": s.redis.role or "down",
                "offset": s.redis.offset,
                "epoch": s.root.epoch if s.root else 0,
            },
        )


_ZK_ACTIONS = (
    Register,
    JoinElection,
    LeaveElection,
    Claim,
    PublishReplid,
    StepDown,
    HandOver,
    RepairRoot,
    RepairEpoch,
)
#: Steps of a takeover or hand-over whose next step is decided at once, not a tick later
#: (writes wait between them).
_NEXT_AT_ONCE = (Fence, FenceRemote, Promote, Serve, AdoptPrevious)
