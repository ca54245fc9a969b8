"""prodstate's znodes, behind one small class the agent loop drives.

Layout under ``/prodstate/<cluster>``::

    members/branch/<node-id>   ephemeral, JSON Member
    members/leaf/<node-id>     ephemeral, JSON Member
    election/n_<seq>           ephemeral sequential, data = node id (lowest leads)
    root                       ephemeral, JSON RootRecord, owned by the root's session
    epoch                      persistent, JSON Lineage (epoch, latest root, replids)

Every call is made only while CONNECTED and waits a bounded time, so the
loop never hangs on requests kazoo queues while it reconnects. "Store
unreachable" (StoreUnavailable) and "lost the race" (a False return) are
different outcomes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent
from kazoo.retry import KazooRetry

from prodstate.model import DataError, Lineage, Member, RootRecord, Tier, ZkState

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """ZooKeeper cannot be asked right now (not connected, or a request timed out)."""


@dataclass(frozen=True)
class View:
    """What the agent read from ZooKeeper in one refresh."""

    branches: tuple[Member, ...]
    candidates: tuple[str, ...]
    root: RootRecord | None
    lineage: Lineage
    lineage_version: int
    registered: Member | None
    in_election: bool
    read_at: float


class ZkStore:
    """Membership, election and root records for one agent."""

    def __init__(
        self,
        hosts: str,
        cluster: str,
        session_timeout: float,
        wake: Callable[[], None],
        request_timeout: float | None = None,
    ) -> None:
        self.base = f"/prodstate/{cluster}"
        self.session_timeout = session_timeout
        self.request_timeout = request_timeout or max(0.5, session_timeout / 3)
        self._wake = wake
        self._lock = threading.Lock()
        self.state = ZkState.LOST
        self.suspended_since: float | None = time.monotonic()
        self.session_id = 0
        self._election_node: str | None = None
        self._new_session = True
        self.client = KazooClient(
            hosts=hosts,
            timeout=session_timeout,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
        )
        self.client.add_listener(self._on_state)

    # --- connection ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; the state listener reports progress."""
        self.client.start_async()

    def stop(self) -> None:
        """Close the session (ephemeral znodes go at once) and stop kazoo."""
        try:
            self.client.stop()
        finally:
            self.client.close()

    def _on_state(self, state: str) -> None:
        now = time.monotonic()
        with self._lock:
            if state == KazooState.CONNECTED:
                self.state = ZkState.CONNECTED
                self.suspended_since = None
            elif state == KazooState.SUSPENDED:
                self.state = ZkState.SUSPENDED
                self.suspended_since = self.suspended_since or now
            else:
                self.state = ZkState.LOST
                self.suspended_since = self.suspended_since or now
                self._election_node = None
                self._new_session = True
        self._wake()

    @property
    def in_election(self) -> bool:
        """True while this agent's candidate znode exists (as far as it knows)."""
        return self._election_node is not None

    def connected_session(self) -> int:
        """The current session id if CONNECTED (syncing once after a new session)."""
        if self.state is not ZkState.CONNECTED:
            raise StoreUnavailable(f"ZooKeeper {self.state}")
        session_id = self.client.client_id[0] if self.client.client_id else 0
        if self._new_session or session_id != self.session_id:
            self._call(self.client.sync_async, self.base)
            self._ensure_paths()  # first: if it fails, the next call tries again
            self.session_id = session_id
            self._new_session = False
        return session_id

    def _ensure_paths(self) -> None:
        for path in ("members/branch", "members/leaf", "election", "epoch"):
            full = f"{self.base}/{path}"
            if self._call(self.client.exists_async, full) is None:
                with contextlib.suppress(NodeExistsError):
                    self._call(self.client.create_async, full, b"", makepath=True)

    def _call(self, method: Callable, *args: object, **kwargs: object) -> object:
        """Run a kazoo async call and wait a bounded time for its result."""
        if self.state is not ZkState.CONNECTED:
            raise StoreUnavailable(f"ZooKeeper {self.state}")
        try:
            return method(*args, **kwargs).get(timeout=self.request_timeout)
        except (NoNodeError, NodeExistsError, BadVersionError):
            raise
        except (KazooException, KazooTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"ZooKeeper request failed: {exc!r}") from exc

    def _watch(self, event: WatchedEvent) -> None:
        self._wake()

    # --- reads -----------------------------------------------------------------------------

    def read_view(self, node_id: str, tier: Tier, want_branches: bool = True) -> View:
        """Read members, candidates, root and lineage, leaving watches that wake the loop."""
        session_id = self.connected_session()
        branches: list[Member] = []
        if want_branches:
            path = f"{self.base}/members/branch"
            for child in sorted(self._call(self.client.get_children_async, path, self._watch)):
                member = self._read_member(f"{path}/{child}")
                if member is not None and member.node_id == child:
                    branches.append(member)
        registered = self._own_registration(node_id, tier, session_id)
        candidates: list[str] = []
        if tier is Tier.BRANCH:
            candidates = self._read_candidates()
        root = self._read_root()
        lineage, lineage_version = self._read_lineage()
        return View(
            branches=tuple(branches),
            candidates=tuple(candidates),
            root=root,
            lineage=lineage,
            lineage_version=lineage_version,
            registered=registered,
            in_election=self._election_node is not None,
            read_at=time.monotonic(),
        )

    def _read_member(self, path: str) -> Member | None:
        try:
            raw, _ = self._call(self.client.get_async, path, self._watch)
        except NoNodeError:
            return None
        try:
            return Member.from_json(raw)
        except DataError as exc:
            log.warning("ignoring malformed member znode", extra={"path": path, "error": str(exc)})
            return None

    def _own_registration(self, node_id: str, tier: Tier, session_id: int) -> Member | None:
        path = f"{self.base}/members/{tier}/{node_id}"
        try:
            raw, stat = self._call(self.client.get_async, path)
        except NoNodeError:
            return None
        if stat.ephemeralOwner != session_id:
            return None
        try:
            return Member.from_json(raw)
        except DataError:
            return None

    def _read_candidates(self) -> list[str]:
        path = f"{self.base}/election"
        children = self._call(self.client.get_children_async, path, self._watch)
        ordered = sorted((c for c in children if c.startswith("n_")), key=lambda c: c[-10:])
        if self._election_node and self._election_node.rsplit("/", 1)[1] not in children:
            self._election_node = None
        candidates = []
        for child in ordered:
            try:
                raw, _ = self._call(self.client.get_async, f"{path}/{child}")
            except NoNodeError:
                continue
            node = raw.decode(errors="replace")
            if node not in candidates:
                candidates.append(node)
        return candidates

    def _read_root(self) -> RootRecord | None:
        try:
            raw, stat = self._call(self.client.get_async, f"{self.base}/root", self._watch)
        except NoNodeError:
            self._call(self.client.exists_async, f"{self.base}/root", self._watch)
            return None
        try:
            return RootRecord.from_json(raw, owner_session=stat.ephemeralOwner)
        except DataError as exc:
            log.warning("ignoring malformed root znode", extra={"error": str(exc)})
            return None

    def _read_lineage(self) -> tuple[Lineage, int]:
        raw, stat = self._call(self.client.get_async, f"{self.base}/epoch", self._watch)
        try:
            return Lineage.from_json(raw), stat.version
        except DataError as exc:
            log.warning("ignoring malformed epoch znode", extra={"error": str(exc)})
            return Lineage(), stat.version

    # --- writes ----------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        """Create or update this agent's ephemeral member znode (replacing a stale one)."""
        session_id = self.connected_session()
        path = f"{self.base}/members/{member.tier}/{member.node_id}"
        data = member.to_json()
        try:
            _, stat = self._call(self.client.get_async, path)
        except NoNodeError:
            self._call(self.client.create_async, path, data, ephemeral=True)
            return
        if stat.ephemeralOwner == session_id:
            self._call(self.client.set_async, path, data)
            return
        log.warning(
            "replacing the member znode of a previous session",
            extra={"path": path, "owner": hex(stat.ephemeralOwner)},
        )
        self._call(self.client.delete_async, path, version=stat.version)
        self._call(self.client.create_async, path, data, ephemeral=True)

    def join_election(self, node_id: str) -> None:
        """Enter the root election (at the back of the queue)."""
        self.connected_session()
        if self._election_node is None:
            path = f"{self.base}/election/n_"
            self._election_node = self._call(
                self.client.create_async, path, node_id.encode(), ephemeral=True, sequence=True
            )

    def leave_election(self) -> None:
        """Leave the root election."""
        if self._election_node is not None:
            with contextlib.suppress(NoNodeError):
                self._call(self.client.delete_async, self._election_node)
            self._election_node = None

    def claim_root(self, record: RootRecord, lineage: Lineage, lineage_version: int) -> bool:
        """Atomically create the root znode and bump the epoch; False if another won."""
        self.connected_session()
        tx = self.client.transaction()
        tx.check(f"{self.base}/epoch", lineage_version)
        tx.create(f"{self.base}/root", record.to_json(), ephemeral=True)
        tx.set_data(f"{self.base}/epoch", lineage.to_json())
        results = self._call(tx.commit_async)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            log.info("root claim lost the race", extra={"results": [repr(r) for r in results]})
            return False
        return True

    def publish_replid(self, record: RootRecord, lineage: Lineage, lineage_version: int) -> bool:
        """Record the root Redis's replication id; False if the znodes changed meanwhile."""
        session_id = self.connected_session()
        path = f"{self.base}/root"
        _, stat = self._call(self.client.get_async, path)
        if stat.ephemeralOwner != session_id:
            return False
        tx = self.client.transaction()
        tx.set_data(path, record.to_json(), version=stat.version)
        tx.set_data(f"{self.base}/epoch", lineage.to_json(), version=lineage_version)
        results = self._call(tx.commit_async)
        return not any(isinstance(r, Exception) for r in results)

    def confirm_root(self) -> RootRecord | None:
        """Read the root znode afresh (one request), for a root checking it still holds it."""
        self.connected_session()
        return self._read_root()

    def release_root(self) -> None:
        """Delete the root znode if this session owns it."""
        session_id = self.connected_session()
        path = f"{self.base}/root"
        try:
            _, stat = self._call(self.client.get_async, path)
            if stat.ephemeralOwner == session_id:
                self._call(self.client.delete_async, path, version=stat.version)
        except NoNodeError:
            pass
