"""The agent's decision: one pure function from a Snapshot to an action and its reason.

The loop around it gathers the snapshot, calls ``decide`` once per tick,
logs the reason and carries out the action; every multi-step procedure (a
root takeover: fence, catch up, claim, promote, publish, serve) advances one
step per tick, each step re-checked against fresh state.
"""

from __future__ import annotations

from prodstate.core import switchover
from prodstate.core.actions import (
    AdoptPrevious,
    AllowLeafReplicas,
    Claim,
    Configure,
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
    Replicate,
    Serve,
    StepDown,
    Wait,
)
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    Member,
    PeerState,
    RedisState,
    RootRecord,
    Snapshot,
    Tier,
    ZkState,
)
from prodstate.core.rendezvous import parent_of

#: Seconds an empty leaf that sees no branch but the root waits for branches to register
#: (a fleet's leaves may start before its branches).
COLD_START_REGISTER_WAIT = 5.0


def decide(s: Snapshot) -> Decision:
    """Choose the one action this tick, with its reason."""
    decision = _decide(s)
    if s.paused and _starts_a_change(decision.action):
        assert s.pause is not None
        return Decision(
            Wait(), f"{s.pause.describe(s.wall_clock)}: not acting on: {decision.reason}"
        )
    return decision


def _starts_a_change(action: object) -> bool:
    """Whether ``action`` starts a failover or a move, which a pause holds back.

    Safety actions go on (a root cut off from ZooKeeper fences, one whose Redis is gone
    or whose session ended steps down), and so does finishing a claim made before the
    pause (promote, publish, serve), registering and the heartbeat. A root that gives up
    for lack of acknowledgements (``StepDown`` with a hold-off) is a failover.
    """
    if isinstance(action, StepDown):
        return action.hold_off
    return isinstance(action, Claim | Replicate | Probe | FenceRemote | AdoptPrevious | HandOver)


def _decide(s: Snapshot) -> Decision:
    if s.zk_state is not ZkState.CONNECTED:
        return _disconnected(s)
    if s.zk_untrusted:
        if s.holds_root and s.redis.is_master and not s.redis.fenced:
            return Decision(Fence(), f"cannot trust ZooKeeper ({s.zk_untrusted}): stop writes")
        return Decision(Wait(), f"refusing to act on this cluster's znodes: {s.zk_untrusted}")
    if not s.redis.reachable or s.redis.loading:
        return _redis_down(s)
    if s.holds_root:
        return _as_root(s)
    configure = _configure(s)
    if configure is not None:
        return configure
    admit = _leaf_replicas(s)
    if admit is not None:
        return admit
    membership = _membership(s)
    if membership is not None:
        return membership
    if s.root is None:
        if s.tier is Tier.LEAF:
            return Decision(Wait(), "no root is elected: keeping the current replication")
        return _election(s)
    if s.root.node_id == s.node_id:
        return Decision(
            Wait(), "the root znode is held by this node's previous session: waiting for it to end"
        )
    if not root_is_registered(s.root, s.branches):
        return Decision(
            Wait(),
            f"root znode names {s.root.node_id} at {s.root.address}, not a registered branch: "
            "ignoring it and keeping the current replication",
        )
    return _follow(s)


# --- states ------------------------------------------------------------------------------


def _configure(s: Snapshot) -> Decision | None:
    """Configure the local Redis if it has not been since it started (and is not backing
    off after a refusal)."""
    r = s.redis
    if s.configured or not r.reachable or r.loading or Configure().name in s.deferred:
        return None
    return Decision(
        Configure(),
        f"local Redis (run id {r.run_id[:8]}) not configured yet: applying the tree's "
        "settings and users",
    )


def _disconnected(s: Snapshot) -> Decision:
    held_root = s.holds_root
    if held_root and s.redis.is_master and not s.redis.fenced:
        return Decision(
            Fence(), f"ZooKeeper {s.zk_state}: a root that may be replaced stops writes"
        )
    configure = _configure(s)
    if configure is not None:
        return configure
    if held_root and s.suspended_since is not None:
        waited = s.now - s.suspended_since
        if waited >= s.session_timeout:
            return Decision(
                Wait(),
                f"stepped down: ZooKeeper {s.zk_state} for {waited:.1f}s, past the "
                f"{s.session_timeout:.1f}s session timeout; staying fenced",
            )
    return Decision(Wait(), f"ZooKeeper {s.zk_state}: no change until reconnected")


def _redis_down(s: Snapshot) -> Decision:
    why = "local Redis unreachable" if not s.redis.reachable else "local Redis is loading"
    if s.holds_root:
        return Decision(StepDown(), f"{why}: giving up the root at once")
    if s.in_election:
        return Decision(LeaveElection(), f"{why}: leaving the root election")
    if s.registered is not None and s.registered.available:
        member = _member(s, available=False)
        return Decision(Register(member), f"{why}: withdrawing from parent choice")
    return Decision(Wait(), why)


def _as_root(s: Snapshot) -> Decision:
    assert s.root is not None
    r = s.redis
    if not s.root.run_id:
        return Decision(StepDown(), "own root record names no Redis run id: cannot vouch for it")
    if r.run_id != s.root.run_id:
        return Decision(
            StepDown(),
            f"root Redis restarted (run id {s.root.run_id[:8]} -> {r.run_id[:8]}): "
            "its data cannot be trusted, so it must not serve",
        )
    if not s.root.replid and not s.lineage.knows(r):
        return Decision(StepDown(), "root Redis lacks the tree's history: it must not serve")
    configure = _configure(s)
    if configure is not None:
        return configure
    if s.root_confirmed_at is None:
        if r.is_master and not r.fenced:
            return Decision(Fence(), "root znode could not be confirmed: stop writes until it is")
        return Decision(Wait(), "root znode could not be confirmed: staying fenced")
    if s.root_damage:
        return Decision(
            RepairRoot(), f"repairing the root znode this session owns: {s.root_damage}"
        )
    if s.lineage_damage:
        return Decision(
            RepairEpoch(),
            f"repairing the epoch znode from this root's own record: {s.lineage_damage}",
        )
    if not r.is_master:
        handed = switchover.handed_over(s)
        if handed is not None:
            return handed
        return Decision(Promote(), f"root with epoch {s.root.epoch}: promoting the local Redis")
    if s.root.replid != r.replid:
        return Decision(PublishReplid(r.replid), f"publishing root replication id {r.replid[:8]}")
    admit = _leaf_replicas(s)
    if admit is not None:
        return admit
    handing_over = switchover.root_step(s)
    if handing_over is not None:
        return handing_over
    unacked = _unacknowledged(s)
    if unacked:
        return Decision(StepDown(hold_off=True), unacked)
    wanted, attached = _write_quorum(s)
    if r.epoch_key_differs(s.root.epoch) and not r.fenced:
        return Decision(
            Serve(wanted),
            f"epoch key in the root's Redis reads {r.epoch_key[:20]!r}, not epoch "
            f"{s.root.epoch}: writing it again (every write is refused until then)",
        )
    if r.min_replicas_to_write != wanted:
        extra = f" ({attached} non-branch replica(s) attached)" if attached and wanted else ""
        return Decision(
            Serve(wanted),
            f"root with epoch {s.root.epoch}: accepting writes only while "
            f"{wanted} replica(s) are attached{extra}",
        )
    previous = s.root.previous
    if previous and previous != s.address and not s.probed:
        return Decision(
            Probe(previous_root=(s.lineage.node_id, previous)),
            f"reading previous root {previous}: if it is still a master it becomes a replica",
        )
    prev = s.previous_root
    if prev is not None and prev.address != s.address and prev.redis.is_master:
        return Decision(
            AdoptPrevious(prev.address),
            f"previous root {prev.address} is still a master: making it a replica",
        )
    membership = _membership(s)
    if membership is not None:
        return membership
    return Decision(Heartbeat(), f"root with epoch {s.root.epoch}: serving")


def _membership(s: Snapshot) -> Decision | None:
    """Registration and candidacy housekeeping, if anything needs doing."""
    member = _member(s, available=_can_serve_leaves(s))
    if s.registered != member:
        state = "available to leaves" if member.available else "not available to leaves"
        freshness = s.freshness.describe(s.now)
        verdict = "fresh" if member.fresh else "judging" if member.judging else "stale"
        state += f", {verdict}: {freshness}"
        if member.avoiding:
            state += f", staying off {', '.join(member.avoiding)}"
        return Decision(Register(member), f"registering as {s.tier} ({state})")
    if s.tier is Tier.BRANCH:
        eligible = s.lineage_readable and s.lineage.knows(s.redis) and not s.redis.sync_in_progress
        if s.node_id in s.drained:
            if s.in_election:
                return Decision(LeaveElection(), "drained: leaving the root election")
            return None
        if eligible and s.held_off and not s.in_election:
            return None  # gave up the root for lack of acknowledgements: sitting out
        if eligible and not s.in_election:
            return Decision(JoinElection(), "holding the tree's data: joining the root election")
        if not eligible and s.in_election:
            return Decision(LeaveElection(), "lacking the tree's data: leaving the root election")
    return None


def _leaf_replicas(s: Snapshot) -> Decision | None:
    """Turn the leaf replication user off on a serving root with other branches, on
    everywhere else (None: nothing to change, or no separate branch identity).

    ``WAIT`` and ``min-replicas-to-write`` count every replica. With the leaf user off at
    the root, its replicas are those holding a branch's secret: a leaf machine (which
    holds only the leaf identity) cannot pose as a branch and acknowledge a write."""
    if s.leaf_replicas_allowed is None:
        return None
    others = s.holds_root and s.redis.is_master and bool(_other_branches(s))
    if others and s.leaf_replicas_allowed:
        return Decision(
            AllowLeafReplicas(False),
            f"root with {len(_other_branches(s))} other branch(es): refusing the leaf "
            "replication identity, so that every acknowledgement comes from a branch",
        )
    if not others and not s.leaf_replicas_allowed:
        why = "no other branch" if s.holds_root else "not a serving root"
        return Decision(AllowLeafReplicas(True), f"{why}: admitting leaf replicas again")
    return None


def root_is_registered(root: RootRecord, branches: tuple[Member, ...]) -> bool:
    """True if ``root`` names a registered branch at its registered address (only a
    branch that won the election publishes a root; anything else is forged or stale)."""
    return any(m.node_id == root.node_id and m.address == root.address for m in branches)


def election_candidates(s: Snapshot) -> tuple[str, ...]:
    """Candidates in election order, keeping only registered branches (a stray or forged
    election znode must not stall the election or lead it)."""
    members = {m.node_id for m in s.branches} | {s.node_id}
    return tuple(c for c in s.candidates if c in members and c not in s.drained)


def _election(s: Snapshot) -> Decision:
    candidates = election_candidates(s)
    if not s.in_election or not candidates:
        return Decision(Wait(), "no root: waiting to enter the election")
    leader, why = switchover.election_leader(s, candidates)
    if leader != s.node_id:
        return Decision(Wait(), f"no root: {why}")
    if not s.probed:
        probe = _election_probe(s, candidates)
        if probe is not None:
            return probe
    prev = s.previous_root
    if prev is not None and prev.address == s.address:
        prev = None  # this node was the previous root: nothing to fence or catch up from
    if (
        prev is not None
        and prev.redis.is_master
        and prev.redis.min_replicas_to_write < FENCE_MIN_REPLICAS
    ):
        return Decision(
            FenceRemote(prev.address),
            f"won the election: fencing previous root {prev.address} before reading offsets",
        )
    fresher = _fresher_candidate(s)
    if fresher is not None:
        return Decision(
            LeaveElection(),
            f"{s.freshness.describe(s.now)} here, while candidate {fresher.node_id} reports "
            f"fresh and is as far along ({fresher.redis.offset} >= {s.redis.offset}): "
            "yielding the election",
        )
    ahead = _most_advanced(s)
    stuck = ""
    if ahead is not None and prev is not None and ahead.address == prev.address:
        stuck = _catch_up_stuck(s, prev)
        if not stuck:
            if s.redis.master == prev.address and s.redis.link_up:
                return Decision(
                    Wait(),
                    f"catching up from fenced previous root: at {s.redis.offset}, "
                    f"need {ahead.redis.offset}",
                )
            return Decision(
                Replicate(prev.address),
                f"previous root {prev.address} is ahead ({ahead.redis.offset} > "
                f"{s.redis.offset}): catching up from it",
            )
    elif ahead is not None:
        return Decision(
            LeaveElection(),
            f"branch {ahead.node_id} is ahead ({ahead.redis.offset} > {s.redis.offset}): "
            "yielding the election",
        )
    if not s.lineage_readable:
        return Decision(Wait(), "epoch znode unreadable: not claiming root until it is repaired")
    if stuck:
        return Decision(Claim(s.lineage.epoch + 1), f"{stuck}: claiming root without them")
    return Decision(
        Claim(s.lineage.epoch + 1),
        f"won the election at offset {s.redis.offset}, no live branch ahead: "
        f"claiming root with epoch {s.lineage.epoch + 1}",
    )


def _election_probe(s: Snapshot, candidates: tuple[str, ...]) -> Decision | None:
    """The leader reads the other candidates and the previous root before it fences, catches
    up, yields or claims (None: there is nobody to read)."""
    by_id = {m.node_id: m for m in s.branches}
    others = tuple((c, by_id[c].address) for c in candidates[1:] if c in by_id)
    previous = s.lineage.address
    previous_root = (s.lineage.node_id, previous) if previous and previous != s.address else None
    if not others and previous_root is None:
        return None
    named = [f"{len(others)} other candidate(s)"] if others else []
    named += [f"previous root {previous}"] if previous_root else []
    return Decision(
        Probe(candidates=others, previous_root=previous_root),
        f"leading the election: reading {' and '.join(named)} before taking the root",
    )


def follow_target(s: Snapshot, blamed: str | None = None) -> tuple[str, str]:
    """The address this node should replicate from while a root is serving, and why
    (staying off the branches it avoids, and ``blamed``)."""
    assert s.root is not None
    avoid = s.avoiding | {blamed} if blamed else s.avoiding
    branches = [m for m in s.branches if m.address not in s.untrusted_masters]
    return parent_of(s.node_id, s.tier, s.root, branches, avoid, s.drained)


def _follow(s: Snapshot) -> Decision:
    assert s.root is not None
    taking_over = switchover.awaiting_release(s)
    if taking_over is not None:
        return taking_over
    blamed = _blamed_parent(s)
    target, why = follow_target(s, blamed)
    if blamed:
        why = (
            f"{s.freshness.describe(s.now)} on the link from branch {blamed}, which reports "
            f"fresh: staying off it for {s.policy.avoid_for:g}s; {why}"
        )
    if target == s.address:
        return Decision(Wait(), f"{why}, but that is this node's own address: refusing")
    if s.tier is Tier.LEAF and target == s.root.address:
        waiting = _cold_start(s)
        if waiting:
            return Decision(Wait(), waiting)
    if s.redis.master == target:
        return Decision(Wait(), why)
    pacing = _drain_pacing(s)
    if pacing:
        return Decision(Wait(), f"{why}, but {pacing}")
    if target in s.untrusted_masters:
        return Decision(Wait(), f"{why}, but its TLS certificate was refused lately: not moving")
    if target == s.root.address and not s.root.replid:
        # A replica whose own master is gone refuses PSYNC, and Redis retries only once a
        # second: following the root before it has promoted would cost up to a second.
        return Decision(Wait(), f"{why}, once it has promoted (no replication id published)")
    if target != s.root.address and not s.probed:
        return Decision(
            Probe(new_parent=target), f"{why}: reading it first, so the move is a partial resync"
        )
    new = s.new_parent
    when_caught_up = False
    if new is not None and new.address == target and target != s.root.address:
        when_caught_up = _can_resume(new.redis, s)
        waiting = _not_ready(new.redis, s) if when_caught_up else _not_following(new.redis, s)
        if waiting:
            return Decision(
                Wait(), f"{why}, but it {waiting}: waiting, so the move is a partial resync"
            )
    current = s.redis.master or "none (master)"
    return Decision(
        Replicate(target, when_caught_up, avoid=blamed or ""),
        f"{why}; was replicating from {current}",
    )


def _drain_pacing(s: Snapshot) -> str:
    """Why this leaf waits before moving off its drained branch ("" if it need not): each
    leaf moves at its own moment of the drain's spread, so the branches taking them are
    not flooded with resyncs at once."""
    if s.tier is not Tier.LEAF:
        return ""
    by_address = {m.address: m.node_id for m in s.branches}
    parent = by_address.get(s.redis.master)
    drain = next((d for d in s.drains if d.node_id == parent), None)
    if drain is None:
        return ""
    wait = drain.move_at(s.node_id) - s.wall_clock
    if wait <= 0:
        return ""
    return (
        f"its branch {drain.node_id} is drained: this leaf's turn to move comes in "
        f"{wait:.1f}s (the drain spreads moves over {drain.spread:g}s)"
    )


def _cold_start(s: Snapshot) -> str:
    """Why a leaf without the tree's data should wait for a branch rather than load the
    whole dataset from the root ("" if it should not). When a whole fleet starts, the
    branches are still syncing, or not yet registered: every leaf would otherwise take a
    full copy from the root, and then move. It waits up to ``cold_start_wait`` for
    branches that are syncing, and a few seconds for branches to register at all."""
    assert s.root is not None
    r = s.redis
    if s.cold_start_wait <= 0 or r.role != "master" or s.lineage.knows(r):
        return ""
    catching_up = sorted(
        m.node_id for m in s.branches if not m.available and m.node_id != s.root.node_id
    )
    waited = 0.0 if s.no_branch_since is None else s.now - s.no_branch_since
    if catching_up and waited < s.cold_start_wait:
        return (
            f"no branch available yet ({', '.join(catching_up)} catching up): this empty "
            f"leaf waits up to {s.cold_start_wait:g}s for one rather than load the whole "
            f"dataset from root {s.root.node_id}"
        )
    grace = min(s.cold_start_wait, COLD_START_REGISTER_WAIT)
    if not catching_up and waited < grace:
        return (
            f"no branch registered besides root {s.root.node_id}: this empty leaf waits "
            f"{grace:g}s for branches to register before loading the dataset from the root"
        )
    return ""


def no_branch_since(previous: float | None, s: Snapshot) -> float | None:
    """When this leaf first saw a root but no branch to follow (none registered, or only
    ones whose TLS certificate was refused); None while it has one."""
    if s.tier is not Tier.LEAF or s.root is None:
        return None
    followable = [
        m for m in _other_branches(s, s.root.node_id) if m.address not in s.untrusted_masters
    ]
    if followable:
        return None
    return s.now if previous is None else previous


def _can_resume(parent: RedisState, s: Snapshot) -> bool:
    """True if this node can resume from ``parent`` where it is (a partial resync): it
    holds the tree's data on a live link, or on one it took moments ago (a leaf moving
    again before its last move's PSYNC was answered: a PSYNC past the new parent's offset
    would be a full resync, so it waits all the same), and the parent can be asked."""
    r = s.redis
    just_moved = s.master_since is not None and s.now - s.master_since < s.policy.stale_after
    return (
        parent.reachable
        and r.role == "slave"
        and (r.link_up or just_moved)
        and (s.lineage.knows(r))
    )


def _not_ready(parent: RedisState, s: Snapshot) -> str:
    """Why a leaf that can resume (``_can_resume``) should not move to ``parent`` yet
    ("" if it may move now).

    Redis answers a PSYNC it cannot serve (another replication id, or an offset past its
    own) with a full resync. A branch that has not yet followed the current root, or is
    behind this leaf, gets there within moments (its agent reacts without jitter, and a
    branch whose agent is gone is soon unregistered), so the leaf waits for it. A leaf
    that cannot resume (no tree data, its new parent unreachable, or its own link down,
    so it is going stale) never waits: it needs a full resync anyway or must move now.
    """
    assert s.root is not None
    if parent.master != s.root.address or not parent.link_up or parent.sync_in_progress:
        return f"is not yet in sync with root {s.root.node_id}"
    if parent.offset < s.redis.offset:
        return f"is behind this node ({parent.offset} < {s.redis.offset})"
    return ""


def _not_following(parent: RedisState, s: Snapshot) -> str:
    """Why a leaf holding the tree's data should not move to ``parent`` even though it
    cannot resume where it is ("" if it may move now): the parent still follows another
    master than the root. It is about to change masters (its agent reacts without jitter),
    and a PSYNC meanwhile may name a replication id it does not know yet: a full resync.
    Seen when a leaf's own parent is promoted: its link drops for a moment, and by the
    time it moves it has taken the new root's replication id."""
    assert s.root is not None
    r = s.redis
    holds_data = r.role == "slave" and s.lineage.knows(r)
    if holds_data and parent.reachable and parent.master != s.root.address:
        return f"still follows {parent.master or 'no master'}, not root {s.root.node_id}"
    return ""


# --- helpers -----------------------------------------------------------------------------


def _member(s: Snapshot, available: bool) -> Member:
    version = s.registered.version if s.registered else ""
    avoiding = tuple(sorted(s.avoiding)) if s.tier is Tier.LEAF else ()
    # The serving root is the heartbeat's source: it is not judged by it.
    fresh = s.freshness.fresh or (s.holds_root and s.redis.is_master)
    judging = not fresh and s.freshness.judging
    return Member(s.node_id, s.tier, s.address, available, version, fresh, judging, avoiding)


def _can_serve_leaves(s: Snapshot) -> bool:
    """A parent for leaves: a replica in sync with the tree's history."""
    r = s.redis
    return r.role == "slave" and s.lineage.knows(r) and not r.sync_in_progress


def _write_quorum(s: Snapshot) -> tuple[int, int]:
    """The root's ``min-replicas-to-write``, and how many non-branch replicas it counts.

    While other branches exist, a write needs one attached branch. Redis counts every
    replica, and leaves may hang on the root for a moment (its own leaves, when a branch
    is promoted), so each attached non-branch replica raises the count by one.
    """
    if not _other_branches(s):
        return 0, 0
    branch_addresses = {m.address for m in s.branches if m.node_id != s.node_id}
    attached = sum(1 for a in s.redis.replicas if a not in branch_addresses)
    return 1 + attached, attached


def _other_branches(s: Snapshot, exclude: str | None = None) -> list[Member]:
    skip = {s.node_id, exclude}
    return [m for m in s.branches if m.available and m.node_id not in skip]


def _most_advanced(s: Snapshot) -> PeerState | None:
    """The fenced previous root or a candidate holding more of the history than this node."""
    sources = [p for p in s.peers if p.address != s.address]
    if s.previous_root is not None and s.previous_root.address != s.address:
        sources.append(s.previous_root)
    best: PeerState | None = None
    for peer in sources:
        r = peer.redis
        if not r.reachable or not s.lineage.knows(r) or r.offset <= s.redis.offset:
            continue
        if best is None or r.offset > best.redis.offset:
            best = peer
    return best


# --- freshness ----------------------------------------------------------------------------


def _unacknowledged(s: Snapshot) -> str:
    """Why this root must give up ("" if it need not): no other branch has acknowledged its
    stream for longer than ``stale_after`` while branches are registered. Its Redis has
    lost them (a cut, or a hung Redis): no write can be confirmed, and they cannot take
    over while it holds the root. It fences before it releases the root, so it cannot
    confirm a write once another branch may claim."""
    since = s.unacked_since
    if since is None or s.now - since <= s.policy.stale_after or not _other_branches(s):
        return ""
    return (
        f"no branch has acknowledged the root's stream for {s.now - since:.1f}s (limit "
        f"{s.policy.stale_after:g}s) while {len(_other_branches(s))} are registered: giving "
        f"up the root so that a branch that reaches the others can take over"
    )


def unacked_since(previous: float | None, s: Snapshot) -> float | None:
    """Since when this serving root has had no other branch acknowledging its stream (None
    while one does, while it is not a promoted root, or while no other branch is
    registered)."""
    r = s.redis
    if not (s.holds_root and r.is_master and s.root is not None and s.root.replid == r.replid):
        return None
    others = {m.address for m in _other_branches(s)}
    if not others or others & set(r.acking):
        return None
    return s.now if previous is None else previous


def _stale_for(s: Snapshot) -> float:
    """How long this node's copy has been stale on its current link: the heartbeat's age,
    counted from no earlier than when it started following its current master."""
    age = s.freshness.age(s.now) or 0.0
    if s.master_since is not None:
        age = min(age, s.now - s.master_since)
    return age


def _blamed_parent(s: Snapshot) -> str | None:
    """The branch this leaf should move off because their link is stale: the leaf's copy
    has been stale for longer than ``leaf_stale_after`` on that link while the branch
    reports fresh, and another fresh branch is there to move to (None otherwise)."""
    if s.tier is not Tier.LEAF or s.root is None or s.freshness.fresh:
        return None
    r = s.redis
    if r.role != "slave" or _stale_for(s) <= s.policy.leaf_stale_after:
        return None
    if r.sync_in_progress:
        return None  # a full copy is on its way (Redis's repl-timeout ends one that stalls)
    branches = _other_branches(s, exclude=s.root.node_id)
    parent = next((m for m in branches if m.address == r.master), None)
    if parent is None or not parent.fresh:
        return None
    skip = s.avoiding | {parent.node_id}
    if not any(m.fresh and m.node_id not in skip for m in branches):
        return None
    return parent.node_id


def _fresher_candidate(s: Snapshot) -> PeerState | None:
    """A candidate this stale leader should yield to: one that reports fresh and is at
    least as far along the stream (never one behind: that would lose writes)."""
    if s.freshness.fresh:
        return None
    fresh = {m.node_id for m in s.branches if m.fresh}
    for peer in s.peers:
        r = peer.redis
        if (
            peer.node_id in fresh
            and r.reachable
            and s.lineage.knows(r)
            and r.offset >= s.redis.offset
        ):
            return peer
    return None


def _catch_up_stuck(s: Snapshot, prev: PeerState) -> str:
    """Why this leader stops waiting for the fenced previous root's last writes ("" while
    it should wait): its offset has not moved for longer than ``stale_after`` although
    the previous root is ahead, so their link is cut. Writes only the previous root holds
    reached no live branch that could vouch for them."""
    if s.offset_since is None or s.now - s.offset_since <= s.policy.stale_after:
        return ""
    if s.redis.master != prev.address:
        return ""
    return (
        f"previous root {prev.address} is ahead ({prev.redis.offset} > {s.redis.offset}) "
        f"but this node's offset has not moved for {s.now - s.offset_since:.1f}s while "
        f"following it (their link is cut); its last {prev.redis.offset - s.redis.offset} "
        "bytes are given up"
    )
