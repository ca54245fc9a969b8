"""Inspect a running tree from outside: who is root, who follows whom, what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.core.model import DataError, Lineage, Member, RootRecord, Tier
from prodstate.core.tree import build_status
from prodstate.redis.control import connect, read_state


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


def read_epoch(zk: KazooClient, cluster: str) -> int:
    """The epoch in the epoch znode; DataError if it does not parse, NoNodeError if gone."""
    raw, _ = zk.get(f"/prodstate/{cluster}/epoch")
    return Lineage.from_json(raw).epoch


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
    zk: KazooClient,
    cluster: str,
    branches: Mapping[str, str],
    leaves: Mapping[str, str],
    connect_options: Mapping[str, Any] | None = None,
) -> TreeReport:
    """Compare each node's Redis (by node id -> address) with the tree the agents should build.

    Only the given nodes count, whether registered or not: a branch missing from
    ``branches`` is no parent for leaves, and an unregistered one is unavailable.
    Heartbeat staleness is not checked (see :func:`prodstate.core.tree.build_status`).
    """
    zk.sync(f"/prodstate/{cluster}")
    root = read_root(zk, cluster)
    states = {}
    for node, address in {**branches, **leaves}.items():
        conn = connect(address, timeout=0.5, **(connect_options or {}))
        try:
            states[node] = read_state(conn)
        finally:
            conn.close()
    masters = {
        node: state.master
        if state.role == "slave"
        else ("(master)" if state.reachable else "(down)")
        for node, state in states.items()
    }
    registered = read_members(zk, cluster, str(Tier.BRANCH))
    members = {
        str(Tier.BRANCH): {
            node: registered.get(node) or Member(node, Tier.BRANCH, address, available=False)
            for node, address in branches.items()
        },
        str(Tier.LEAF): {
            node: Member(node, Tier.LEAF, address) for node, address in leaves.items()
        },
    }
    status = build_status(root, None, members, states, {}, now=0.0, stale_after=None)
    return TreeReport(root, masters, list(status.problems))
