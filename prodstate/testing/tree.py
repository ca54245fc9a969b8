"""Inspect a running tree from outside: who is root, who follows whom, what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient

from prodstate.core.model import Member, RootRecord, Tier
from prodstate.core.tree import build_status
from prodstate.redis.control import read_state
from prodstate.redis.link import Link
from prodstate.zk.client import read_epoch, read_members, read_root
from prodstate.zk.paths import Layout

__all__ = ["TreeReport", "inspect_tree", "read_epoch", "read_members", "read_root"]


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


def inspect_tree(
    zk: KazooClient,
    cluster: str,
    branches: Mapping[str, str],
    leaves: Mapping[str, str],
    connect_options: Mapping[str, Any] | None = None,
) -> TreeReport:
    """Compare each node's Redis (by node id -> address) with the tree the agents should build.

    Only the given nodes count, whether registered or not: a branch missing from
    ``branches`` is no parent for leaves, and an unregistered one is unavailable. What
    the agents publish counts too: a node that reports stale is a problem, and a leaf is
    expected off the branches it says it avoids.
    Heartbeat staleness is not checked (see :func:`prodstate.core.tree.build_status`).
    """
    zk.sync(Layout(cluster).base)
    root = read_root(zk, cluster)
    states = {}
    for node, address in {**branches, **leaves}.items():
        with Link(address, timeout=0.5, **(connect_options or {})) as link:
            states[node] = read_state(link)
    masters = {
        node: state.master
        if state.role == "slave"
        else ("(master)" if state.reachable else "(down)")
        for node, state in states.items()
    }
    registered = read_members(zk, cluster, str(Tier.BRANCH))
    leaf_members = read_members(zk, cluster, str(Tier.LEAF))
    members = {
        str(Tier.BRANCH): {
            node: registered.get(node) or Member(node, Tier.BRANCH, address, available=False)
            for node, address in branches.items()
        },
        str(Tier.LEAF): {
            node: leaf_members.get(node) or Member(node, Tier.LEAF, address)
            for node, address in leaves.items()
        },
    }
    status = build_status(root, None, members, states, {}, now=0.0, stale_after=None)
    return TreeReport(root, masters, list(status.problems))
