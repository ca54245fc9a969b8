"""The leaf agent's store (``prodstate.zk.store.ZkStore`` as a leaf uses it) on asyncio, for
``zkleaf.py``: the same requests in the same order, each bounded in time.

* on each new session a ``sync`` and the persistent znodes checked
  (``AclGuard.ensure_paths``; with credentials, every guarded znode's ACL read as well);
* ``read_view`` with the real ``ReadCache``: only what a watch reported changed (or this
  leaf wrote) is read again, everything with ``full``: the branches' folder (a data watch)
  and, if its child version moved, its list (no watch), each branch's member znode,
  ``root`` (``exists`` when it is missing), ``epoch`` and the maintenance folder, each read
  leaving a watch, and the leaf's own member znode without one; a deleted znode's watch
  drops it from the cache and from the list with no read (``ReadCache.deleted``);
* ``register``: ``set`` on its own znode read this session, else ``get``, then ``create``,
  ``set`` or (a previous session's znode) a transaction replacing it; what it wrote is kept.

Requests are tagged (``full``, ``read``, ``write``, ``session``) for the session's trace.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError
from kazoo.protocol.serialization import (
    Create,
    Delete,
    Exists,
    GetACL,
    GetChildren,
    GetChildren2,
    GetData,
    SetACL,
    SetData,
    Sync,
    Transaction,
)
from kazoo.security import ACL, OPEN_ACL_UNSAFE
from zkwire import Session

from prodstate.core.model import DataError, Lineage, Member, RootRecord, Tier
from prodstate.zk.acl import same_acl
from prodstate.zk.cache import DataZnode, Listing, MemberZnode, ReadCache, Uncached
from prodstate.zk.maintenance import maintenance_view
from prodstate.zk.paths import DRAIN_PREFIX, GUARDED, PAUSE, PERSISTENT, SWITCHOVER, TOP, Layout
from prodstate.zk.store import View

EPHEMERAL = 1


# The agent's parsers, remembered by the bytes they parse: 10,000 leaves of a worker read
# the same few znodes (a DataError is raised again each time, not remembered).
parse_member = functools.lru_cache(maxsize=4096)(Member.from_znode)
parse_root = functools.lru_cache(maxsize=256)(RootRecord.from_json)
parse_lineage = functools.lru_cache(maxsize=256)(Lineage.from_json)


class Unavailable(Exception):
    """The store's StoreUnavailable: not connected, or a request failed or timed out."""


class AsyncStore:
    """One leaf's reads and writes over its ``Session``."""

    def __init__(
        self,
        session: Session,
        cluster: str,
        node_id: str,
        request_timeout: float,
        acl: list[ACL] | None,
        wake: Any,
    ) -> None:
        self.session = session
        self.layout = Layout(cluster)
        self.node_id = node_id
        self.request_timeout = request_timeout
        self.acl = acl
        self.wake = wake
        self.cache = ReadCache()
        self.listing: Listing | None = None
        self.session_id = 0
        self.new_session = True

    async def call(self, request: Any) -> Any:
        """``ZkStore._call``: one request, bounded in time."""
        if not self.session.connected:
            raise Unavailable("not connected")
        try:
            return await self.session.call(request, self.request_timeout)
        except (NoNodeError, NodeExistsError, BadVersionError):
            raise
        except (KazooException, TimeoutError, OSError) as exc:
            raise Unavailable(repr(exc)) from exc

    async def connected_session(self) -> int:
        """``ZkStore.connected_session``: sync and check the paths once per new session."""
        if not self.session.connected:
            raise Unavailable("not connected")
        session_id = self.session.session_id
        if self.new_session or session_id != self.session_id:
            tag, self.session.counts.tag = self.session.counts.tag, "session"
            try:
                await self.call(Sync(self.layout.base))
                await self.ensure_paths()
            finally:
                self.session.counts.tag = tag
            self.cache.clear()
            self.session_id, self.new_session = session_id, False
        return session_id

    async def ensure_paths(self) -> None:
        """``AclGuard.ensure_paths`` where every znode already has the agents' ACL."""
        await self.secure()
        for relative in PERSISTENT:
            path = self.layout.path(relative)
            if await self.call(Exists(path, False)) is None:
                with contextlib.suppress(NodeExistsError, NoNodeError):
                    await self.call(Create(path, b"", self.acl or OPEN_ACL_UNSAFE, 0))
        await self.secure()

    async def secure(self) -> None:
        """``AclGuard.secure``: read every guarded znode's ACL, set it where it differs."""
        if self.acl is None:
            return
        for path in (TOP, *(self.layout.path(p) for p in GUARDED)):
            if await self.call(Exists(path, False)) is None:
                continue
            current, stat = await self.call(GetACL(path))
            if not same_acl(current, self.acl):
                await self.call(SetACL(path, self.acl, stat.aversion))

    async def cached(self, path: str, load: Any) -> Any:
        """``ReadCache.read`` with an asynchronous ``load``."""
        hit, value = self.cache.fresh(path)
        if hit:
            return value
        token = self.cache.begin(path)
        try:
            loaded = await load()
        except BaseException:
            self.cache.clear()
            raise
        if isinstance(loaded, Uncached):
            self.cache.forget([path])
            return loaded.value
        self.cache.store(path, loaded, token)
        return loaded

    async def read_view(self, full: bool) -> View:
        """``ZkStore.read_view`` for a leaf."""
        session_id = await self.connected_session()
        if full:
            self.cache.clear()
        try:
            return await self._read_view(session_id)
        except BaseException:
            self.cache.clear()
            raise

    async def _read_view(self, session_id: int) -> View:
        branches = []
        folder = self.layout.members(Tier.BRANCH)
        for child in await self.read_listing(folder):
            znode = await self.read_member(Tier.BRANCH, child)
            if znode is None:
                self.cache.deleted(f"{folder}/{child}")
            elif znode.member is not None:
                branches.append(znode.member)
        own = await self.read_member(Tier.LEAF, self.node_id, watch=False)
        registered = own.member if own is not None and own.owner == session_id else None
        root = await self.read_root()
        lineage = await self.read_lineage()
        return View(
            branches=tuple(branches), candidates=(), root=root, lineage=lineage,
            lineage_version=0, registered=registered, in_election=False,
            **await self.read_maintenance(),
        )  # fmt: skip

    async def read_children(self, path: str) -> list[str]:
        async def load() -> list[str]:
            return sorted(await self.call(GetChildren(path, True)))

        children: list[str] = await self.cached(path, load)
        present = {f"{path}/{child}" for child in children}
        self.cache.forget([p for p in self.cache.cached_under(path) if p not in present])
        return children

    async def read_listing(self, folder: str) -> tuple[str, ...]:
        """``Members._read_listing``: the folder with a data watch, listed if it moved."""

        async def load() -> Listing:
            _, stat = await self.call(GetData(folder, True))
            last = self.listing
            if last is not None and last.cversion == stat.cversion:
                return last
            children, stat = await self.call(GetChildren2(folder, False))
            return Listing(tuple(sorted(children)), stat.cversion)

        listing: Listing = await self.cached(folder, load)
        self.listing = listing
        present = {f"{folder}/{child}" for child in listing.children}
        self.cache.forget([p for p in self.cache.cached_under(folder) if p not in present])
        return listing.children

    async def read_member(self, tier: Tier, node_id: str, watch: bool = True) -> MemberZnode | None:
        path = self.layout.member(tier, node_id)

        async def load() -> MemberZnode | Uncached[None]:
            try:
                raw, stat = await self.call(GetData(path, watch))
            except NoNodeError:
                return Uncached(None)
            try:
                member: Member | None = parse_member(node_id, tier, raw)
                if not stat.ephemeralOwner:
                    raise DataError("not ephemeral")
            except DataError:
                member = None
            return MemberZnode(member, stat.ephemeralOwner)

        return await self.cached(path, load)

    async def read_root(self) -> RootRecord | None:
        path = self.layout.root

        async def load() -> DataZnode | Uncached[None] | None:
            for _ in range(3):
                try:
                    raw, stat = await self.call(GetData(path, True))
                    return DataZnode(raw, stat.ephemeralOwner, stat.version)
                except NoNodeError:
                    if await self.call(Exists(path, True)) is None:
                        return None
            self.wake()
            return Uncached(None)

        znode = await self.cached(path, load)
        if znode is None or not znode.owner:
            return None
        try:
            return parse_root(znode.raw, znode.owner)
        except DataError:
            return None

    async def read_lineage(self) -> Lineage:
        path = self.layout.epoch

        async def load() -> DataZnode:
            raw, stat = await self.call(GetData(path, True))
            return DataZnode(raw, stat.ephemeralOwner, stat.version)

        znode = await self.cached(path, load)
        try:
            return parse_lineage(znode.raw)
        except DataError:
            return Lineage()

    async def read_maintenance(self) -> dict[str, Any]:
        """``ZkStore._read_maintenance``: the folder's children, and what is set in it."""
        folder = self.layout.maintenance
        try:
            children = await self.read_children(folder)
        except NoNodeError:
            return {}
        wanted = [c for c in children if c in (PAUSE, SWITCHOVER) or c.startswith(DRAIN_PREFIX)]
        data: dict[str, DataZnode | None] = {}
        for child in wanted:
            path = f"{folder}/{child}"

            async def load(path: str = path) -> DataZnode | None:
                try:
                    raw, stat = await self.call(GetData(path, True))
                except NoNodeError:
                    if await self.call(Exists(path, True)) is None:
                        return None
                    raise Unavailable(f"{path} came and went") from None
                return DataZnode(raw, stat.ephemeralOwner, stat.version)

            data[child] = await self.cached(path, load)
        return maintenance_view(children, lambda child: data.get(child))

    async def register(self, member: Member) -> None:
        """``Members.register``: create or update this leaf's ephemeral member znode."""
        session_id = await self.connected_session()
        self.session.counts.tag = "write"
        path = self.layout.member(Tier.LEAF, self.node_id)
        data = member.to_json()
        try:
            await self._register(path, data, session_id)
        except BaseException:
            self.cache.invalidate(path)
            raise
        else:
            written = parse_member(self.node_id, Tier.LEAF, data)
            self.cache.keep(path, MemberZnode(written, session_id))
        finally:
            self.cache.invalidate(self.layout.members(Tier.LEAF))

    async def _register(self, path: str, data: bytes, session_id: int) -> None:
        hit, known = self.cache.fresh(path)
        if hit and isinstance(known, MemberZnode) and known.owner == session_id:
            with contextlib.suppress(NoNodeError):  # deleted since: looked up below
                await self.call(SetData(path, data, -1))
                return
        try:
            _, stat = await self.call(GetData(path, False))
        except NoNodeError:
            await self.call(Create(path, data, self.acl or OPEN_ACL_UNSAFE, EPHEMERAL))
            return
        if stat.ephemeralOwner == session_id:
            await self.call(SetData(path, data, -1))
            return
        ops = [Delete(path, stat.version), Create(path, data, self.acl or OPEN_ACL_UNSAFE,
                                                  EPHEMERAL)]  # fmt: skip
        failed = [r for r in await self.call(Transaction(ops)) if isinstance(r, Exception)]
        if failed:
            raise failed[0]
