"""Parent choice for leaves: rendezvous (highest random weight) hashing.

Every leaf ranks every branch by a hash of (leaf, branch) and takes the top
one. A branch leaving moves only the leaves whose top it was; a branch joining
takes only the leaves for which it now ranks first; and the load spreads
evenly because the scores are uniform.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterable

from prodstate.core.model import Member, RootRecord, Tier


def score(leaf_id: str, branch_id: str) -> int:
    """The rendezvous weight of ``branch_id`` for ``leaf_id``."""
    digest = hashlib.blake2b(f"{leaf_id}\x00{branch_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def choose_parent(leaf_id: str, branch_ids: Iterable[str]) -> str | None:
    """The branch ``leaf_id`` replicates from, or None when there is no branch."""
    return max(branch_ids, key=lambda b: (score(leaf_id, b), b), default=None)


def parent_of(
    node_id: str,
    tier: Tier | str,
    root: RootRecord,
    branches: Iterable[Member],
    avoid: Collection[str] = (),
    drained: Collection[str] = (),
    rejoining: bool = False,
) -> tuple[str, str]:
    """The address ``node_id`` should replicate from while ``root`` serves, and why.

    A branch follows the root. A leaf takes the branch rendezvous hashing picks among the
    available branches other than the root and those ``drained`` that report fresh or
    are still judging their copy (their agent just started; all of them when none does:
    the whole tree is behind, and moving helps nobody; all of them while ``rejoining``,
    the moments after the whole tree was behind, while branches catch up one by one),
    leaving out those in ``avoid`` unless that leaves none; the root itself when there is
    no branch.
    """
    if Tier(tier) is Tier.BRANCH:
        return root.address, f"branch follows root {root.node_id} (epoch {root.epoch})"
    live = {
        m.node_id: m
        for m in branches
        if m.tier is Tier.BRANCH
        and m.available
        and m.node_id not in (node_id, root.node_id)
        and m.node_id not in drained
    }
    fresh = {b: m for b, m in live.items() if m.fresh or m.judging or rejoining}
    pool = fresh or live
    kept = {b: m for b, m in pool.items() if b not in avoid} or pool
    parent = choose_parent(node_id, kept)
    if parent is None:
        return root.address, f"no live branch: leaf follows root {root.node_id}"
    why = f"rendezvous hashing picks branch {parent}"
    notes = []
    if fresh and len(fresh) < len(live):
        notes.append(f"stale: {', '.join(sorted(set(live) - set(fresh)))}")
    if len(kept) < len(pool):
        notes.append(f"avoiding: {', '.join(sorted(set(pool) - set(kept)))}")
    passed = sorted(d for d in drained if d != root.node_id and d in {m.node_id for m in branches})
    if passed:
        notes.append(f"drained: {', '.join(passed)}")
    if notes:
        why += f" (passing over {'; '.join(notes)})"
    return live[parent].address, why


def reaction_delay(max_jitter: float, rng: random.Random | None = None) -> float:
    """A uniformly random delay in [0, max_jitter) before reacting to a membership change."""
    if max_jitter <= 0:
        return 0.0
    return (rng or random).uniform(0, max_jitter)


def full_read_delay(interval: float, first: bool, rng: random.Random | None = None) -> float:
    """Seconds until an agent's next full re-read of ZooKeeper: ``interval``, but after its
    first read a uniformly random part of it, so that agents that started together (a
    fleet, or a storm of reconnections) do not all re-read in the same second ever after."""
    return (rng or random).uniform(0, interval) if first else interval
