"""Snapshot builders for the decision tests: keyword overrides over a healthy tree, and a
hypothesis strategy for arbitrary snapshots."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from prodstate.core.freshness import ASSUMED_FRESH, DEFAULT_POLICY, Freshness
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    Lineage,
    Member,
    PeerState,
    RedisState,
    RejoinMarks,
    RootRecord,
    Snapshot,
    Tier,
    ZkState,
)

ME, ROOT_ID = "me", "root"
NOW, SESSION = 1000.0, 42
REPLID, NEW_REPLID, EMPTY_REPLID, ZEROS = "a" * 40, "c" * 40, "e" * 40, "0" * 40


def addr(node_id: str) -> str:
    return f"{node_id}.example.net:6379"


ME_ADDR, ROOT_ADDR = addr(ME), addr(ROOT_ID)


def branch(node_id: str, available: bool = True) -> Member:
    return Member(node_id, Tier.BRANCH, addr(node_id), available)


def replica(master: str = ROOT_ADDR, **kw) -> RedisState:
    base = dict(reachable=True, role="slave", run_id="run-1", replid=REPLID, replid2=ZEROS)
    base.update(offset=1000, master=master, link_up=True)
    return RedisState(**{**base, **kw})


def master(**kw) -> RedisState:
    return replica(**{"master": "", "role": "master", "link_up": False, **kw})


#: What a Redis restarted with no data looks like: new run id, random replid, no replid2.
EMPTY = master(run_id="run-2", replid=EMPTY_REPLID, replid2=ZEROS, offset=0)


def aged(age: float, fresh: bool | None = None) -> Freshness:
    """A freshness record whose heartbeat last advanced ``age`` seconds before NOW (fresh
    unless that is past the default ``stale_after``, or as ``fresh`` says)."""
    verdict = age <= DEFAULT_POLICY.stale_after if fresh is None else fresh
    return Freshness("1.0", NOW - 100, NOW - age, verdict, checked_at=NOW, judged=True)


def peer(node_id: str, redis: RedisState) -> PeerState:
    return PeerState(node_id, addr(node_id), redis)


def snap(**kw) -> Snapshot:
    """A connected node (a branch unless ``tier`` says otherwise) replicating from the root."""
    tier = kw.get("tier", Tier.BRANCH)
    others = (branch(ROOT_ID), branch("b2"), branch("b3"))
    base = dict(
        node_id=ME,
        tier=tier,
        address=ME_ADDR,
        now=NOW,
        zk_state=ZkState.CONNECTED,
        suspended_since=None,
        session_timeout=10.0,
        session_id=SESSION,
        redis=replica(),
        branches=(*others, branch(ME)) if tier is Tier.BRANCH else others,
        candidates=(ROOT_ID, ME) if tier is Tier.BRANCH else (),
        in_election=tier is Tier.BRANCH,
        root=RootRecord(ROOT_ID, ROOT_ADDR, 3, REPLID, owner_session=7),
        root_confirmed_at=NOW - 1,
        lineage=Lineage(3, ROOT_ID, ROOT_ADDR, (REPLID,)),
    )
    base.update(kw)
    if "registered" not in kw:
        available = base["redis"].role == "slave"
        fresh = base.get("freshness", ASSUMED_FRESH).fresh
        base["registered"] = Member(base["node_id"], tier, ME_ADDR, available, fresh=fresh)
    return Snapshot(**base)


def root_snap(**kw) -> Snapshot:
    """This node is the serving root: published, confirmed, requiring one branch per write."""
    base = dict(
        root=RootRecord(ME, ME_ADDR, 4, REPLID, owner_session=SESSION, run_id="run-1"),
        redis=master(min_replicas_to_write=1),
        candidates=(ME, "b2"),
    )
    return snap(**{**base, **kw})


def election_snap(**kw) -> Snapshot:
    """No root; this branch leads the election; its root went away at offset 1000."""
    base = dict(root=None, root_confirmed_at=None, candidates=(ME, "b2"))
    base.update(redis=replica(link_up=False), branches=(branch("b2"), branch(ME)))
    return snap(**{**base, **kw})


# --- any snapshot: a hypothesis strategy over small pools of ids ----------------------------

POOL = [ME, ROOT_ID, "b2", "b3"]
IDS = [REPLID, NEW_REPLID, EMPTY_REPLID, ZEROS, ""]
mostly = st.sampled_from([True, True, True, False])
redis_states = st.builds(
    RedisState,
    reachable=mostly,
    role=st.sampled_from(["master", "slave", ""]),
    run_id=st.sampled_from(["run-1", "run-2"]),
    replid=st.sampled_from(IDS),
    replid2=st.sampled_from(IDS),
    offset=st.integers(0, 3),
    master=st.sampled_from(["", *map(addr, POOL)]),
    link_up=st.booleans(),
    sync_in_progress=st.sampled_from([False, False, False, True]),
    min_replicas_to_write=st.sampled_from([0, 1, 2, FENCE_MIN_REPLICAS]),
    loading=st.sampled_from([False, False, False, True]),
    replicas=st.lists(st.sampled_from([*map(addr, POOL), "leaf.example.net:6379"]), max_size=3)
    .map(sorted)
    .map(tuple),
    epoch_key=st.sampled_from([None, "", "3", "4", "99"]),
    acking=st.lists(st.sampled_from(list(map(addr, POOL))), max_size=2).map(sorted).map(tuple),
)
pool_ids = st.sampled_from(POOL)
rarely = mostly.map(lambda b: not b)
#: (node id, address): now and then another node at this node's address (a renamed node).
pool_nodes = st.builds(lambda n, clash: (n, ME_ADDR if clash else addr(n)), pool_ids, rarely)
peers = st.builds(lambda node, r: PeerState(*node, r), pool_nodes, redis_states)
times = st.floats(0, 2 * NOW)
raw_snapshots = st.builds(
    Snapshot,
    node_id=st.just(ME),
    tier=st.sampled_from(Tier),
    address=st.just(ME_ADDR),
    now=st.just(NOW),
    zk_state=st.sampled_from([*[ZkState.CONNECTED] * 4, *ZkState]),
    suspended_since=st.none() | times,
    session_timeout=st.floats(0.1, 60),
    session_id=st.sampled_from([SESSION, SESSION - 1]),
    redis=redis_states,
    branches=st.lists(
        st.builds(
            lambda n, up, fresh: Member(n[0], Tier.BRANCH, n[1], up, fresh=fresh),
            pool_nodes,
            st.booleans(),
            mostly,
        ),
        max_size=5,
    ).map(tuple),
    candidates=st.lists(pool_ids, unique=True).map(tuple),
    in_election=st.booleans(),
    root=st.none()
    | st.builds(
        lambda node, epoch, replid, previous, session, run_id: RootRecord(
            *node, epoch, replid, previous, session, run_id
        ),
        st.sampled_from([ME, *POOL]).map(lambda n: (n, addr(n))) | pool_nodes,
        st.integers(1, 9),
        st.sampled_from(IDS),
        st.sampled_from(["", *map(addr, POOL)]),
        st.sampled_from([SESSION, SESSION, SESSION - 1, 7]),
        st.sampled_from(["", "run-1", "run-1", "run-2"]),
    ),
    root_confirmed_at=st.none() | times,
    lineage=st.builds(
        lambda epoch, ids: Lineage(epoch, ROOT_ID, ROOT_ADDR, tuple(ids)),
        st.integers(0, 9),
        st.lists(st.sampled_from(IDS[:3]), unique=True, max_size=3),
    ),
    registered=st.none()
    | st.builds(Member, st.just(ME), st.sampled_from(Tier), st.just(ME_ADDR), st.booleans()),
    peers=st.lists(peers, max_size=3).map(tuple),
    previous_root=st.none() | peers,
    new_parent=st.none() | peers,
    configured=mostly,
    deferred=st.sampled_from([frozenset(), frozenset(), frozenset({"Configure"})]),
    probed=mostly,
    root_damage=st.sampled_from(["", "", "", "not JSON"]),
    lineage_damage=st.sampled_from(["", "", "", "epoch 1 below 4"]),
    zk_untrusted=st.sampled_from(["", "", "", "", "/prodstate/c has an ACL the agents cannot set"]),
    freshness=st.builds(lambda age, fresh: aged(age, fresh), st.floats(0, 60), mostly),
    master_since=st.none() | times,
    offset_since=st.none() | times,
    avoiding=st.sets(pool_ids, max_size=2).map(frozenset),
    rejoin=st.builds(
        RejoinMarks, st.sampled_from(["", *map(addr, POOL)]), st.none() | times, st.none() | times
    ),
    unacked_since=st.none() | times,
    held_off=rarely,
    untrusted_masters=st.sampled_from(
        [frozenset(), frozenset(), frozenset({addr("b2")}), frozenset({addr("b2"), addr("b3")})]
    ),
)


def settle(s: Snapshot, settled: bool) -> Snapshot:
    """Often make the registration and candidacy what they should be, to reach deeper states."""
    if not settled:
        return s
    r = s.redis
    knows = s.lineage.knows(r) and not r.sync_in_progress
    member = Member(ME, s.tier, ME_ADDR, r.role == "slave" and knows, fresh=s.freshness.fresh)
    return replace(s, registered=member, in_election=s.tier is Tier.BRANCH and knows)


snapshots = st.builds(settle, raw_snapshots, st.booleans())
