"""The agent's decision: one pure function from a Snapshot to an action and its reason.

The loop around it gathers the snapshot, calls ``decide`` once per tick,
logs the reason and carries out the action; every multi-step procedure (a
root takeover: fence, catch up, claim, promote, publish, serve) advances one
step per tick, each step re-checked against fresh state.
"""

from __future__ import annotations

from dataclasses import replace

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
from prodstate.core.elect import election, root_is_registered
from prodstate.core.follow import blame_pending, blamed_parent, follow, other_branches
from prodstate.core.model import (
    Member,
    Snapshot,
    Tier,
    ZkState,
)


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
        return _move_first(s, membership) or membership
    return _under_root(s)


def _under_root(s: Snapshot) -> Decision:
    """What a registered non-root node does about the root: wait, elect, or follow."""
    if s.root is None:
        if s.tier is Tier.LEAF:
            return Decision(Wait(), "no root is elected: keeping the current replication")
        return election(s)
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
    return follow(s)


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


def _move_first(s: Snapshot, membership: Decision) -> Decision | None:
    """The move of a leaf whose only news is its freshness and which is moving off its
    parent now (it fell, and its parent reports stale): moving first lets the next
    registration publish the fall with the new parent in one write, not two. None when it
    is not moving."""
    action = membership.action
    if not isinstance(action, Register) or not _freshness_only(s, action.member):
        return None
    move = _under_root(s)
    if not isinstance(move.action, Probe | Replicate) or move.action.name in s.deferred:
        return None
    return Decision(move.action, f"{move.reason}; publishing its freshness once moved")


def _membership(s: Snapshot) -> Decision | None:
    """Registration and candidacy housekeeping, if anything needs doing."""
    member = _member(s, available=_can_serve_leaves(s))
    if s.registered != member and not _moot(s, member) and not _fall_held(s, member):
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
    others = s.holds_root and s.redis.is_master and bool(other_branches(s))
    if others and s.leaf_replicas_allowed:
        return Decision(
            AllowLeafReplicas(False),
            f"root with {len(other_branches(s))} other branch(es): refusing the leaf "
            "replication identity, so that every acknowledgement comes from a branch",
        )
    if not others and not s.leaf_replicas_allowed:
        why = "no other branch" if s.holds_root else "not a serving root"
        return Decision(AllowLeafReplicas(True), f"{why}: admitting leaf replicas again")
    return None


# --- helpers -----------------------------------------------------------------------------


def _member(s: Snapshot, available: bool) -> Member:
    """This node's member znode as it should be. A leaf that blames its parent's link
    publishes the branch it will avoid before it moves: ZooKeeper answers the write only
    after every change it made before it, so if the parent had published its fall (the
    root lost: every branch falls), the leaf has been told by then, reads it, and does not
    move (it publishes again instead). At a branch's crash, one write still carries the
    fall and the branch avoided."""
    version = s.registered.version if s.registered else ""
    avoiding: tuple[str, ...] = ()
    if s.tier is Tier.LEAF:
        blamed = blamed_parent(s)
        avoiding = tuple(sorted(s.avoiding | {blamed} if blamed else s.avoiding))
    # The serving root is the heartbeat's source: it is not judged by it.
    fresh = s.freshness.fresh or (s.holds_root and s.redis.is_master)
    judging = not fresh and s.freshness.judging
    return Member(s.node_id, s.tier, s.address, available, version, fresh, judging, avoiding)


def _freshness_only(s: Snapshot, member: Member) -> bool:
    """True if a leaf's ``member`` differs from what it published in freshness only."""
    registered = s.registered
    if s.tier is not Tier.LEAF or registered is None:
        return False
    return replace(member, fresh=registered.fresh, judging=registered.judging) == registered


def _fall_held(s: Snapshot, member: Member) -> bool:
    """True while a leaf whose only news is its fall is about to blame its parent's link
    (``blame_pending``): it publishes the fall when it blames it, with the branch it will
    avoid, or at once if the parent turns out stale too. Only observers read a leaf's
    freshness (no agent decides on it), and a crashed branch's leaves write once each for
    their fall, not twice."""
    published = s.registered
    falls = published is not None and published.fresh and not member.fresh
    return falls and _freshness_only(s, member) and blame_pending(s)


def _moot(s: Snapshot, member: Member) -> bool:
    """True if ``member`` differs from what is published only by avoided branches dropped
    that are no longer registered: which parent this leaf should have is the same either
    way, so the write waits for the next real change (a crashed branch's leaves do not
    all write again when their avoid ends)."""
    registered = s.registered
    if registered is None or replace(member, avoiding=registered.avoiding) != registered:
        return False
    dropped = set(registered.avoiding) - set(member.avoiding)
    listed = {m.node_id for m in s.branches}
    return set(member.avoiding) <= set(registered.avoiding) and not dropped & listed


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
    if not other_branches(s):
        return 0, 0
    branch_addresses = {m.address for m in s.branches if m.node_id != s.node_id}
    attached = sum(1 for a in s.redis.replicas if a not in branch_addresses)
    return 1 + attached, attached


# --- freshness ----------------------------------------------------------------------------


def _unacknowledged(s: Snapshot) -> str:
    """Why this root must give up ("" if it need not): no other branch has acknowledged its
    stream for longer than ``stale_after`` while branches are registered. Its Redis has
    lost them (a cut, or a hung Redis): no write can be confirmed, and they cannot take
    over while it holds the root. It fences before it releases the root, so it cannot
    confirm a write once another branch may claim."""
    since = s.unacked_since
    if since is None or s.now - since <= s.policy.stale_after or not other_branches(s):
        return ""
    return (
        f"no branch has acknowledged the root's stream for {s.now - since:.1f}s (limit "
        f"{s.policy.stale_after:g}s) while {len(other_branches(s))} are registered: giving "
        f"up the root so that a branch that reaches the others can take over"
    )


def unacked_since(previous: float | None, s: Snapshot) -> float | None:
    """Since when this serving root has had no other branch acknowledging its stream (None
    while one does, while it is not a promoted root, or while no other branch is
    registered)."""
    r = s.redis
    if not (s.holds_root and r.is_master and s.root is not None and s.root.replid == r.replid):
        return None
    others = {m.address for m in other_branches(s)}
    if not others or others & set(r.acking):
        return None
    return s.now if previous is None else previous
