"""What ``ZkStore.read_view`` last read, per znode path, and which paths changed since.

Pure bookkeeping, no ZooKeeper: the store fills it and marks paths dirty from watch
events. A cached entry is trusted only while the one-shot watch its read left is still
pending, so the rules are:

* only a read that left a watch is stored (``store``);
* a path is marked clean *before* it is read (``begin``), so a watch that fires during
  the read leaves it dirty and the next read fetches it again;
* anything that may have lost watches (a new session, a dropped connection, a failed
  read) calls ``clear``: every path is read afresh, and a read begun before the clear
  cannot store what it got (its ``token`` is stale). ``read`` clears when a load fails.

A value read without a watch is trusted the same way: until it is invalidated (the agent
wrote it) or ``keep`` replaces it, or everything is cleared. Only a znode that nobody but
this agent writes may be read so (a leaf's own member znode).

A deleted znode needs no read at all (``deleted``): its entry is dropped, and so is its
name from its folder's ``Listing``, a leaf's list of branches, which it keeps without a
children watch (see :mod:`prodstate.zk.store`). A path being read at that moment is
marked dirty instead, so a read begun before the deletion cannot store what it got.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prodstate.core.model import Member

T = TypeVar("T")


@dataclass(frozen=True)
class MemberZnode:
    """A member znode as read: its Member (None if malformed) and its session's id."""

    member: Member | None
    owner: int


@dataclass(frozen=True)
class DataZnode:
    """A znode's raw data with the stat fields the reads use."""

    raw: bytes
    owner: int
    version: int


@dataclass(frozen=True)
class Listing:
    """A folder's children as a leaf knows them, and the folder's child version
    (``cversion``, which every child created or deleted raises by one)."""

    children: tuple[str, ...]
    cversion: int

    def without(self, child: str) -> Listing:
        """The listing once ``child`` is deleted (itself if ``child`` is not in it)."""
        if child not in self.children:
            return self
        kept = tuple(c for c in self.children if c != child)
        return Listing(kept, self.cversion + 1)


class Uncached(Generic[T]):
    """A read's value that must not be cached (it left no watch), e.g. a missing znode."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class ReadCache:
    """Values read with a watch, by path, plus the paths whose watch has fired."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, object] = {}
        self._dirty: set[str] = set()
        self._loading: set[str] = set()
        self._generation = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def fresh(self, path: str) -> tuple[bool, object]:
        """(True, value) if ``path`` was read and its watch has not fired since."""
        with self._lock:
            if path in self._entries and path not in self._dirty:
                return True, self._entries[path]
            return False, None

    def begin(self, path: str) -> int:
        """Mark ``path`` clean before reading it; the token to pass to ``store``."""
        with self._lock:
            self._dirty.discard(path)
            self._loading.add(path)
            return self._generation

    def store(self, path: str, value: object, token: int) -> None:
        """Remember what a read with a watch returned (ignored if cleared since ``begin``)."""
        with self._lock:
            self._loading.discard(path)
            if token == self._generation:
                self._entries[path] = value

    def keep(self, path: str, value: object) -> None:
        """Store what this agent just wrote at ``path`` (a znode only it writes), fresh."""
        with self._lock:
            self._entries[path] = value
            self._dirty.discard(path)

    def invalidate(self, path: str | None) -> None:
        """A watch on ``path`` fired (``None``: a session event, so forget everything)."""
        if path is None:
            self.clear()
            return
        with self._lock:
            self._dirty.add(path)

    def deleted(self, path: str) -> None:
        """A watch reported ``path`` deleted: drop it, and drop its name from its folder's
        Listing; a path or folder being read just then is marked dirty instead."""
        folder, _, child = path.rpartition("/")
        with self._lock:
            if path in self._loading:
                self._dirty.add(path)
            else:
                self._entries.pop(path, None)
                self._dirty.discard(path)
            listing = self._entries.get(folder)
            if folder in self._loading:
                self._dirty.add(folder)
            elif isinstance(listing, Listing) and folder not in self._dirty:
                self._entries[folder] = listing.without(child)

    def forget(self, paths: Iterable[str]) -> None:
        """Drop these paths (children that went away, or read without a watch)."""
        with self._lock:
            for path in paths:
                self._entries.pop(path, None)
                self._dirty.discard(path)
                self._loading.discard(path)

    def cached_under(self, parent: str) -> list[str]:
        """Cached paths that are direct children of ``parent``."""
        prefix = parent.rstrip("/") + "/"
        with self._lock:
            return [
                p for p in self._entries if p.startswith(prefix) and "/" not in p[len(prefix) :]
            ]

    def clear(self) -> None:
        """Forget everything: the next read of every path goes to ZooKeeper."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._dirty.clear()
            self._loading.clear()

    def read(self, path: str, load: Callable[[], T | Uncached[T]]) -> T:
        """The cached value of ``path`` if fresh, else ``load()`` (stored unless Uncached)."""
        hit, value = self.fresh(path)
        if hit:
            return value  # type: ignore[return-value]
        token = self.begin(path)
        try:
            loaded = load()
        except BaseException:
            self.clear()  # a failed read may have lost a watch: read everything next time
            raise
        if isinstance(loaded, Uncached):
            self.forget([path])
            return loaded.value
        self.store(path, loaded, token)
        return loaded
