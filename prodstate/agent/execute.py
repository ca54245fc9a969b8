"""Carrying out the agent's actions on Redis and ZooKeeper: each action of
``prodstate.core.actions``, as the loop decided it, with its reason already logged.

An :class:`Executor` holds no state of the loop's own: what an action changes there (a
branch to stay off, a hold-off, the Redis run id configured) comes back as
:class:`Effects` for the loop to keep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from prodstate import __version__
from prodstate.agent.config import AgentConfig
from prodstate.core.actions import (
    AdoptPrevious,
    AllowLeafReplicas,
    Claim,
    Configure,
    Fence,
    FenceRemote,
    HandOver,
    Heartbeat,
    JoinElection,
    LeaveElection,
    Promote,
    PublishReplid,
    Register,
    RepairEpoch,
    RepairRoot,
    Replicate,
    Serve,
    StepDown,
    Wait,
)
from prodstate.core.model import Lineage, RedisState, RootRecord, Snapshot, Tier
from prodstate.redis.control import RedisControl
from prodstate.redis.users import (
    leaf_replication_user,
    managed_users,
    replication_settings,
    setuser_args,
)
from prodstate.security.tls import ServerChecks
from prodstate.zk.errors import StoreUnavailable
from prodstate.zk.store import View, ZkStore

log = logging.getLogger("prodstate.agent.loop")

#: Seconds a moving leaf waits for its new parent to reach its offset (read afresh).
RESUME_WAIT = 2.0


@dataclass(frozen=True)
class Effects:
    """What an action changed in the loop's own state: a branch to stay off until when
    (monotonic), when a hold-off ends, the Redis run id now configured."""

    avoid: tuple[str, float] | None = None
    held_off_until: float | None = None
    configured_run_id: str | None = None


class Executor:
    """Carries out actions on the local Redis, its peers' and ZooKeeper."""

    def __init__(
        self, config: AgentConfig, redis: RedisControl, zk: ZkStore, servers: ServerChecks
    ) -> None:
        self.config = config
        self.redis = redis
        self.zk = zk
        self.servers = servers

    def _identity(self) -> dict[str, str]:
        return {"node_id": self.config.node_id, "tier": str(self.config.tier)}

    def _resume_from(self, address: str) -> None:
        """Replicate from ``address`` once a fresh read shows it at or past this replica's
        offset: the decision's reads are a tick old, and a PSYNC ahead of the new parent
        is answered with a full resync."""
        with self.peer(address) as peer:
            caught_up = self.redis.wait_caught_up(peer, timeout=RESUME_WAIT)
        if not caught_up:
            log.warning(
                "new parent did not reach this replica's offset in time: moving anyway, "
                "which may cost a full resync",
                extra={**self._identity(), "parent": address},
            )
        self.redis.replicate(address)

    def peer_state(self, address: str) -> RedisState:
        """Another node's Redis state, read now (UNREACHABLE if it does not answer)."""
        with self.peer(address) as peer:
            return peer.state()

    def peer(self, address: str, timeout: float = 0.3) -> RedisControl:
        """Another node's Redis, as this agent's admin identity (close it after use)."""
        return RedisControl(
            address, timeout=timeout, servers=self.servers, **self.config.redis_options()
        )

    def run(self, action: object, s: Snapshot, view: View | None) -> Effects:
        """Carry out ``action``, decided on ``s`` with ``view`` read from ZooKeeper; what
        it changed in the agent's own state. Errors propagate to the loop."""
        cfg = self.config
        match action:
            case Wait():
                pass
            case Configure():
                return Effects(configured_run_id=self._configure(s.redis))
            case Heartbeat():
                pass  # written by self.beat every heartbeat interval while serving
            case RepairRoot():
                self.zk.repair_root()
            case RepairEpoch():
                assert view is not None
                self.zk.repair_epoch(view.lineage_version)
            case Register(member=member):
                self.zk.register(replace(member, version=__version__))
            case JoinElection():
                self.zk.join_election(cfg.node_id)
            case LeaveElection():
                self.zk.leave_election()
            case Replicate(address=address, when_caught_up=caught_up, avoid=avoid):
                if caught_up:
                    self._resume_from(address)
                else:
                    self.redis.replicate(address)
                if avoid:
                    return Effects(avoid=(avoid, s.now + cfg.freshness.avoid_for))
            case Fence():
                self.redis.fence()
            case FenceRemote(address=address):
                with self.peer(address, timeout=0.5) as peer:
                    peer.fence()
            case Claim(epoch=epoch):
                assert view is not None
                previous = s.lineage.address if s.lineage.address != cfg.advertise else ""
                # A Redis that is a master of the tree's history already (a hand-over's
                # target) has its replication id published with the claim, not a tick later.
                r = s.redis
                replid = r.replid if r.is_master and s.lineage.knows(r) else ""
                record = RootRecord(
                    cfg.node_id, cfg.advertise, epoch, replid, previous, run_id=r.run_id
                )
                lineage = Lineage(epoch, cfg.node_id, cfg.advertise, s.lineage.replids)
                lineage = lineage.with_replid(replid) if replid else lineage
                if self.zk.claim_root(record, lineage, view.lineage_version):
                    log.info("claimed the root", extra={**self._identity(), "epoch": epoch})
            case Promote():
                self.redis.promote()
            case PublishReplid(replid=replid):
                assert view is not None and s.root is not None
                record = replace(s.root, replid=replid)
                lineage = replace(s.lineage, epoch=s.root.epoch, node_id=cfg.node_id)
                lineage = replace(lineage, address=cfg.advertise).with_replid(replid)
                if not self.zk.publish_replid(record, lineage, view.lineage_version):
                    log.info(
                        "the root or epoch znode changed before the replication id was "
                        "published: reading ZooKeeper again",
                        extra=self._identity(),
                    )
            case AllowLeafReplicas(allowed=allowed):
                secret = leaf_replication_user(cfg.credentials)
                assert secret is not None
                self.redis.set_user(setuser_args("replication", secret, on=allowed))
                if not allowed:
                    self.redis.drop_replicas(user=secret.user)
            case Serve(min_replicas=k):
                assert s.root is not None
                self.redis.serve(k, s.root.epoch)
            case AdoptPrevious(address=address):
                with self.peer(address, timeout=0.5) as peer:
                    peer.fence()
                    peer.announce(address)  # before REPLICAOF: see RedisControl.announce
                    peer.replicate(cfg.advertise)
            case HandOver(address=address):
                with self.peer(address, timeout=0.5) as peer:
                    peer.fence()  # a master once handed over, refusing writes until it serves
                    self.redis.fence()
                    self.redis.hand_over(peer)
                    taken = peer.state()
                self._record_hand_over(s, view, taken)
                self.zk.release_root()
                self.zk.leave_election()
            case StepDown(hold_off=hold_off):
                if s.redis.reachable:
                    self.redis.fence()
                    self.redis.drop_replicas()
                self.zk.release_root()
                self.zk.leave_election()
                if hold_off:
                    return Effects(held_off_until=s.now + cfg.freshness.hold_off)
            case _:
                raise AssertionError(f"unknown action {action!r}")
        return Effects()

    def _record_hand_over(self, s: Snapshot, view: View | None, taken: RedisState) -> None:
        """Add the replication id the hand-over's target took (``taken``: its Redis, now
        the master) to the lineage while this session still owns the root. Whoever serves
        next then holds the tree's history: the target, or, if its agent never claims, a
        branch that followed it (promoted, such a Redis keeps only the target's id)."""
        assert view is not None and s.root is not None
        if not taken.is_master or not taken.replid:
            raise StoreUnavailable("the target is not a master after FAILOVER")
        lineage = s.lineage.with_replid(taken.replid)
        if lineage != s.lineage and not self.zk.publish_replid(
            s.root, lineage, view.lineage_version
        ):
            raise StoreUnavailable("the root or epoch znode changed during the hand-over")
        log.info(
            "hand-over: the lineage records the target's replication id",
            extra={**self._identity(), "replid": taken.replid[:8]},
        )

    def _configure(self, state: RedisState) -> str:
        """Apply the tree's settings and the managed users; the run id configured."""
        credentials = self.config.credentials
        users = managed_users(credentials)
        self.redis.configure(self.config.redis_settings())
        leaf_user = leaf_replication_user(credentials)
        for role, secret in users.items():
            # A root that refused the leaf identity keeps it refused (an agent restart).
            on = secret is not leaf_user or self.redis.user_enabled(secret.user) is not False
            self.redis.set_user(setuser_args(role, secret, on=on))
        branch = self.config.tier is Tier.BRANCH
        self.redis.configure(replication_settings(credentials, branch))  # secret: never logged
        self.redis.load_scripts()
        extra = {**self._identity(), "run_id": state.run_id, **self.config.redis_settings()}
        if users:
            extra["users"] = ",".join(f"{role}={s.user}" for role, s in users.items())
        log.info("configured local Redis", extra=extra)
        return state.run_id
