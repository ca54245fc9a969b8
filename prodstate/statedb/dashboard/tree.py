"""The replication tree as the dashboard draws it (pure): each node with its health, the
leaves of a large branch folded, and what changed between two readings of the tree."""

from __future__ import annotations

from dataclasses import dataclass

from prodstate.core.tree import Arrangement, NodeStatus, Placed, TreeStatus, arrange

#: A node with more children than this folds its healthy leaves.
LEAVES_SHOWN = 12
#: Most folded leaves named under a node (the others are counted).
CHIPS_SHOWN = 100


def health(node: NodeStatus) -> str:
    """``bad`` (a problem), ``warn`` (judging its copy, drained, or stale by its agent's
    measure) or ``ok``."""
    if node.problems:
        return "bad"
    if node.judging or node.drained or not node.fresh:
        return "warn"
    return "ok"


@dataclass(frozen=True)
class NodeView:
    """A node, its health, the nodes under it drawn in full, and those folded away."""

    node: NodeStatus
    health: str
    is_root: bool
    shown: tuple[NodeView, ...]
    folded: tuple[NodeView, ...]

    @property
    def size(self) -> int:
        """This node and every node under it."""
        return 1 + sum(c.size for c in (*self.shown, *self.folded))


def view(placed: Placed, root_id: str | None, leaves_shown: int = LEAVES_SHOWN) -> NodeView:
    """``placed`` as drawn: when it has more than ``leaves_shown`` children, its healthy
    leaves (with nothing under them) are folded and the rest drawn."""
    children = [view(c, root_id, leaves_shown) for c in placed.children]
    shown, folded = children, []
    if len(children) > leaves_shown:
        shown, folded = [], []
        for c in children:
            quiet = c.health == "ok" and c.node.tier == "leaf" and not (c.shown or c.folded)
            (folded if quiet else shown).append(c)
    node = placed.node
    return NodeView(node, health(node), node.node_id == root_id, tuple(shown), tuple(folded))


@dataclass(frozen=True)
class TreeView:
    """The whole tree as drawn, with its tally of nodes by health."""

    tops: tuple[NodeView, ...]
    under_absent_root: tuple[NodeView, ...]
    rest: tuple[NodeView, ...]
    tally: dict[str, int]


def tree_view(status: TreeStatus, leaves_shown: int = LEAVES_SHOWN) -> TreeView:
    """``status`` arranged as a tree (see :func:`prodstate.core.tree.arrange`)."""
    arranged: Arrangement = arrange(status)
    root_id = status.root.node_id if status.root else None
    tally = {"ok": 0, "warn": 0, "bad": 0}
    for node in status.nodes:
        tally[health(node)] += 1
    return TreeView(
        tuple(view(p, root_id, leaves_shown) for p in arranged.tops),
        tuple(view(p, root_id, leaves_shown) for p in arranged.under_absent_root),
        tuple(view(Placed(n), root_id, leaves_shown) for n in arranged.rest),
        tally,
    )


@dataclass(frozen=True)
class Change:
    """Something that changed in the tree, seen at ``at``."""

    at: float
    node: str | None
    text: str
    bad: bool


def tree_changes(before: TreeStatus | None, after: TreeStatus, at: float) -> list[Change]:
    """What differs from ``before`` to ``after``: the root, nodes joining and leaving, a
    node's parent, a node's problems appearing or clearing."""
    if before is None:
        return []
    changes = []
    old_root = before.root.node_id if before.root else None
    new_root = after.root.node_id if after.root else None
    if (old_root, before.epoch) != (new_root, after.epoch):
        text = f"root is now {new_root} (epoch {after.epoch})" if new_root else "no root"
        changes.append(Change(at, new_root, text + f", was {old_root}", new_root is None))
    old = {n.node_id: n for n in before.nodes}
    new = {n.node_id: n for n in after.nodes}
    for name in sorted(old.keys() - new.keys()):
        changes.append(Change(at, name, f"{old[name].tier} {name} left", True))
    for name in sorted(new.keys() - old.keys()):
        changes.append(Change(at, name, f"{new[name].tier} {name} joined", False))
    for name in sorted(old.keys() & new.keys()):
        was, now = old[name], new[name]
        if was.parent != now.parent and now.parent is not None:
            changes.append(Change(at, name, f"{name} now replicates from {now.parent}", False))
        if now.problems and not was.problems:
            changes.append(Change(at, name, "; ".join(now.problems), True))
        elif was.problems and not now.problems:
            changes.append(Change(at, name, f"{name} is healthy again", False))
    return changes
