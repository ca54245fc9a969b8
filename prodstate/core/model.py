"""Immutable records the agent decides from: members, the root, lineage, Redis state."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prodstate.core.address import DataError, parse_address
from prodstate.core.address import format_address as format_address  # re-exported
from prodstate.core.freshness import ASSUMED_FRESH, DEFAULT_POLICY, Freshness, FreshnessPolicy

if TYPE_CHECKING:
    from prodstate.core.maintenance import Drain, Pause, Switchover

NODE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_ZNODE_BYTES = 64 * 1024
MAX_LINEAGE = 8
#: The most branches a member znode lists as avoided.
MAX_AVOIDING = 16
#: The layout of the member, root and epoch znodes this release writes. Fields are only
#: ever added (older agents ignore what they do not know); a change older agents would
#: misread bumps it, and a release reads one format ahead of the one it writes, so that
#: every agent can read a new format before any agent writes it.
FORMAT = 1
#: The newest format this release reads.
READS_FORMAT = 1
#: ``min-replicas-to-write`` value that makes a Redis refuse every write.
FENCE_MIN_REPLICAS = 1_000_000_000
#: Seconds since a replica's last acknowledgement (``INFO`` ``lag``) within which it counts
#: as acknowledging: replicas send ``REPLCONF ACK`` every second.
MAX_ACK_LAG = 1


class Tier(enum.StrEnum):
    """Where an agent sits in the tree."""

    BRANCH = "branch"
    LEAF = "leaf"


class ZkState(enum.StrEnum):
    """The agent's ZooKeeper connection, as kazoo reports it."""

    CONNECTED = "connected"
    SUSPENDED = "suspended"
    LOST = "lost"


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is a safe znode name; DataError otherwise."""
    if not isinstance(node_id, str) or not NODE_ID_RE.fullmatch(node_id):
        raise DataError(f"node id {node_id!r} must match {NODE_ID_RE.pattern}")
    return node_id


def candidate_from_znode(raw: bytes) -> str:
    """The node id an election znode holds; DataError if it is not a valid node id."""
    if len(raw) > MAX_ZNODE_BYTES:
        raise DataError(f"election znode: {len(raw)} bytes is over the limit")
    try:
        return validate_node_id(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise DataError(f"election znode: not a node id: {raw[:40]!r}") from None


def _load_object(raw: bytes, what: str) -> dict[str, Any]:
    if len(raw) > MAX_ZNODE_BYTES:
        raise DataError(f"{what}: {len(raw)} bytes is over the {MAX_ZNODE_BYTES}-byte limit")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd nesting or digits
        raise DataError(f"{what}: not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{what}: expected a JSON object")
    return value


def _check_format(obj: dict[str, Any], what: str) -> None:
    """DataError if ``obj`` is of a format newer than this release reads (no ``format``
    field: the layout before formats were numbered, read as format 0)."""
    found = obj.get("format", 0)
    if not isinstance(found, int) or isinstance(found, bool) or found < 0:
        raise DataError(f"{what}: field 'format' must be a non-negative int, got {found!r}")
    if found > READS_FORMAT:
        raise DataError(
            f"{what}: format {found} is newer than this agent reads ({READS_FORMAT}): upgrade it"
        )


def _field(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(f"{what}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Member:
    """An agent registered in ZooKeeper under its tier."""

    node_id: str
    tier: Tier
    address: str
    available: bool = True
    version: str = ""
    #: The agent's verdict on its local copy (see prodstate.core.freshness), published
    #: only when it changes; members that do not say count as fresh.
    fresh: bool = True
    #: True while the agent, started moments ago, has no verdict yet (``fresh`` is then
    #: False): leaves do not pass over such a branch, and nobody blames or yields to it.
    judging: bool = False
    #: Branches this leaf stays off for now, having found their link to it stale.
    avoiding: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """Encode as the znode's data."""
        data = {**asdict(self), "tier": str(self.tier), "avoiding": list(self.avoiding)}
        return json.dumps({**data, "format": FORMAT}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Member:
        """Decode a member znode; DataError if anything is off."""
        what = "member znode"
        obj = _load_object(raw, what)
        _check_format(obj, what)
        node_id = validate_node_id(_field(obj, "node_id", str, what))
        tier_text = _field(obj, "tier", str, what)
        try:
            tier = Tier(tier_text)
        except ValueError:
            raise DataError(f"{what}: unknown tier {tier_text!r}") from None
        address = _field(obj, "address", str, what)
        parse_address(address)
        available = obj.get("available", True)
        if not isinstance(available, bool):
            raise DataError(f"{what}: field 'available' must be bool")
        version = obj.get("version", "")
        fresh = obj.get("fresh", True)
        if not isinstance(fresh, bool):
            raise DataError(f"{what}: field 'fresh' must be bool")
        judging = obj.get("judging", False)
        if not isinstance(judging, bool):
            raise DataError(f"{what}: field 'judging' must be bool")
        version = version if isinstance(version, str) else ""
        avoiding = obj.get("avoiding", [])
        if not isinstance(avoiding, list) or not all(isinstance(a, str) for a in avoiding):
            raise DataError(f"{what}: field 'avoiding' must be a list of str")
        avoiding = tuple(sorted(avoiding[:MAX_AVOIDING]))
        return cls(node_id, tier, address, available, version, fresh, judging, avoiding)

    @classmethod
    def from_znode(cls, name: str, tier: Tier | str, raw: bytes) -> Member:
        """Decode the member znode ``members/<tier>/<name>``; DataError if it is malformed or
        names another node or tier than where it is registered."""
        member = cls.from_json(raw)
        if member.node_id != name:
            raise DataError(f"it names node {member.node_id}")
        if member.tier != tier:
            raise DataError(f"it says tier {member.tier}")
        return member


@dataclass(frozen=True)
class RootRecord:
    """The elected root, as published in the ephemeral root znode."""

    node_id: str
    address: str
    epoch: int
    replid: str = ""
    previous: str = ""
    owner_session: int = 0
    run_id: str = ""

    def held_by(self, node_id: str, session_id: int) -> bool:
        """True if this is the root znode of ``node_id``'s ZooKeeper session ``session_id``
        (the same node's previous session does not hold it)."""
        return self.node_id == node_id and self.owner_session == session_id

    def to_json(self) -> bytes:
        """Encode as the znode's data (the owner session is the znode's own stat)."""
        data = {"node_id": self.node_id, "address": self.address, "epoch": self.epoch}
        data.update(replid=self.replid, previous=self.previous, run_id=self.run_id)
        return json.dumps({**data, "format": FORMAT}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, owner_session: int = 0) -> RootRecord:
        """Decode the root znode; DataError if anything is off."""
        what = "root znode"
        obj = _load_object(raw, what)
        _check_format(obj, what)
        node_id = validate_node_id(_field(obj, "node_id", str, what))
        address = _field(obj, "address", str, what)
        parse_address(address)
        epoch = _field(obj, "epoch", int, what)
        if epoch < 1:
            raise DataError(f"{what}: epoch must be positive")
        texts = [obj.get(key, "") for key in ("replid", "previous", "run_id")]
        if not all(isinstance(t, str) for t in texts):
            raise DataError(f"{what}: fields 'replid', 'previous' and 'run_id' must be str")
        replid, previous, run_id = texts
        if previous:
            parse_address(previous)
        return cls(node_id, address, epoch, replid, previous, owner_session, run_id)


@dataclass(frozen=True)
class Lineage:
    """The persistent record of the latest root: epoch and recent replication ids.

    A Redis whose replication id is in ``replids`` holds the tree's history; one
    that restarted empty, or from another history, does not.
    """

    epoch: int = 0
    node_id: str = ""
    address: str = ""
    replids: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """Encode as the persistent epoch znode's data."""
        return json.dumps(
            {
                "epoch": self.epoch,
                "node_id": self.node_id,
                "address": self.address,
                "replids": list(self.replids),
                "format": FORMAT,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Lineage:
        """Decode the epoch znode; empty data means no root has ever been elected."""
        if not raw:
            return cls()
        what = "epoch znode"
        obj = _load_object(raw, what)
        _check_format(obj, what)
        epoch = _field(obj, "epoch", int, what)
        if epoch < 0:
            raise DataError(f"{what}: epoch must not be negative")
        replids = obj.get("replids", [])
        if not isinstance(replids, list) or not all(isinstance(r, str) for r in replids):
            raise DataError(f"{what}: field 'replids' must be a list of str")
        node_id = obj.get("node_id", "")
        address = obj.get("address", "")
        if not isinstance(node_id, str) or not isinstance(address, str):
            raise DataError(f"{what}: node_id and address must be str")
        return cls(epoch, node_id, address, tuple(replids[:MAX_LINEAGE]))

    def knows(self, redis: RedisState) -> bool:
        """True if ``redis`` holds the tree's history (always, before the first root).

        A replica that followed a new root shifts its old id to ``replid2``, and
        a Redis restarted from its RDB keeps the saved id there, so either id
        counts; a Redis restarted empty has neither.
        """
        return not self.replids or bool({redis.replid, redis.replid2} & set(self.replids))

    def with_replid(self, replid: str) -> Lineage:
        """This lineage with ``replid`` as the newest id."""
        if self.replids and self.replids[0] == replid:
            return self
        kept = tuple(r for r in self.replids if r != replid)
        return Lineage(self.epoch, self.node_id, self.address, (replid, *kept)[:MAX_LINEAGE])


@dataclass(frozen=True)
class RedisState:
    """What the agent read from a Redis (``INFO``), or that it could not reach it."""

    reachable: bool
    role: str = ""
    run_id: str = ""
    replid: str = ""
    replid2: str = ""
    offset: int = 0
    master: str = ""
    link_up: bool = False
    sync_in_progress: bool = False
    min_replicas_to_write: int = 0
    loading: bool = False
    #: Addresses of the connected replicas, as they announce themselves.
    replicas: tuple[str, ...] = ()
    #: Those of them that acknowledged the stream within the last ``MAX_ACK_LAG`` seconds
    #: (or are being sent a full copy).
    acking: tuple[str, ...] = ()
    #: The heartbeat key's text (None if absent or not read).
    heartbeat: str | None = None
    #: The epoch key's value in this Redis ("" if absent; None if it was not read).
    epoch_key: str | None = None

    @property
    def is_master(self) -> bool:
        """True if the Redis is a master (``REPLICAOF NO ONE``)."""
        return self.reachable and self.role == "master"

    def epoch_key_differs(self, epoch: int) -> bool:
        """True if the epoch key was read and is not ``epoch`` (every fenced write is then
        refused with STALEEPOCH)."""
        return self.epoch_key is not None and self.epoch_key != str(epoch)

    @property
    def fenced(self) -> bool:
        """True if the Redis refuses writes (``min-replicas-to-write`` set out of reach)."""
        return self.min_replicas_to_write >= FENCE_MIN_REPLICAS


UNREACHABLE = RedisState(reachable=False)


@dataclass(frozen=True)
class PeerState:
    """Another branch's Redis, read by a root candidate before it takes over."""

    node_id: str
    address: str
    redis: RedisState


@dataclass(frozen=True)
class RejoinMarks:
    """What a leaf has seen of the branches' published freshness: whether none of those
    it could follow reported fresh at its last look, since when one has (None: none
    does), and whether that began with none fresh (the whole tree fell behind, as when
    the root is lost)."""

    none_fresh: bool = False
    fresh_since: float | None = None
    after_none_fresh: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Everything one decision looks at; built by the agent loop, never mutated."""

    node_id: str
    tier: Tier
    address: str
    now: float
    zk_state: ZkState
    suspended_since: float | None
    session_timeout: float
    session_id: int
    redis: RedisState
    branches: tuple[Member, ...]
    candidates: tuple[str, ...]
    in_election: bool
    root: RootRecord | None
    root_confirmed_at: float | None
    lineage: Lineage
    registered: Member | None
    peers: tuple[PeerState, ...] = ()
    previous_root: PeerState | None = None
    #: The parent this node is about to move to, read before the move (leaves only).
    new_parent: PeerState | None = None
    #: False when the epoch znode could not be parsed: the lineage above is then empty and
    #: must not be taken for a cluster that never had a root.
    lineage_readable: bool = True
    #: Seconds a leaf without the tree's data waits for a branch that is catching up
    #: before loading the whole dataset from the root (0: it never waits).
    cold_start_wait: float = 0.0
    #: Since when (monotonic) this leaf has seen a root but no branch to follow.
    no_branch_since: float | None = None
    #: What this leaf has seen of the branches' published freshness, and since when (see
    #: prodstate.core.follow.rejoin_marks).
    rejoin: RejoinMarks = RejoinMarks()
    #: False until the local Redis has been configured since it (last) started.
    configured: bool = True
    #: Names of actions backing off after a refusal for lack of rights: not asked for now.
    deferred: frozenset[str] = frozenset()
    #: True once the loop has read the peers this decision asked for (``Probe``): then
    #: ``peers``, ``previous_root`` and ``new_parent`` hold what it read.
    probed: bool = True
    #: Why the root znode this session owns must be repaired ("" if it is intact); ``root``
    #: then holds the record this session wrote.
    root_damage: str = ""
    #: Why the epoch znode must be repaired by this root ("" if it is intact); ``lineage``
    #: then holds the lineage this root wrote.
    lineage_damage: str = ""
    #: Why this cluster's znodes cannot be trusted (an ACL the agents cannot set): the
    #: agent then refuses to act on them ("" while they can be trusted).
    zk_untrusted: str = ""
    #: The heartbeat period and freshness thresholds, and this node's freshness.
    policy: FreshnessPolicy = DEFAULT_POLICY
    freshness: Freshness = ASSUMED_FRESH
    #: Since when (monotonic) the local Redis has followed its current master, and since
    #: when its replication offset has not changed (None: not known).
    master_since: float | None = None
    offset_since: float | None = None
    #: Branches this leaf stays off for now (it found their link to it stale).
    avoiding: frozenset[str] = frozenset()
    #: True while a watch has fired since ZooKeeper was last read (the read waits for the
    #: leaf's reaction delay): the view above may lag what the branches published.
    view_outdated: bool = False
    #: Since when this root has seen no other branch acknowledge its stream (None while
    #: one does, or when it is not a serving root).
    unacked_since: float | None = None
    #: True while this node, having given up the root for lack of acknowledgements, sits
    #: out of the election.
    held_off: bool = False
    #: Addresses whose TLS certificate was lately refused before replicating from them: a
    #: leaf does not choose them as its parent meanwhile, and no node moves to them.
    untrusted_masters: frozenset[str] = frozenset()
    #: Whether the leaf replication user is on in the local Redis (None: branches have no
    #: identity of their own, or it could not be read).
    leaf_replicas_allowed: bool | None = None
    #: The cluster's maintenance pause, if one is set, and this machine's wall clock (the
    #: pause's expiry is a wall-clock time).
    pause: Pause | None = None
    wall_clock: float = 0.0
    #: A planned switchover of the root, if one is requested (see prodstate.core.switchover).
    switchover: Switchover | None = None
    #: The branches drained of their leaves (``prodstate drain``).
    drains: tuple[Drain, ...] = ()

    @property
    def drained(self) -> frozenset[str]:
        """The node ids of the drained branches."""
        return frozenset(d.node_id for d in self.drains)

    @property
    def paused(self) -> bool:
        """True while a pause is set and has not expired."""
        return self.pause is not None and self.pause.active(self.wall_clock)

    @property
    def holds_root(self) -> bool:
        """True if this agent's current session holds the root znode."""
        return self.root is not None and self.root.held_by(self.node_id, self.session_id)
