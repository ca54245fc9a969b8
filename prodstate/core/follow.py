"""Whom a node replicates from while a root serves: its rendezvous parent, unless the
move would cost a full resync that waiting avoids, a drain paces it, an empty leaf should
wait for a branch at a cold start, or its link to its parent is stale (pure)."""

from __future__ import annotations

from prodstate.core import switchover
from prodstate.core.actions import Decision, Probe, Replicate, Wait
from prodstate.core.model import Member, RedisState, RejoinMarks, Snapshot, Tier
from prodstate.core.rendezvous import parent_of

#: Seconds an empty leaf that sees no branch but the root waits for branches to register
#: (a fleet's leaves may start before its branches).
COLD_START_REGISTER_WAIT = 5.0


def follow_target(s: Snapshot, blamed: str | None = None) -> tuple[str, str]:
    """The address this node should replicate from while a root is serving, and why
    (staying off the branches it avoids, and ``blamed``)."""
    assert s.root is not None
    avoid = s.avoiding | {blamed} if blamed else s.avoiding
    branches = [m for m in s.branches if m.address not in s.untrusted_masters]
    return parent_of(s.node_id, s.tier, s.root, branches, avoid, s.drained, rejoining(s))


def rejoining(s: Snapshot) -> bool:
    """True in the moments after every branch this leaf could follow had fallen behind (as
    when the root is lost): until ``rejoin_grace`` after the first turned fresh again, the
    leaf chooses among all of them, so that it does not move to the first to catch up
    and back to its own. A branch that falls behind fresh ones is passed over at once."""
    marks = s.rejoin
    if s.tier is not Tier.LEAF or not marks.after_none_fresh or marks.fresh_since is None:
        return False
    return s.now - marks.fresh_since < s.policy.rejoin_grace


def rejoin_marks(previous: RejoinMarks, s: Snapshot) -> RejoinMarks:
    """What a leaf notes at each snapshot of the published freshness of the branches it
    could follow: whether none reports fresh, and since when one has."""
    if s.tier is not Tier.LEAF:
        return RejoinMarks()
    exclude = s.root.node_id if s.root is not None else None
    live = [m for m in other_branches(s, exclude) if m.node_id not in s.drained]
    if not live:
        return RejoinMarks()
    if not any(m.fresh or m.judging for m in live):
        return RejoinMarks(none_fresh=True)
    if previous.fresh_since is not None:
        return previous
    return RejoinMarks(False, s.now, previous.none_fresh)


def follow(s: Snapshot) -> Decision:
    assert s.root is not None
    taking_over = switchover.awaiting_release(s)
    if taking_over is not None:
        return taking_over
    blamed = blamed_parent(s)
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
    if s.tier is Tier.LEAF and s.redis.master and s.view_outdated:
        return Decision(Wait(), f"{why}, once it has read what ZooKeeper has just told of")
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
        unread = _unread_and_stale(new.redis, target, s)
        if unread:
            return Decision(Wait(), f"{why}, but it {unread}: waiting")
        when_caught_up = _can_resume(new.redis, s)
        waiting = _not_ready(new.redis, s, resume=when_caught_up)
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
        m for m in other_branches(s, s.root.node_id) if m.address not in s.untrusted_masters
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


def _unread_and_stale(parent: RedisState, address: str, s: Snapshot) -> str:
    """Why a leaf holding the tree's data should not move to a parent it could not read
    that does not report fresh ("" if it may): in the moments after a new root, when a
    leaf chooses among all branches, such a parent may be the cut former root, and only
    reading it shows whether it is linked to the new root. A fresh parent that cannot be
    read is moved to: waiting would not make it readable."""
    r = s.redis
    if parent.reachable or not (r.role == "slave" and s.lineage.knows(r)):
        return ""
    member = next((m for m in s.branches if m.address == address), None)
    if member is None or member.fresh:
        return ""
    return "could not be read and does not report fresh (it may be cut from the root)"


def _not_ready(parent: RedisState, s: Snapshot, resume: bool) -> str:
    """Why a leaf holding the tree's data should not move to ``parent`` yet ("" if it may
    move now, or holds none: an empty leaf needs a full copy anyway). ``resume``: the leaf
    can resume where it is (``_can_resume``).

    Redis answers a PSYNC it cannot serve (a replication id it does not know, or an offset
    past its own) with a full resync, and a parent without a live link to the root has
    nothing fresher to give. A branch that still follows another master, is not linked to
    the root yet, or is behind this leaf on the same stream gets there within moments (its
    agent reacts without jitter, and a branch whose agent is gone is soon unregistered), so
    the leaf waits for it, even with its own link down. Seen when a leaf's own parent is
    promoted: its link drops for a moment while the branch it moves to is still switching
    to the new root, or catching up on it. A parent that names the root with its link down
    may also be a former root, cut off with writes the new root never received: a leaf
    that took them would need a full resync later. It is moved to once linked, or passed
    over once it reports stale.
    """
    assert s.root is not None
    r = s.redis
    if not (r.role == "slave" and s.lineage.knows(r)) or not parent.reachable:
        return ""
    if parent.master != s.root.address:
        return (
            f"is not yet in sync with root {s.root.node_id}: still follows "
            f"{parent.master or 'no master'}"
        )
    if not parent.link_up or parent.sync_in_progress:
        return f"is not yet in sync with root {s.root.node_id}: no live link to it"
    # Behind on the same stream, it passes this leaf's offset within moments; a leaf that
    # cannot resume on another replication id may hold writes no branch will ever have.
    if parent.offset < r.offset and (resume or parent.replid == r.replid):
        return f"is behind this node ({parent.offset} < {r.offset})"
    return ""


def _stale_for(s: Snapshot) -> float:
    """How long this node's copy has been stale on its current link: the heartbeat's age,
    counted from no earlier than when it started following its current master."""
    age = s.freshness.age(s.now) or 0.0
    if s.master_since is not None:
        age = min(age, s.now - s.master_since)
    return age


def blamed_parent(s: Snapshot) -> str | None:
    """The branch this leaf should move off because their link is stale: the leaf's copy
    has been stale for longer than ``leaf_stale_after`` on that link while the branch
    reports fresh, and another fresh branch is there to move to (None otherwise). Not
    while a watch has told of a change it has not read: the parent's fall may be it."""
    if _stale_for(s) <= s.policy.leaf_stale_after or s.view_outdated:
        return None
    return _suspect_parent(s)


def blame_pending(s: Snapshot) -> bool:
    """True while this stale leaf would blame its parent's link but has not been stale on it
    for ``leaf_stale_after`` yet, or has yet to read what a watch told of: it is about to
    move, unless the parent turns out to have fallen."""
    early = _stale_for(s) <= s.policy.leaf_stale_after or s.view_outdated
    return early and _suspect_parent(s) is not None


def _suspect_parent(s: Snapshot) -> str | None:
    """``blamed_parent`` but for how long the copy has been stale."""
    if s.tier is not Tier.LEAF or s.root is None or s.freshness.fresh:
        return None
    r = s.redis
    if r.role != "slave":
        return None
    if r.sync_in_progress:
        return None  # a full copy is on its way (Redis's repl-timeout ends one that stalls)
    branches = other_branches(s, exclude=s.root.node_id)
    parent = next((m for m in branches if m.address == r.master), None)
    if parent is None or not parent.fresh:
        return None
    skip = s.avoiding | {parent.node_id}
    if not any(m.fresh and m.node_id not in skip for m in branches):
        return None
    return parent.node_id


def other_branches(s: Snapshot, exclude: str | None = None) -> list[Member]:
    skip = {s.node_id, exclude}
    return [m for m in s.branches if m.available and m.node_id not in skip]
