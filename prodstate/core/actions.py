"""What the decision function can ask for: every side effect on the world is one of these.

``decide`` returns exactly one action per decision, with a one-line reason the loop logs;
the loop carries it out and nothing else. Actions that only read (``Probe``) or that
repeat every tick while nothing changes (``Wait``, ``Heartbeat``) are *quiet*: the loop
logs them only when their reason changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prodstate.core.model import Member


@dataclass(frozen=True)
class Action:
    """Base of every action; ``Wait`` means nothing to do this tick."""

    @property
    def name(self) -> str:
        """Short name for logs."""
        return type(self).__name__


@dataclass(frozen=True)
class Wait(Action):
    """Nothing to change."""


@dataclass(frozen=True)
class Configure(Action):
    """Apply the settings and ACL users the tree needs to the local Redis (done once per
    Redis run id: a restarted Redis has lost what was set with CONFIG SET)."""


@dataclass(frozen=True)
class Probe(Action):
    """Read other nodes' Redis for the decision it is about to take, then decide again
    with what was read (``Snapshot.probed``): the election leader reads the other
    candidates and the previous root, a root the previous root, a moving leaf its new
    parent."""

    #: (node id, address) of each other candidate to read.
    candidates: tuple[tuple[str, str], ...] = ()
    #: (node id, address) of the previous root, if it is to be read.
    previous_root: tuple[str, str] | None = None
    #: The address of the parent a leaf is about to move to, if it is to be read.
    new_parent: str | None = None


@dataclass(frozen=True)
class RepairRoot(Action):
    """Write this session's own root record over the root znode it owns, which someone
    overwrote with data that does not parse."""


@dataclass(frozen=True)
class RepairEpoch(Action):
    """Write this root's own lineage over the epoch znode, which is malformed or went below
    this root's epoch (deleted and made again)."""


@dataclass(frozen=True)
class Heartbeat(Action):
    """Serve as root: write the root's clock into the dataset every heartbeat interval
    (see :mod:`prodstate.core.heartbeat`) until another decision is taken."""


@dataclass(frozen=True)
class Register(Action):
    """Create or update this agent's member znode."""

    member: Member


@dataclass(frozen=True)
class JoinElection(Action):
    """Become a root candidate (ephemeral sequential znode)."""


@dataclass(frozen=True)
class LeaveElection(Action):
    """Stop being a root candidate."""


@dataclass(frozen=True)
class Replicate(Action):
    """``REPLICAOF`` the given address (the local Redis follows it).

    With ``when_caught_up``, only once a fresh read shows the new parent at or past this
    replica's offset (a moment at most): the snapshot is a tick old, and Redis answers a
    PSYNC ahead of its own offset with a full resync.
    """

    address: str
    when_caught_up: bool = False
    #: The branch this leaf moves off because its link is stale: the loop stays off it for
    #: ``FreshnessPolicy.avoid_for`` ("" for an ordinary move).
    avoid: str = ""


@dataclass(frozen=True)
class Fence(Action):
    """Make the local Redis refuse writes at once."""


@dataclass(frozen=True)
class FenceRemote(Action):
    """Make another Redis (the previous root) refuse writes."""

    address: str


@dataclass(frozen=True)
class Claim(Action):
    """Atomically publish this agent as root with ``epoch`` (lost race: nothing happens)."""

    epoch: int


@dataclass(frozen=True)
class Promote(Action):
    """``REPLICAOF NO ONE`` on the local Redis (still fenced)."""


@dataclass(frozen=True)
class PublishReplid(Action):
    """Record the root Redis's replication id in the root and epoch znodes."""

    replid: str


@dataclass(frozen=True)
class Serve(Action):
    """Accept writes as root, requiring ``min_replicas`` branch replicas per write."""

    min_replicas: int


@dataclass(frozen=True)
class AdoptPrevious(Action):
    """Turn the previous root's Redis into a replica of this root."""

    address: str


@dataclass(frozen=True)
class StepDown(Action):
    """Give up the root: fence the local Redis, delete the root znode, leave the election.

    With ``hold_off``, sit out of the election for ``FreshnessPolicy.hold_off`` (or until
    this node follows a new root and is fresh again): a root that no branch acknowledges
    would otherwise win again at once, holding the most of the stream.
    """

    hold_off: bool = False


@dataclass(frozen=True)
class HandOver(Action):
    """A switchover's last step at the old root, its Redis fenced and ``target`` (at
    ``address``) at its offset: fence the target's Redis too, hand the master role to it
    in Redis (``FAILOVER``: the old root's Redis becomes its replica with every byte
    acknowledged), then delete the root znode and leave the election (to rejoin at the
    back), so that ``target`` claims the root with the next epoch. Replicas stay
    connected."""

    target: str
    address: str


@dataclass(frozen=True)
class AllowLeafReplicas(Action):
    """Turn the leaf replication user on or off on the local Redis; off also drops the
    replicas connected as it (a serving root admits only branches' identities)."""

    allowed: bool


@dataclass(frozen=True)
class Decision:
    """What to do this tick, and why (one line, logged)."""

    action: Action
    reason: str


#: Actions the loop logs only when their reason changes.
QUIET = (Wait, Probe, Heartbeat)
