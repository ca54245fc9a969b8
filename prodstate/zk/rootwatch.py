"""Follow a cluster's root and branches in ZooKeeper, by watch, for clients."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from prodstate.core.model import DataError, Member, RootRecord, Tier
from prodstate.zk.paths import Layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RootView:
    """The root as last seen (None while no root is published) and the branches' addresses."""

    root: RootRecord | None
    branches: frozenset[str]
    version: int


class RootWatch:
    """Keep the current root and the set of branch addresses up to date, by watch.

    ``wait_for_change(version, timeout)`` lets a writer sleep until the view
    changes (a new root is published) instead of polling.
    """

    def __init__(self, zk: KazooClient, cluster: str) -> None:
        layout = Layout(cluster)
        self.zk = zk
        self.root_path = layout.root
        self.branch_path = layout.members(Tier.BRANCH)
        self._cond = threading.Condition()
        self._root: RootRecord | None = None
        self._branches: dict[str, str] = {}
        self._version = 0
        self._started = False

    def start(self) -> RootWatch:
        """Install the watches (the first reads happen before this returns)."""
        if not self._started:
            self._started = True
            self.zk.DataWatch(self.root_path, self._on_root)
            self.zk.DataWatch(self.branch_path, self._on_branch_parent)
        return self

    def _on_branch_parent(self, data: bytes | None, stat: object) -> bool | None:
        """Watch the branches once their parent znode exists (a ChildrenWatch on a missing
        node would stop for good); then this watch is no longer needed."""
        if stat is None:
            return None
        self.zk.ChildrenWatch(self.branch_path, self._on_branches, allow_session_lost=True)
        return False

    @property
    def view(self) -> RootView:
        """The current view."""
        with self._cond:
            return RootView(self._root, frozenset(self._branches.values()), self._version)

    def wait_for_change(self, version: int, timeout: float) -> RootView:
        """Block until the view's version differs from ``version``, or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != version, timeout=max(0.0, timeout))
        return self.view

    def _bump(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def _on_root(self, data: bytes | None, stat: object) -> None:
        root = None
        if data is not None and stat is not None and not getattr(stat, "ephemeralOwner", 0):
            log.warning("ignoring a root znode that is not ephemeral")
        elif data is not None and stat is not None:
            try:
                root = RootRecord.from_json(data, getattr(stat, "ephemeralOwner", 0))
            except DataError as exc:
                log.warning("ignoring malformed root znode", extra={"error": str(exc)})
        with self._cond:
            if root != self._root:
                self._root = root
                self._bump()

    def _on_branches(self, children: list[str]) -> None:
        known = dict(self._branches)
        current: dict[str, str] = {}
        for child in children:
            if child in known:
                current[child] = known[child]
                continue
            try:
                raw, stat = self.zk.get(f"{self.branch_path}/{child}")
                if not stat.ephemeralOwner:
                    raise DataError("it is not ephemeral: no agent's session holds it")
                current[child] = Member.from_znode(child, Tier.BRANCH, raw).address
            except NoNodeError:
                continue
            except (DataError, KazooException, KazooTimeoutError) as exc:
                log.warning("ignoring branch member", extra={"node": child, "error": str(exc)})
        with self._cond:
            if current != self._branches:
                self._branches = current
                self._bump()
