"""The member znodes, read and written for one store (a recipe of the store: its requests go
through the store's bounded ``call``, its reads through the store's ``ReadCache``).

A leaf's own member znode is read without a watch: only the leaf writes it and only
observers read it, so the leaf keeps what it wrote, and a change made by hand is seen at
the next full read. Every publication then costs one request, not a write and a read back
(at 10,000 leaves, a branch crash's publications are most of its ZooKeeper load).

A leaf keeps its list of branches without a children watch, whose every firing would cost
each leaf a read when a branch goes. It learns of a branch gone from the watch its read of
that branch's member znode left (which fires on the deletion: no read), and of a branch
come from the data watch it keeps on the branches' folder, whose data every branch bumps
in the transaction that creates its member znode (one read of the list). A full read lists
the folder again only if its child version (``cversion``) moved. A member znode made by
other means than an agent's registration is seen at the next full read.

Two orderings keep a replaced branch (a restarted agent taking over its previous session's
znode) on every leaf's list: the transaction bumps the folder before it deletes and
creates, so a leaf marks its list to be read again before it hears of the deletion; and a
list read waits until kazoo has handled the events it was told before the answer (they run
on its event thread, while the answer wakes the reader at once), so a deletion is never
taken off a list that already holds the new znode.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.core.model import DataError, Member, Tier
from prodstate.zk.cache import Listing, MemberZnode, ReadCache, Uncached
from prodstate.zk.paths import Layout

log = logging.getLogger(__name__)


class Members:
    """The branches as this agent reads them, and its own member znode."""

    def __init__(
        self,
        client: KazooClient,
        call: Callable[..., Any],
        layout: Layout,
        cache: ReadCache,
        on_watch: Callable[..., None],
        commit: Callable[[Any], list[Exception]],
        settle: Callable[[], bool] = lambda: True,
    ) -> None:
        """``commit``: the store's, a transaction's errors; ``settle``: wait until the watch
        events received so far have been handled (False if that took too long)."""
        self._client = client
        self._call = call
        self._commit_errors = commit
        self._cache = cache
        self._on_watch = on_watch
        self._settle = settle
        self.layout = layout
        #: A leaf's last list of branches, kept across full reads while it is current.
        self._listing: Listing | None = None

    # --- reads -----------------------------------------------------------------------------

    def branches(self, tier: Tier) -> tuple[Member, ...]:
        """The registered branches, as an agent of ``tier`` reads them (cached)."""
        folder = self.layout.members(Tier.BRANCH)
        listed = self._read_listing(folder) if tier is Tier.LEAF else self.read_children(folder)
        branches: list[Member] = []
        for child in listed:
            znode = self._read_member(Tier.BRANCH, child)
            if znode is None and tier is Tier.LEAF:
                self._cache.deleted(f"{folder}/{child}")  # gone since it was listed
            if znode is not None and znode.member is not None:
                branches.append(znode.member)
        return tuple(branches)

    def read_children(self, path: str) -> list[str]:
        """The sorted children of ``path`` (cached); the cache forgets those that went."""

        def load() -> list[str]:
            return sorted(self._call(self._client.get_children_async, path, self._on_watch))

        children: list[str] = self._cache.read(path, load)
        self._forget_gone(path, children)
        return children

    def _forget_gone(self, folder: str, children: Iterable[str]) -> None:
        """Forget what is cached under ``folder`` but no longer among its ``children``."""
        present = {f"{folder}/{child}" for child in children}
        self._cache.forget([p for p in self._cache.cached_under(folder) if p not in present])

    def _read_listing(self, folder: str) -> tuple[str, ...]:
        """A leaf's branches: the names in ``folder``, read without a children watch (see the
        module's docstring), under a data watch on the folder that a branch's creation
        fires; listed again only when the folder's child version moved."""

        def load() -> Listing | Uncached[Listing]:
            _, stat = self._call(self._client.get_async, folder, self._on_watch)
            last = self._listing
            if last is not None and last.cversion == stat.cversion:
                return last
            children, stat = self._call(self._client.get_children_async, folder, None, True)
            listing = Listing(tuple(sorted(children)), stat.cversion)
            # A deletion told before this answer but handled after it would be taken off a
            # list that may already hold the branch's next znode: handle those first.
            return listing if self._settle() else Uncached(listing)

        listing: Listing = self._cache.read(folder, load)
        self._listing = listing  # exactly the children at its cversion, whatever came since
        self._forget_gone(folder, listing.children)
        return listing.children

    def _read_member(self, tier: Tier, node_id: str, watch: bool = True) -> MemberZnode | None:
        """A member znode (cached while its watch is pending; without ``watch``, until this
        agent writes it or everything is read afresh); None if it does not exist, a None
        member if it is malformed or names another node or tier."""
        path = self.layout.member(tier, node_id)

        def load() -> MemberZnode | Uncached[None]:
            try:
                raw, stat = self._call(
                    self._client.get_async, path, self._on_watch if watch else None
                )
            except NoNodeError:
                return Uncached(None)  # no watch left: a children watch, or ``branches``
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

        return self._cache.read(path, load)

    def own_registration(self, node_id: str, tier: Tier, session_id: int) -> Member | None:
        """This agent's member as registered by ``session_id`` (None if it is not)."""
        # A leaf keeps its own znode from its writes (see the module's docstring).
        znode = self._read_member(tier, node_id, watch=tier is not Tier.LEAF)
        if znode is None or znode.owner != session_id:
            return None
        return znode.member

    # --- writes ----------------------------------------------------------------------------

    def register(self, member: Member, session_id: int) -> None:
        """Create or update this agent's ephemeral member znode (replacing a stale one)."""
        path, data = self.layout.member(member.tier, member.node_id), member.to_json()
        # A branch's creation bumps its folder's data: the leaves' signal to list it again.
        signal = self.layout.members(Tier.BRANCH) if member.tier is Tier.BRANCH else None
        try:
            self._register(data, path, session_id, signal)
        except BaseException:
            self._cache.invalidate(path)
            raise
        else:
            if member.tier is Tier.LEAF:  # unwatched: kept as written, as a read would give
                written = Member.from_znode(member.node_id, member.tier, data)
                self._cache.keep(path, MemberZnode(written, session_id))
            else:
                self._cache.invalidate(path)
        finally:
            self._cache.invalidate(self.layout.members(member.tier))

    def _register(self, data: bytes, path: str, session_id: int, signal: str | None) -> None:
        hit, known = self._cache.fresh(path)
        if hit and isinstance(known, MemberZnode) and known.owner == session_id:
            # This session's own znode: read with a watch that has not fired since, or (a
            # leaf's) kept from its last write.
            with contextlib.suppress(NoNodeError):  # deleted since: looked up below
                self._call(self._client.set_async, path, data)
                return
        try:
            _, stat = self._call(self._client.get_async, path)
        except NoNodeError:
            stat = None
        if stat is None:
            self._create(path, data, signal)
            return
        if stat.ephemeralOwner == session_id:
            self._call(self._client.set_async, path, data)
            return
        log.warning(
            "replacing the member znode of a previous session",
            extra={"path": path, "owner": hex(stat.ephemeralOwner)},
        )
        # One transaction: a reader never sees the member missing, so a restarted agent
        # does not send its leaves elsewhere for the moment between a delete and a create.
        # The signal comes first: a leaf told of it before the deletion lists the branches
        # again rather than drop this one from its list.
        tx = self._client.transaction()
        if signal is not None:
            tx.set_data(signal, b"")
        tx.delete(path, version=stat.version)
        tx.create(path, data, ephemeral=True)
        self._commit(tx)

    def _create(self, path: str, data: bytes, signal: str | None) -> None:
        """Create the member znode, with ``signal``'s data bumped in the same transaction."""
        if signal is None:
            self._call(self._client.create_async, path, data, ephemeral=True)
            return
        tx = self._client.transaction()
        tx.create(path, data, ephemeral=True)
        tx.set_data(signal, b"")
        self._commit(tx)

    def _commit(self, tx: Any) -> None:
        """Commit a transaction; raise the first error its operations answered."""
        failed = self._commit_errors(tx)
        if failed:  # it changed meanwhile: the agent logs this and tries again next tick
            raise failed[0]
