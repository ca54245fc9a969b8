"""The root election: who leads it, what the leader reads, fences and catches up from
before it claims, and when it yields (pure)."""

from __future__ import annotations

from prodstate.core import switchover
from prodstate.core.actions import (
    Claim,
    Decision,
    FenceRemote,
    LeaveElection,
    Probe,
    Replicate,
    Wait,
)
from prodstate.core.model import FENCE_MIN_REPLICAS, Member, PeerState, RootRecord, Snapshot


def root_is_registered(root: RootRecord, branches: tuple[Member, ...]) -> bool:
    """True if ``root`` names a registered branch at its registered address (only a
    branch that won the election publishes a root; anything else is forged or stale)."""
    return any(m.node_id == root.node_id and m.address == root.address for m in branches)


def election_candidates(s: Snapshot) -> tuple[str, ...]:
    """Candidates in election order, keeping only registered branches (a stray or forged
    election znode must not stall the election or lead it)."""
    members = {m.node_id for m in s.branches} | {s.node_id}
    return tuple(c for c in s.candidates if c in members and c not in s.drained)


def election(s: Snapshot) -> Decision:
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
        # Cut from the previous root: but a candidate may have received more of its stream
        # (a cut reaches the branches a moment apart), and writes it acknowledged were
        # confirmed. Giving those up would lose them.
        ahead = _most_advanced(s, with_previous_root=False)
    if ahead is not None:
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


def _most_advanced(s: Snapshot, with_previous_root: bool = True) -> PeerState | None:
    """The fenced previous root (unless not ``with_previous_root``) or a candidate holding
    more of the history than this node."""
    sources = [p for p in s.peers if p.address != s.address]
    previous = s.previous_root if with_previous_root else None
    if previous is not None and previous.address != s.address:
        sources.append(previous)
    best: PeerState | None = None
    for peer in sources:
        r = peer.redis
        if not r.reachable or not s.lineage.knows(r) or r.offset <= s.redis.offset:
            continue
        if best is None or r.offset > best.redis.offset:
            best = peer
    return best


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
