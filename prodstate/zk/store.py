"""prodstate's znodes (laid out in :mod:`prodstate.zk.paths`), behind one small class the
agent loop drives.

Reads never write: a root znode or epoch znode this agent's root must repair is reported
in the View (``root_damage``, ``lineage_damage``), and the repair is an action.

Every call is made only while CONNECTED and waits a bounded time, so the
loop never hangs on requests kazoo queues while it reconnects. "Store
unreachable" (StoreUnavailable) and "lost the race" (a False return) are
different outcomes.

``read_view`` re-reads only what changed: what it read with a watch is kept in a
``prodstate.zk.cache.ReadCache`` until that watch fires, this agent writes the znode, or
the connection or session changes (kazoo drops its watches when the connection drops);
``full=True`` reads everything afresh.

The member znodes are read and written by :mod:`prodstate.zk.members` (a leaf keeps its
own, and its list of branches, without the watches a branch uses).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from kazoo.client import KazooClient, KazooState, TransactionRequest
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import Callback, EventType, WatchedEvent
from kazoo.retry import KazooRetry

from prodstate.core.model import (
    DataError,
    Lineage,
    Member,
    RootRecord,
    Tier,
    ZkState,
)
from prodstate.security.credentials import NONE as NO_CREDENTIALS
from prodstate.security.credentials import Credentials
from prodstate.security.tls import TlsFiles
from prodstate.zk.acl import auth_data, prodstate_acl
from prodstate.zk.cache import DataZnode, ReadCache, Uncached
from prodstate.zk.election import Election
from prodstate.zk.errors import StoreUnavailable
from prodstate.zk.guard import AclGuard
from prodstate.zk.maintenance import Drain, Pause, Switchover, load_znode, maintenance_view
from prodstate.zk.members import Members
from prodstate.zk.paths import (
    Layout,
)
from prodstate.zk.session import SavedSession

log = logging.getLogger(__name__)


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
    lineage_readable: bool = True
    #: Why the root znode this session owns needs repairing ("" if intact; see Snapshot).
    root_damage: str = ""
    #: Why the epoch znode needs repairing by this root ("" if intact; see Snapshot).
    lineage_damage: str = ""
    #: The maintenance pause, if one is set (expired or not), and the switchover requested.
    pause: Pause | None = None
    switchover: Switchover | None = None
    #: The drained branches.
    drains: tuple[Drain, ...] = ()


class ZkStore:
    """Membership, election and root records for one agent."""

    def __init__(
        self,
        hosts: str,
        cluster: str,
        session_timeout: float,
        wake: Callable[[], None],
        request_timeout: float | None = None,
        credentials: Credentials = NO_CREDENTIALS,
        tls: TlsFiles | None = None,
        resume: SavedSession | None = None,
        on_session: Callable[[SavedSession], None] | None = None,
    ) -> None:
        """``credentials``: the agents' ZooKeeper identity; ``tls``: connect over TLS;
        ``resume``: a session a previous process of this agent held, taken back if it is
        still alive; ``on_session`` is told of every new session (to save it)."""
        self.layout = Layout(cluster)
        self.base = self.layout.base
        #: ACL of every znode this agent creates (None: ZooKeeper's open default).
        self.acl = prodstate_acl(credentials)
        self.request_timeout = request_timeout or max(0.5, session_timeout / 3)
        self._wake = wake
        self._lock = threading.Lock()
        self.state = ZkState.LOST
        self.suspended_since: float | None = time.monotonic()
        self.session_id = 0
        self._new_session = True
        #: The root and epoch records this session last wrote, to repair them if overwritten.
        self._own_root: RootRecord | None = None
        self._own_lineage: Lineage | None = None
        #: What read_view read with a watch, until the watch fires (see prodstate.zk.cache).
        self.cache = ReadCache()
        #: Requests sent to ZooKeeper by this store (for tests and benchmarks).
        self.requests = 0
        self._on_session = on_session
        self.resumed_session = resume.session_id if resume else 0
        self.client = KazooClient(
            client_id=(resume.session_id, resume.password) if resume else None,
            hosts=hosts,
            timeout=session_timeout,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            auth_data=auth_data(credentials) or None,
            default_acl=self.acl,
            **(tls.kazoo_kwargs() if tls else {}),
        )
        self.client.add_listener(self._on_state)
        #: The agents' ACL on the persistent znodes, and this agent's candidacy (recipes).
        self.guard = AclGuard(self.client, self._request, self.layout, self.acl)
        self.election = Election(
            self.client,
            self._request,
            self.layout,
            self._watch,
            prefix=resume.election_prefix if resume else None,
        )
        self.members = Members(
            self.client, self._request, self.layout, self.cache, self._watch, self._commit,
            self._settle,
        )  # fmt: skip
        self._started = False

    # --- connection ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (once); the state listener reports progress."""
        if not self._started:
            self._started = True
            self.client.start_async()

    def stop(self) -> None:
        """Close the session (ephemeral znodes go at once) and stop kazoo."""
        try:
            self.client.stop()
        finally:
            self.client.close()

    def _on_state(self, state: str) -> None:
        now = time.monotonic()
        # kazoo forgets every watch when the connection drops and does not set them again
        # on reconnect, so any state change means nothing cached is watched any more.
        self.cache.clear()
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
                self.election.node = None
                self._new_session = True
                self._own_root = self._own_lineage = None
        self._wake()

    @property
    def in_election(self) -> bool:
        """True while this agent's candidate znode exists (as far as it knows)."""
        return self.election.node is not None

    @property
    def election_prefix(self) -> str:
        """The name of this store's election znodes before their sequence."""
        return self.election.prefix

    @property
    def untrusted(self) -> str:
        """Why this cluster's znodes cannot be trusted ("" while they can)."""
        return self.guard.untrusted

    def recheck_paths(self) -> None:
        """Re-create prodstate's persistent znodes and re-read everything on the next call
        (after a read found one missing, e.g. deleted by hand)."""
        self._new_session = True

    def connected_session(self) -> int:
        """The current session id if CONNECTED (syncing once after a new session)."""
        if self.state is not ZkState.CONNECTED:
            raise StoreUnavailable(f"ZooKeeper {self.state}")
        client_id = self.client.client_id
        session_id = client_id[0] if client_id else 0
        if self._new_session or session_id != self.session_id:
            self._call(self.client.sync_async, self.base)
            self.guard.ensure_paths()  # a request that fails here is retried on the next call
            self.cache.clear()
            if session_id != self.session_id and client_id and self._on_session:
                self._on_session(SavedSession(session_id, client_id[1], self.election.prefix))
            self.session_id = session_id
            self._new_session = False
        return session_id

    def _request(self, method: Callable, *args: object, **kwargs: object) -> object:
        """``_call`` for the recipes, looked up at each request."""
        return self._call(method, *args, **kwargs)

    def _call(self, method: Callable, *args: object, **kwargs: object) -> object:
        """Run a kazoo async call and wait a bounded time for its result."""
        if self.state is not ZkState.CONNECTED:
            raise StoreUnavailable(f"ZooKeeper {self.state}")
        self.requests += 1
        try:
            return method(*args, **kwargs).get(timeout=self.request_timeout)
        except (NoNodeError, NodeExistsError, BadVersionError):
            raise
        except (KazooException, KazooTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"ZooKeeper request failed: {exc!r}") from exc

    def _commit(self, tx: TransactionRequest) -> list[Exception]:
        """Commit a transaction; the errors its operations answered (none if it applied)."""
        results = cast(list, self._call(tx.commit_async))
        return [r for r in results if isinstance(r, Exception)]

    def _watch(self, event: WatchedEvent) -> None:
        # A NONE event (path None) is kazoo dropping its watches: forget everything.
        if event.type == EventType.DELETED:
            self.cache.deleted(event.path)
        else:
            self.cache.invalidate(None if event.type == EventType.NONE else event.path)
        self._wake()

    def _settle(self) -> bool:
        """Wait until kazoo has handled the watch events it received before now (they run on
        its event thread, an answer wakes its caller at once); False after the request
        timeout."""
        done = threading.Event()
        self.client.handler.dispatch_callback(Callback("settle", done.set, ()))
        return done.wait(self.request_timeout)

    def _touched(self, *paths: str) -> None:
        """This agent wrote these znodes: read them again (their watches may fire later)."""
        for path in paths:
            self.cache.invalidate(self.layout.path(path))

    # --- reads -----------------------------------------------------------------------------

    def read_view(self, node_id: str, tier: Tier, full: bool = False) -> View:
        """Read members, candidates, root and lineage, leaving watches that wake the loop.

        Only paths never read, or whose watch fired since, are fetched (all of them with
        ``full``); a failed read forgets everything cached.
        """
        session_id = self.connected_session()
        if full:
            self.cache.clear()
        try:
            return self._read_view(node_id, tier, session_id)
        except BaseException:
            self.cache.clear()
            raise

    def _read_view(self, node_id: str, tier: Tier, session_id: int) -> View:
        branches = self.members.branches(tier)
        registered = self.members.own_registration(node_id, tier, session_id)
        candidates: list[str] = []
        if tier is Tier.BRANCH:
            candidates = self.election.read(session_id)
        root, root_damage = self._read_root(session_id)
        owns_root = root is not None and root.held_by(node_id, session_id)
        if owns_root and root is not None and self._own_root is None and not root_damage:
            self._own_root = root  # a resumed session: the record its earlier process wrote
        lineage, lineage_version, readable, lineage_damage = self._read_lineage(owns_root)
        adopt = owns_root and readable and not lineage_damage and self._own_lineage is None
        if adopt and root is not None and lineage.epoch == root.epoch:
            self._own_lineage = lineage
        return View(
            branches=branches,
            candidates=tuple(candidates),
            root=root,
            lineage=lineage,
            lineage_version=lineage_version,
            registered=registered,
            in_election=self.election.node is not None,
            lineage_readable=readable,
            root_damage=root_damage,
            lineage_damage=lineage_damage,
            **self._read_maintenance(),
        )

    def _root_znode(self) -> DataZnode | None:
        """The root znode (cached while its watch is pending); None if there is none."""
        path = self.layout.root

        def load() -> DataZnode | Uncached[None] | None:
            for _ in range(3):
                try:
                    raw, stat = self._call(self.client.get_async, path, self._watch)
                    return DataZnode(raw, stat.ephemeralOwner, stat.version)
                except NoNodeError:
                    # exists leaves a watch that fires when the root is created.
                    if self._call(self.client.exists_async, path, self._watch) is None:
                        return None
            self._wake()  # created and deleted under us three times: look again soon
            return Uncached(None)

        return self.cache.read(path, load)

    def _read_root(self, session_id: int) -> tuple[RootRecord | None, str]:
        """The root record, and why it needs repairing ("" if it does not): a malformed root
        znode owned by this session reads as the record this session wrote."""
        znode = self._root_znode()
        if znode is None:
            return None, ""
        if not znode.owner:
            log.warning("ignoring a root znode that is not ephemeral: no session holds it")
            return None, ""
        try:
            return RootRecord.from_json(znode.raw, owner_session=znode.owner), ""
        except DataError as exc:
            own = self._own_root
            if own is None or not session_id or znode.owner != session_id:
                log.warning("ignoring malformed root znode", extra={"error": str(exc)})
                return None, ""
            return replace(own, owner_session=session_id), str(exc)

    def _read_maintenance(self) -> dict[str, Any]:
        """The pause, the switchover request and the drains (View fields): one children
        read of the maintenance folder, and the data of what is set (each cached while its
        watch is pending; see :mod:`prodstate.zk.maintenance`)."""
        folder = self.layout.maintenance
        try:
            children = self.members.read_children(folder)
        except NoNodeError:
            return {}  # made on the next new session (ensure_paths)

        def data(child: str) -> DataZnode | None:
            path = f"{folder}/{child}"
            return self.cache.read(
                path, lambda: load_znode(self._call, self.client, path, self._watch)
            )

        return maintenance_view(children, data)

    def _read_lineage(self, owns_root: bool) -> tuple[Lineage, int, bool, str]:
        """The lineage, its znode version, whether the znode was readable (a malformed one
        reads as empty, which must not be mistaken for a cluster that never had a root), and
        why the root must repair it ("" if it need not): for the live root a malformed
        epoch znode, or one below its own epoch, reads as the lineage it wrote."""
        path = self.layout.epoch

        def load() -> DataZnode:
            raw, stat = self._call(self.client.get_async, path, self._watch)
            return DataZnode(raw, stat.ephemeralOwner, stat.version)

        znode: DataZnode = self.cache.read(path, load)
        raw, version = znode.raw, znode.version
        own = self._own_lineage
        try:
            lineage = Lineage.from_json(raw)
            if not owns_root or own is None or lineage.epoch >= own.epoch:
                return lineage, version, True, ""
            problem = f"epoch {lineage.epoch} below the live root's {own.epoch} (recreated?)"
        except DataError as exc:
            if not owns_root or own is None:
                log.warning(
                    "malformed epoch znode: no root can be claimed until it is repaired",
                    extra={"error": str(exc)},
                )
                return Lineage(), version, False, ""
            problem = str(exc)
        return own, version, True, problem

    # --- writes ----------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        """Create or update this agent's ephemeral member znode (replacing a stale one)."""
        self.members.register(member, self.connected_session())

    def join_election(self, node_id: str) -> None:
        """Enter the root election (at the back of the queue), with one candidate znode."""
        self.election.join(node_id, self.connected_session())

    def leave_election(self) -> None:
        """Leave the root election (every candidate znode of this store's session)."""
        self.election.leave(self.connected_session())

    def claim_root(self, record: RootRecord, lineage: Lineage, lineage_version: int) -> bool:
        """Atomically create the root znode and bump the epoch; False if another won."""
        self.connected_session()
        tx = self.client.transaction()
        tx.check(self.layout.epoch, lineage_version)
        tx.create(self.layout.root, record.to_json(), ephemeral=True)
        tx.set_data(self.layout.epoch, lineage.to_json())
        try:
            failed = self._commit(tx)
        finally:
            self._touched("root", "epoch")
        if failed:  # a failed transaction answers with an error for every operation
            log.info("root claim lost the race", extra={"results": [repr(r) for r in failed]})
            return False
        self._own_root, self._own_lineage = record, lineage
        return True

    def publish_replid(self, record: RootRecord, lineage: Lineage, lineage_version: int) -> bool:
        """Record the root Redis's replication id; False if the znodes changed meanwhile."""
        session_id = self.connected_session()
        path = self.layout.root
        _, stat = self._call(self.client.get_async, path)
        if stat.ephemeralOwner != session_id:
            return False
        tx = self.client.transaction()
        tx.set_data(path, record.to_json(), version=stat.version)
        tx.set_data(self.layout.epoch, lineage.to_json(), version=lineage_version)
        try:
            failed = self._commit(tx)
        finally:
            self._touched("root", "epoch")
        if failed:
            return False
        self._own_root, self._own_lineage = record, lineage
        return True

    def confirm_root(self) -> tuple[RootRecord | None, str]:
        """Read the root znode afresh (one request), for a root checking it still holds it;
        the record and why it needs repairing ("" if it does not)."""
        session_id = self.connected_session()
        self._touched("root")
        return self._read_root(session_id)

    def repair_root(self) -> None:
        """Write this session's own root record over the root znode it owns (a version-checked
        write: a znode that changed meanwhile is read again, not overwritten)."""
        session_id = self.connected_session()
        own, path = self._own_root, self.layout.root
        if own is None:
            raise StoreUnavailable("no root record written by this session to repair from")
        try:
            _, stat = self._call(self.client.get_async, path)
            if stat.ephemeralOwner == session_id:
                self._call(self.client.set_async, path, own.to_json(), stat.version)
        finally:
            self._touched("root")

    def repair_epoch(self, version: int) -> None:
        """Write this root's own lineage over the epoch znode at ``version``."""
        self.connected_session()
        own = self._own_lineage
        if own is None:
            raise StoreUnavailable("no lineage written by this session to repair from")
        try:
            self._call(self.client.set_async, self.layout.epoch, own.to_json(), version)
        finally:
            self._touched("epoch")

    def release_root(self) -> None:
        """Delete the root znode if this session owns it."""
        session_id = self.connected_session()
        path = self.layout.root
        try:
            _, stat = self._call(self.client.get_async, path)
            if stat.ephemeralOwner == session_id:
                self._call(self.client.delete_async, path, version=stat.version)
        except NoNodeError:
            pass
        finally:
            self._touched("root")
        self._own_root = self._own_lineage = None
