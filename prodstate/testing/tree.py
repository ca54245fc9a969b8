"""Inspect a running tree from outside: who is root, who follows whom, what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.model import DataError, Member, RootRecord
from prodstate.parent import choose_parent
from prodstate.redisctl import connect, read_state


@dataclass(frozen=True)
class TreeReport:
    """The root record, every node's Redis state, and the problems found."""

    root: RootRecord | None
    masters: dict[str, str]
    problems: list[str]

    @property
    def healthy(self) -> bool:
        """True when the tree is exactly what the agents should have built."""
        return self.root is not None and not self.problems


def read_root(zk: KazooClient, cluster: str) -> RootRecord | None:
    """The current root record, or None."""
    try:
        raw, stat = zk.get(f"/prodstate/{cluster}/root")
    except NoNodeError:
        return None
    return RootRecord.from_json(raw, stat.ephemeralOwner)


def read_members(zk: KazooClient, cluster: str, tier: str) -> dict[str, Member]:
    """Registered members of one tier, by node id."""
    path = f"/prodstate/{cluster}/members/{tier}"
    members = {}
    try:
        children = zk.get_children(path)
    except NoNodeError:
        return {}
    for child in children:
        try:
            members[child] = Member.from_json(zk.get(f"{path}/{child}")[0])
        except (NoNodeError, DataError):
            continue
    return members


def inspect_tree(
    zk: KazooClient, cluster: str, branches: Mapping[str, str], leaves: Mapping[str, str]
) -> TreeReport:
    """Compare each node's Redis (by node id -> address) with the tree the agents should build."""
    zk.sync(f"/prodstate/{cluster}")
    root = read_root(zk, cluster)
    problems: list[str] = []
    masters: dict[str, str] = {}
    states = {}
    for node, address in {**branches, **leaves}.items():
        conn = connect(address, timeout=0.5)
        try:
            states[node] = state = read_state(conn)
        finally:
            conn.close()
        masters[node] = (
            state.master if state.role == "slave" else ("(master)" if state.reachable else "(down)")
        )
    if root is None:
        return TreeReport(None, masters, ["no root elected"])
    available = {
        m.node_id: m.address
        for m in read_members(zk, cluster, "branch").values()
        if m.available and m.node_id != root.node_id and m.node_id in branches
    }
    for node in branches:
        if node != root.node_id and node not in available:
            problems.append(f"branch {node} is not (yet) available to leaves")
    for node, state in states.items():
        if node == root.node_id:
            if not state.is_master:
                problems.append(f"root {node} is not a master")
            continue
        if node in branches:
            expected = root.address
        else:
            parent = choose_parent(node, available)
            expected = available[parent] if parent else root.address
        if state.master != expected:
            problems.append(f"{node} replicates from {masters[node]}, expected {expected}")
        elif not state.link_up:
            problems.append(f"{node} link to {expected} is down")
    return TreeReport(root, masters, problems)
