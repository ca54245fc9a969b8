"""A planned switchover of the root, one step per tick (pure; :func:`decide` calls it).

At the root it names: read the target's Redis; fence (writes wait, none is lost); wait
until the target holds the root's offset; hand the master role over in Redis and
release the root (``HandOver``). Redis's own ``FAILOVER`` makes the old root's Redis
the target's replica once the target has acknowledged every byte, so no replica holds
a byte the new master lacks and every one resumes with a partial resync. In the
election that follows, the target leads whatever its place in the queue and claims with
the next epoch, while every other candidate waits for it.

Anything that stops it (the target gone, unreadable or no longer following the root,
a pause, the deadline) ends the switchover where it is: the root unfences and serves on,
and the election, if it had begun, goes back to its usual order.
"""

from __future__ import annotations

from prodstate.core.actions import Decision, Fence, HandOver, Probe, Wait
from prodstate.core.maintenance import Switchover
from prodstate.core.model import Snapshot, Tier
from prodstate.core.tree import NodeStatus, TreeStatus


def active_switchover(s: Snapshot) -> Switchover | None:
    """The switchover that applies to this tree now: for the serving root (or, while the
    root is being handed over, the last one) at its epoch, before its deadline, and not
    while paused."""
    sw = s.switchover
    if sw is None or s.paused:
        return None
    if s.root is not None:
        source, epoch = s.root.node_id, s.root.epoch
    else:
        source, epoch = s.lineage.node_id, s.lineage.epoch
    return sw if sw.applies(source, epoch, s.wall_clock) else None


def root_step(s: Snapshot) -> Decision | None:
    """The serving root's next step of a switchover away from it (None: there is none,
    or it cannot go on, and the root serves as usual)."""
    sw = active_switchover(s)
    if sw is None or s.root is None or sw.source != s.node_id:
        return None
    target = next((m for m in s.branches if m.node_id == sw.target and m.available), None)
    if target is None:
        return None
    what = f"switchover {sw.id[:8]} to {sw.target}"
    if not s.probed:
        return Decision(
            Probe(candidates=((target.node_id, target.address),)), f"{what}: reading its offset"
        )
    peer = next((p for p in s.peers if p.node_id == target.node_id), None)
    if peer is None or not peer.redis.reachable or peer.redis.master != s.address:
        return None
    r = s.redis
    if not r.fenced:
        return Decision(
            Fence(), f"{what}: fencing the root (writes wait) until it holds offset {r.offset}"
        )
    if peer.redis.offset < r.offset:
        return Decision(
            Wait(), f"{what}: waiting for it to reach offset {r.offset} (at {peer.redis.offset})"
        )
    return Decision(
        HandOver(target.node_id, target.address),
        f"{what}: it holds offset {peer.redis.offset} (root at {r.offset}): handing it the "
        f"master role and releasing the root for it to claim epoch {s.root.epoch + 1}",
    )


def handed_over(s: Snapshot) -> Decision | None:
    """For a root whose Redis already follows the switchover's target (the hand-over took
    in Redis but the root znode is still held): release it, rather than promote back."""
    sw = active_switchover(s)
    if sw is None or s.root is None or sw.source != s.node_id or s.redis.is_master:
        return None
    target = next((m for m in s.branches if m.node_id == sw.target), None)
    if target is None or s.redis.master != target.address:
        return None
    return Decision(
        HandOver(target.node_id, target.address),
        f"switchover {sw.id[:8]}: this Redis follows {target.node_id} already: releasing the root",
    )


def awaiting_release(s: Snapshot) -> Decision | None:
    """For the switchover's target whose Redis has taken the master role while the old
    root still holds the root znode: wait for the release (following the old root would
    undo the hand-over)."""
    sw = active_switchover(s)
    if sw is None or sw.target != s.node_id or not s.redis.is_master:
        return None
    if s.root is None or s.root.node_id != sw.source:
        return None
    return Decision(
        Wait(),
        f"switchover {sw.id[:8]}: this Redis took the master role from {sw.source}: "
        "waiting for it to release the root",
    )


def election_leader(s: Snapshot, candidates: tuple[str, ...]) -> tuple[str, str]:
    """Who leads the election, and why: the switchover's target while it stands for
    election, else the first in the queue."""
    sw = active_switchover(s)
    if sw is not None and s.root is None and sw.target in candidates:
        return sw.target, f"switchover {sw.id[:8]} hands the root to {sw.target}"
    return candidates[0], f"{candidates[0]} leads the election"


def choose_target(status: TreeStatus, wanted: str | None = None) -> tuple[str | None, str]:
    """The branch a switchover hands the root to, and why (None and the reasons each
    branch was refused, when there is none): ``wanted`` if it is eligible, else the
    eligible branch furthest along the root's stream (the smallest lag, then by name).

    Eligible: a registered branch other than the root, available to leaves, judging its
    copy fresh, its Redis reachable and replicating from the root with its link up.
    """
    root = status.root
    if root is None:
        return None, "there is no root to hand over"
    if status.pause_text:
        return None, f"the cluster is {status.pause_text}: resume it first"
    branches = {n.node_id: n for n in status.nodes if n.tier == Tier.BRANCH}
    if wanted is not None:
        if wanted == root.node_id:
            return None, f"{wanted} is the root already"
        if wanted not in branches:
            return None, f"{wanted} is not a registered branch"
        why = _ineligible(branches[wanted], root.address)
        return (None, f"{wanted} {why}") if why else (wanted, f"{wanted} as asked")
    refused, eligible = [], []
    for node_id, n in sorted(branches.items()):
        if node_id == root.node_id:
            continue
        why = _ineligible(n, root.address)
        if why:
            refused.append(f"{node_id} {why}")
        else:
            eligible.append(n)
    if not eligible:
        listed = "; ".join(refused) or "no other branch is registered"
        return None, f"no branch is eligible: {listed}"
    best = min(eligible, key=lambda n: (n.lag if n.lag is not None else 1 << 62, n.node_id))
    return best.node_id, f"{best.node_id} is the furthest along (lag {best.lag} bytes)"


def _ineligible(n: NodeStatus, root_address: str) -> str:
    """Why branch ``n`` cannot take the root ("" if it can)."""
    if n.drained:
        return "is drained"
    if not n.reachable:
        return "is unreachable"
    if not n.available:
        return "is not available (still syncing, or withdrawn)"
    if n.judging:
        return "has not judged its copy yet (its agent just started)"
    if not n.fresh:
        return "reports its copy stale"
    if n.master != root_address or not n.link_up:
        return f"does not replicate from the root ({n.link}, from {n.master or 'nothing'})"
    return ""
