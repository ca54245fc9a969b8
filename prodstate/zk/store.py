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
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

from kazoo.client import KazooClient, KazooState, TransactionRequest
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.retry import KazooRetry
from kazoo.security import ACL

from prodstate.core.model import (
    DataError,
    Lineage,
    Member,
    RootRecord,
    Tier,
    ZkState,
    candidate_from_znode,
)
from prodstate.security.credentials import NONE as NO_CREDENTIALS
from prodstate.security.credentials import Credentials
from prodstate.zk.acl import acl_text, auth_data, creates_beyond, prodstate_acl, same_acl
from prodstate.zk.cache import DataZnode, MemberZnode, ReadCache, Uncached
from prodstate.zk.paths import (
    GUARDED,
    OPEN_FOLDERS,
    PERSISTENT,
    TOP,
    Layout,
    candidate_prefix,
    ordered_candidates,
)

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """ZooKeeper cannot be asked right now (not connected, or a request timed out)."""


class UntrustedZnodes(StoreUnavailable):
    """A prodstate znode keeps an ACL the agents cannot set: they refuse to act on it."""


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
    ) -> None:
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
        self._election_node: str | None = None
        #: The name of this store's election znodes before their sequence (``n_<uuid>_``):
        #: how it finds a candidate whose create reply was lost (see join_election).
        self.election_prefix = candidate_prefix(uuid.uuid4().hex)
        self._new_session = True
        #: The root and epoch records this session last wrote, to repair them if overwritten.
        self._own_root: RootRecord | None = None
        self._own_lineage: Lineage | None = None
        #: What read_view read with a watch, until the watch fires (see prodstate.zk.cache).
        self.cache = ReadCache()
        #: Requests sent to ZooKeeper by this store (for tests and benchmarks).
        self.requests = 0
        self.client = KazooClient(
            hosts=hosts,
            timeout=session_timeout,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            auth_data=auth_data(credentials) or None,
            default_acl=self.acl,
        )
        self.client.add_listener(self._on_state)
        #: Why this cluster's znodes cannot be trusted ("" while they can; see _ensure_paths).
        self.untrusted = ""
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
                self._election_node = None
                self._new_session = True
                self._own_root = self._own_lineage = None
        self._wake()

    @property
    def in_election(self) -> bool:
        """True while this agent's candidate znode exists (as far as it knows)."""
        return self._election_node is not None

    def recheck_paths(self) -> None:
        """Re-create prodstate's persistent znodes and re-read everything on the next call
        (after a read found one missing, e.g. deleted by hand)."""
        self._new_session = True

    def connected_session(self) -> int:
        """The current session id if CONNECTED (syncing once after a new session)."""
        if self.state is not ZkState.CONNECTED:
            raise StoreUnavailable(f"ZooKeeper {self.state}")
        session_id = self.client.client_id[0] if self.client.client_id else 0
        if self._new_session or session_id != self.session_id:
            self._call(self.client.sync_async, self.base)
            self._ensure_paths()  # a request that fails here is retried on the next call
            self.cache.clear()
            self.session_id = session_id
            self._new_session = False
        return session_id

    def _ensure_paths(self) -> None:
        """Create prodstate's persistent znodes; with credentials, give each the agents' ACL
        (no world CREATE anywhere, ``/prodstate`` included). UntrustedZnodes when one keeps
        an ACL the agents cannot change: someone else owns it, and the agents refuse to act
        on a cluster they cannot vouch for."""
        self.untrusted = ""
        self._secure()  # what someone else made first is vouched for before it is used
        for path in PERSISTENT:
            full = self.layout.path(path)
            if self._call(self.client.exists_async, full) is None:
                with contextlib.suppress(NodeExistsError):
                    self._call(self.client.create_async, full, b"", makepath=True)
        self._secure()

    def _secure(self) -> None:
        """Give every persistent znode that exists the agents' ACL (with credentials);
        UntrustedZnodes naming those whose ACL the agents cannot set."""
        if self.acl is None:
            return
        if self._call(self.client.exists_async, TOP) is not None:
            self._ensure_acl(TOP, self.acl)  # shared by clusters: theirs to set, if not ours
        problems = []
        for path in GUARDED:
            full = self.layout.path(path)
            if self._call(self.client.exists_async, full) is None:
                continue
            previous, problem = self._ensure_acl(full, self.acl)
            problems += [problem] if problem else []
            if previous and path in OPEN_FOLDERS and creates_beyond(previous, self.acl):
                self._purge_unvouched(full)
        if problems:
            self.untrusted = "; ".join(problems)
            raise UntrustedZnodes(self.untrusted)

    def _ensure_acl(self, path: str, acl: list[ACL]) -> tuple[list[ACL], str]:
        """Set ``acl`` on a persistent znode made before credentials (or with older ones):
        the ACL it replaced ([] if none), and why it could not ("" if it is ``acl`` now)."""
        current, stat = self._call(self.client.get_acls_async, path)
        if same_acl(current, acl):
            return [], ""
        try:
            self._call(self.client.set_acls_async, path, acl, stat.aversion)
        except StoreUnavailable as exc:
            log.warning("cannot set the ACL of a znode", extra={"path": path, "error": str(exc)})
            return [], f"{path} has an ACL the agents cannot set ({acl_text(current)})"
        log.info("set the ACL of a znode", extra={"path": path, "acl": acl_text(acl)})
        return current, ""

    def _purge_unvouched(self, folder: str) -> None:
        """Delete what was planted in ``folder`` while others could create in it: every
        child whose ACL is not the agents' own."""
        assert self.acl is not None
        for child in self._call(self.client.get_children_async, folder):
            path = f"{folder}/{child}"
            try:
                acl, _ = self._call(self.client.get_acls_async, path)
                if not same_acl(acl, self.acl):
                    self._call(self.client.delete_async, path)
                    log.warning(
                        "deleted a znode made while its folder was open to anyone",
                        extra={"path": path, "acl": acl_text(acl)},
                    )
            except NoNodeError:
                continue

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
        self.cache.invalidate(None if event.type == EventType.NONE else event.path)
        self._wake()

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
        branches: list[Member] = []
        for child in self._read_children(self.layout.members(Tier.BRANCH)):
            znode = self._read_member(Tier.BRANCH, child)
            if znode is not None and znode.member is not None:
                branches.append(znode.member)
        registered = self._own_registration(node_id, tier, session_id)
        candidates: list[str] = []
        if tier is Tier.BRANCH:
            candidates = self._read_candidates(session_id)
        root, root_damage = self._read_root(session_id)
        owns_root = root is not None and root.held_by(node_id, session_id)
        lineage, lineage_version, readable, lineage_damage = self._read_lineage(owns_root)
        return View(
            branches=tuple(branches),
            candidates=tuple(candidates),
            root=root,
            lineage=lineage,
            lineage_version=lineage_version,
            registered=registered,
            in_election=self._election_node is not None,
            lineage_readable=readable,
            root_damage=root_damage,
            lineage_damage=lineage_damage,
        )

    def _read_children(self, path: str) -> list[str]:
        """The sorted children of ``path`` (cached); the cache forgets those that went."""

        def load() -> list[str]:
            return sorted(self._call(self.client.get_children_async, path, self._watch))

        children: list[str] = self.cache.read(path, load)
        present = {f"{path}/{child}" for child in children}
        self.cache.forget([p for p in self.cache.cached_under(path) if p not in present])
        return children

    def _read_member(self, tier: Tier, node_id: str) -> MemberZnode | None:
        """A member znode (cached while its watch is pending); None if it does not exist,
        a None member if it is malformed or names another node or tier."""
        path = self.layout.member(tier, node_id)

        def load() -> MemberZnode | Uncached[None]:
            try:
                raw, stat = self._call(self.client.get_async, path, self._watch)
            except NoNodeError:
                return Uncached(None)  # no watch was left: the children watch reports it
            try:
                member: Member | None = Member.from_znode(node_id, tier, raw)
                if not stat.ephemeralOwner:
                    raise DataError("it is not ephemeral: no agent's session holds it")
            except DataError as exc:
                log.warning(
                    "ignoring malformed member znode", extra={"path": path, "error": str(exc)}
                )
                member = None
            return MemberZnode(member, stat.ephemeralOwner)

        return self.cache.read(path, load)

    def _own_registration(self, node_id: str, tier: Tier, session_id: int) -> Member | None:
        znode = self._read_member(tier, node_id)
        if znode is None or znode.owner != session_id:
            return None
        return znode.member

    def _read_candidates(self, session_id: int) -> list[str]:
        """The node ids standing for election, in order; a candidate of this store that its
        session owns but did not know of (a create whose reply was lost) is adopted."""
        path = self.layout.election
        children = self._call(self.client.get_children_async, path, self._watch)
        if self._election_node and self._election_node.rsplit("/", 1)[1] not in children:
            self._election_node = None
        candidates = []
        for child in ordered_candidates(children):
            try:
                raw, stat = self._call(self.client.get_async, f"{path}/{child}")
            except NoNodeError:
                continue
            if (
                self._election_node is None
                and child.startswith(self.election_prefix)
                and stat.ephemeralOwner == session_id
            ):
                self._election_node = f"{path}/{child}"
            try:
                if not stat.ephemeralOwner:
                    raise DataError("it is not ephemeral: no agent's session holds it")
                node = candidate_from_znode(raw)
            except DataError as exc:
                log.warning("ignoring election znode", extra={"node": child, "error": str(exc)})
                continue
            if node not in candidates:
                candidates.append(node)
        return candidates

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
        session_id = self.connected_session()
        relative = f"members/{member.tier}/{member.node_id}"
        try:
            self._register(member, self.layout.path(relative), session_id)
        finally:
            self._touched(relative, f"members/{member.tier}")

    def _register(self, member: Member, path: str, session_id: int) -> None:
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
        # One transaction: a reader never sees the member missing, so a restarted agent
        # does not send its leaves elsewhere for the moment between a delete and a create.
        tx = self.client.transaction()
        tx.delete(path, version=stat.version)
        tx.create(path, data, ephemeral=True)
        failed = self._commit(tx)
        if failed:  # it changed meanwhile: the agent logs this and tries again next tick
            raise failed[0]

    def join_election(self, node_id: str) -> None:
        """Enter the root election (at the back of the queue), with one candidate znode.

        A protected create, as kazoo's Lock recipe does: the znode is named after this
        store (``n_<uuid hex>_<seq>``), and one its session already owns is adopted instead
        of a second being made. A create that ZooKeeper applied but whose reply was lost
        (StoreUnavailable) thus never leaves an orphan that heads the queue with no agent
        acting on it.
        """
        session_id = self.connected_session()
        if self._election_node is not None:
            return
        own = self._own_candidates(session_id)
        if own:
            log.info("adopting this session's election znode", extra={"path": own[0]})
            for extra in own[1:]:
                with contextlib.suppress(NoNodeError):
                    self._call(self.client.delete_async, extra)
            self._election_node = own[0]
            return
        path = f"{self.layout.election}/{self.election_prefix}"
        self._election_node = self._call(
            self.client.create_async, path, node_id.encode(), ephemeral=True, sequence=True
        )

    def leave_election(self) -> None:
        """Leave the root election: delete every election znode of this store that its
        session owns (the one it joined with, and any whose create reply was lost)."""
        session_id = self.connected_session()
        for path in self._own_candidates(session_id):
            with contextlib.suppress(NoNodeError):
                self._call(self.client.delete_async, path)
        self._election_node = None

    def _own_candidates(self, session_id: int) -> list[str]:
        """The paths of this store's election znodes owned by ``session_id``, by sequence."""
        folder = self.layout.election
        children = self._call(self.client.get_children_async, folder)
        own = []
        for child in ordered_candidates(children):
            if not child.startswith(self.election_prefix):
                continue
            stat = self._call(self.client.exists_async, f"{folder}/{child}")
            if stat is not None and stat.ephemeralOwner == session_id:
                own.append(f"{folder}/{child}")
        return own

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
