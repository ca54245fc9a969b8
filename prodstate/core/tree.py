"""The live tree as ZooKeeper and every node's Redis describe it, with its problems.

:func:`build_status` is pure: it compares what each Redis reports with what the
agents should have built from the znodes. Reading those inputs is
:func:`prodstate.ops.status.collect_status`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from prodstate.core.heartbeat import MAX_FUTURE, age_of
from prodstate.core.maintenance import Pause
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    UNREACHABLE,
    Lineage,
    Member,
    RedisState,
    RootRecord,
    Tier,
)
from prodstate.core.rendezvous import parent_of


@dataclass(frozen=True)
class NodeStatus:
    """One registered node: its Redis as read, where it should replicate from, what is wrong."""

    node_id: str
    tier: str
    address: str
    available: bool
    reachable: bool
    role: str
    link: str
    master: str
    parent: str | None
    expected_parent: str | None
    link_up: bool
    offset: int | None
    lag: int | None
    staleness: float | None
    problems: tuple[str, ...] = ()
    #: The agent's own verdict on its copy, and the branches it stays off (a leaf whose
    #: link from them went stale), as published in its member znode.
    fresh: bool = True
    judging: bool = False
    avoiding: tuple[str, ...] = ()
    #: Drained of its leaves (``prodstate drain``).
    drained: bool = False


@dataclass(frozen=True)
class TreeStatus:
    """The root record, every node's status and all problems found (tree-wide and per node)."""

    root: RootRecord | None
    epoch: int
    nodes: tuple[NodeStatus, ...]
    problems: tuple[str, ...]
    #: The maintenance pause, if one is set, and how it reads now ("" if none).
    pause: Pause | None = None
    pause_text: str = ""

    @property
    def healthy(self) -> bool:
        """True when there is a root and nothing is wrong."""
        return self.root is not None and not self.problems

    def to_json(self) -> str:
        """The status as a JSON document."""
        root = None
        if self.root is not None:
            root = {k: getattr(self.root, k) for k in ("node_id", "address", "epoch", "replid")}
        nodes = [{**asdict(n), "problems": list(n.problems)} for n in self.nodes]
        doc = {"healthy": self.healthy, "root": root, "epoch": self.epoch, "nodes": nodes}
        pause = None
        if self.pause is not None:
            pause = {**asdict(self.pause), "text": self.pause_text}
        return json.dumps({**doc, "pause": pause, "problems": list(self.problems)}, indent=2)

    def render_text(self) -> str:
        """An indented tree: the root, each branch with the leaves under it, then the rest."""
        return "\n".join(_render(self))


def _link(state: RedisState) -> str:
    if not state.reachable:
        return "unreachable"
    if state.loading:
        return "loading"
    if state.role == "master":
        return "master"
    if state.sync_in_progress:
        return "syncing"
    return "up" if state.link_up else "down"


def build_status(
    root: RootRecord | None,
    lineage: Lineage | None,
    members_by_tier: Mapping[str, Mapping[str, Member]],
    redis_states: Mapping[str, RedisState],
    heartbeats: Mapping[str, float | None],
    now: float,
    stale_after: float | None,
    extra_problems: Sequence[str] = (),
    pause: Pause | None = None,
    drained: frozenset[str] = frozenset(),
) -> TreeStatus:
    """Compare each registered node's Redis with the tree the agents should build.

    ``members_by_tier`` maps "branch"/"leaf" to members by node id; ``redis_states``
    and ``heartbeats`` (the root's clock as replicated to each node, None if absent)
    are by node id. ``stale_after=None`` skips the staleness checks. ``pause``: the
    maintenance pause, if one is set (shown, not a problem); ``drained``: the branches
    drained of their leaves.
    """
    problems = list(extra_problems)
    members: dict[str, Member] = {}
    for tier in (Tier.BRANCH, Tier.LEAF):
        for node_id, member in sorted(members_by_tier.get(str(tier), {}).items()):
            if member.tier != tier:
                problems.append(f"{node_id} is registered under {tier} but says {member.tier}")
            if node_id in members:
                problems.append(f"{node_id} is registered as both branch and leaf")
                continue
            members[node_id] = member
    if not members:
        problems.append("no nodes registered")
    if root is None:
        problems.append("no root elected")
    elif lineage is not None and lineage.epoch != root.epoch:
        problems.append(f"root epoch {root.epoch} differs from lineage epoch {lineage.epoch}")

    root_state = redis_states.get(root.node_id, UNREACHABLE) if root else UNREACHABLE
    root_offset = root_state.offset if root_state.reachable and not root_state.loading else None
    if root is not None:
        problems.extend(_root_problems(root, root_state, root.node_id in members))
    by_address = {m.address: m.node_id for m in members.values()}
    if root is not None:
        by_address.setdefault(root.address, root.node_id)

    # Only branches can be parents: each node's rendezvous ranks them, not every member.
    branches = tuple(m for m in members.values() if m.tier is Tier.BRANCH)
    nodes = []
    for node_id, member in members.items():
        state = redis_states.get(node_id, UNREACHABLE)
        is_root = root is not None and node_id == root.node_id
        expected = None
        if root is not None and not is_root:
            expected, _ = parent_of(node_id, member.tier, root, branches, member.avoiding, drained)
        mine = _node_problems(member, state, is_root, expected)
        if is_root and state.reachable and not state.is_master and not state.loading:
            mine.append(f"root {node_id} is not a master")
        known = state.reachable and not state.loading
        offset = state.offset if known else None
        lag = root_offset - offset if root_offset is not None and offset is not None else None
        beat = heartbeats.get(node_id) if known else None
        staleness = age_of(beat, now)
        if stale_after is not None and known:
            if beat is not None and staleness is None:
                mine.append(
                    f"{node_id} holds a heartbeat {beat - now:.1f}s in the future, beyond "
                    f"the {MAX_FUTURE:g}s allowed for clock skew"
                )
            elif staleness is None:
                mine.append(f"{node_id} holds no heartbeat from the root")
            elif staleness > stale_after:
                mine.append(f"{node_id} is stale: last root heartbeat {staleness:.1f}s ago")
        problems.extend(mine)
        nodes.append(
            NodeStatus(
                node_id=node_id,
                tier=str(member.tier),
                address=member.address,
                available=member.available,
                reachable=state.reachable,
                role=state.role,
                link=_link(state),
                master=state.master,
                parent=by_address.get(state.master) if state.master else None,
                expected_parent=expected,
                link_up=state.link_up,
                offset=offset,
                lag=lag,
                staleness=round(staleness, 3) if staleness is not None else None,
                problems=tuple(mine),
                fresh=member.fresh,
                judging=member.judging,
                drained=node_id in drained,
                avoiding=member.avoiding,
            )
        )
    masters = sorted(n.node_id for n in nodes if n.reachable and n.role == "master")
    if len(masters) > 1:
        problems.append(f"{len(masters)} masters: {', '.join(masters)}")
    return TreeStatus(
        root,
        root.epoch if root else (lineage.epoch if lineage else 0),
        tuple(nodes),
        tuple(problems),
        pause,
        pause.describe(now) if pause is not None else "",
    )


def _root_problems(root: RootRecord, state: RedisState, registered: bool) -> list[str]:
    problems = [] if registered else [f"root {root.node_id} is not registered as a member"]
    if not registered and not state.reachable:
        problems.append(f"root {root.node_id} Redis at {root.address} is unreachable")
    if state.is_master and state.min_replicas_to_write >= FENCE_MIN_REPLICAS:
        problems.append(f"root {root.node_id} is fenced: it refuses writes")
    elif state.is_master and state.min_replicas_to_write > len(state.replicas):
        problems.append(
            f"root {root.node_id} refuses writes: it needs {state.min_replicas_to_write} "
            f"replica(s) attached, has {len(state.replicas)}"
        )
    if state.is_master and not state.fenced and state.epoch_key_differs(root.epoch):
        problems.append(
            f"root {root.node_id} Redis holds epoch key {state.epoch_key[:20]!r}, but its epoch in "
            f"ZooKeeper is {root.epoch}: every write is refused"
        )
    if root.run_id and state.run_id and state.run_id != root.run_id:
        problems.append(f"root {root.node_id} Redis restarted since it was elected")
    return problems


def _node_problems(
    member: Member, state: RedisState, is_root: bool, expected: str | None
) -> list[str]:
    node = member.node_id
    if not state.reachable:
        return [f"{member.tier} {node} is registered but its Redis at {member.address} is down"]
    if state.loading:
        return [f"{member.tier} {node} Redis is loading its dataset"]
    problems = []
    if member.tier == Tier.BRANCH and not is_root and not member.available:
        problems.append(f"branch {node} is not (yet) available to leaves")
    if not member.fresh and not member.judging:
        problems.append(f"{member.tier} {node} reports its copy stale (its agent's measure)")

    if expected is None:
        return problems
    if state.role == "master":
        problems.append(f"{member.tier} {node} has no parent (it is a master), expected {expected}")
    elif state.master != expected:
        problems.append(f"{node} replicates from {state.master or '?'}, expected {expected}")
    elif not state.link_up:
        problems.append(f"{node} link to {expected} is down")
    return problems


# --- text ------------------------------------------------------------------------------------


def _line(n: NodeStatus) -> str:
    parts = [f"{n.node_id} ({n.tier}, {n.address})", n.link]
    if n.lag is not None:
        parts.append(f"lag {n.lag}")
    if n.staleness is not None:
        parts.append(f"heartbeat {n.staleness:.1f}s old by the clocks")
    verdict = "judging (agent started)" if n.judging else "STALE (agent)"
    parts.append("fresh" if n.fresh else verdict)
    if n.avoiding:
        parts.append(f"staying off {', '.join(n.avoiding)} (stale link)")
    if n.drained:
        parts.append("DRAINED")
    text = "  ".join(parts)
    return f"{text}  ! {'; '.join(n.problems)}" if n.problems else text


@dataclass(frozen=True)
class Placed:
    """A node where the tree holds it, with the nodes replicating from it."""

    node: NodeStatus
    children: tuple[Placed, ...] = ()


@dataclass(frozen=True)
class Arrangement:
    """The nodes as a tree: the root first, then any other master (each with the nodes
    under it); the nodes under a root that is not registered; the nodes attached to none."""

    tops: tuple[Placed, ...]
    under_absent_root: tuple[Placed, ...]
    rest: tuple[NodeStatus, ...]


#: Deepest level drawn (a replication loop must not recurse forever).
MAX_DEPTH = 8


def arrange(status: TreeStatus) -> Arrangement:
    """Place every node under the node it replicates from (an unreachable node where it
    belongs, so its children still show): branches before leaves, each by id."""
    root = status.root
    order = {str(Tier.BRANCH): 0, str(Tier.LEAF): 1}
    nodes = sorted(status.nodes, key=lambda n: (order.get(n.tier, 2), n.node_id))
    shown: set[str] = set()

    by_parent: dict[str, list[NodeStatus]] = {}
    for n in nodes:
        under = n.master or (n.expected_parent if not n.reachable else None)
        if under:
            by_parent.setdefault(under, []).append(n)

    def children(address: str, depth: int) -> tuple[Placed, ...]:
        placed = []
        for child in by_parent.get(address, ()):
            if child.node_id not in shown and depth < MAX_DEPTH:
                shown.add(child.node_id)
                placed.append(Placed(child, children(child.address, depth + 1)))
        return tuple(placed)

    tops = [n for n in nodes if root and n.node_id == root.node_id]
    tops += [n for n in nodes if n.reachable and n.role == "master" and n not in tops]
    placed_tops = []
    for top in tops:
        shown.add(top.node_id)
        placed_tops.append(Placed(top, children(top.address, 1)))
    orphans = children(root.address, 1) if root and root.node_id not in shown else ()
    rest = tuple(n for n in nodes if n.node_id not in shown)
    return Arrangement(tuple(placed_tops), orphans, rest)


def _render(status: TreeStatus) -> list[str]:
    root = status.root
    head = f"root {root.node_id} ({root.address})" if root else "no root elected"
    lines = [f"{head}  epoch {status.epoch}  {'healthy' if status.healthy else 'UNHEALTHY'}"]
    if status.pause_text:
        lines.append(f"MAINTENANCE: {status.pause_text} (no failover, no moves)")
    arranged = arrange(status)

    def draw(placed: Placed, depth: int) -> None:
        lines.append("  " * depth + _line(placed.node))
        for child in placed.children:
            draw(child, depth + 1)

    for top in arranged.tops:
        draw(top, 0)
    for child in arranged.under_absent_root:
        draw(child, 1)
    if arranged.rest:
        lines.append("not attached to the tree:")
        lines += ["  " + _line(n) for n in arranged.rest]
    if status.problems:
        lines.append(f"problems ({len(status.problems)}):")
        lines += [f"  - {p}" for p in status.problems]
    return lines
