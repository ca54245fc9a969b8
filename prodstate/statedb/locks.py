"""Deploy locks in ZooKeeper: a persistent znode per lock, created atomically, removed by a
version-checked delete, with an expiry that readers honour and that a new holder breaks
with a compare-and-set; and the session-bound mutex that keeps two deploys of a service
from overlapping.

The decisions (expiry, who may release, how a lock is described) are pure functions.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.recipe.lock import Lock

from prodstate.core.durations import format_duration
from prodstate.statedb.keys import (
    LOCKS,
    TEXT_MAX,
    WHO_MAX,
    check_name,
    check_text,
    dumps,
    fmt_time,
)
from prodstate.zk.paths import Layout

#: The longest a lock may be taken for (``--ttl``); longer: until released.
LOCK_TTL_MAX = 365 * 86400.0


@dataclass(frozen=True)
class LockRecord:
    """Who holds lock ``name``, why, since when and until when (None: until released)."""

    name: str
    holder: str
    reason: str
    acquired_at: float
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        """True once the lock's time is up."""
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        """The record as compact JSON (what the znode and the mirror hold)."""
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, name: str, raw: bytes | str) -> LockRecord:
        """Parse a lock record; ValueError if it is not one."""
        try:
            doc = json.loads(raw)
            expires = doc.get("expires_at")
            return cls(
                name=name,
                holder=str(doc["holder"]),
                reason=str(doc["reason"]),
                acquired_at=float(doc["acquired_at"]),
                expires_at=None if expires is None else float(expires),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"lock {name}: malformed record ({exc})") from None

    def describe(self, now: float) -> str:
        """``NAME is held by H since T (expires at E): REASON``."""
        until = "until released"
        if self.expires_at is not None:
            state = "expired" if self.expired(now) else "expires"
            until = f"{state} {fmt_time(self.expires_at)} UTC"
        return (
            f"{self.name} is held by {self.holder} since {fmt_time(self.acquired_at)} UTC "
            f"({until}): {self.reason}"
        )


def new_lock(
    name: str, holder: str, reason: str, now: float, ttl: float | None = None
) -> LockRecord:
    """A checked record for a new lock; ValueError for a bad name, empty reason or holder."""
    check_name(name, "lock")
    if not reason.strip():
        raise ValueError("a lock needs a reason (--reason)")
    if not holder.strip():
        raise ValueError("a lock needs a holder")
    check_text(holder, "the holder", WHO_MAX)
    check_text(reason, "the reason", TEXT_MAX)
    if ttl is not None and not 0 < ttl <= LOCK_TTL_MAX:
        longest = format_duration(LOCK_TTL_MAX)
        raise ValueError(f"the TTL must be more than zero and at most {longest}")
    expires = None if ttl is None else now + ttl
    return LockRecord(name, holder, reason, now, expires)


def release_refusal(lock: LockRecord, holder: str, force: bool, now: float) -> str | None:
    """Why ``holder`` may not release ``lock`` (None: it may): only its holder may, unless
    forced or expired."""
    if force or lock.holder == holder or lock.expired(now):
        return None
    return f"{lock.describe(now)}; only {lock.holder} may release it (or use --force)"


def mirror_command(lock: LockRecord | None, name: str) -> tuple[Any, ...]:
    """The write that mirrors a lock's state into the dataset (HSET, or HDEL once free)."""
    if lock is None:
        return ("HDEL", LOCKS, name)
    return ("HSET", LOCKS, name, lock.to_json())


class LockHeld(Exception):
    """The lock is held by someone else (``record``)."""

    def __init__(self, record: LockRecord, now: float) -> None:
        super().__init__(record.describe(now))
        self.record = record


class LockError(Exception):
    """A lock operation that cannot be done (not held, not yours, changed meanwhile)."""


class LockStore:
    """The locks of one cluster in ZooKeeper (``/prodstate/<cluster>/statedb/locks/<name>``)."""

    def __init__(self, zk: KazooClient, cluster: str) -> None:
        self.zk = zk
        self.layout = Layout(cluster)

    def path(self, name: str) -> str:
        """The znode of lock ``name``."""
        return self.layout.lock(check_name(name, "lock"))

    def read(self, name: str) -> tuple[LockRecord, int] | None:
        """The lock's record and znode version, expired or not; None if there is none.

        A malformed record is shown as held by ``?``, so it is never silently ignored.
        """
        found = self.read_znode(name)
        if found is None or found[0] is None:
            return None
        return found[0], found[1]

    def read_znode(self, name: str) -> tuple[LockRecord | None, int] | None:
        """None when no znode exists; a None record when the znode is free (released)."""
        try:
            raw, stat = self.zk.get(self.path(name))
        except NoNodeError:
            return None
        if not raw:
            return None, stat.version
        try:
            record = LockRecord.from_json(name, raw)
        except ValueError as exc:
            record = LockRecord(name, "?", f"unreadable lock record: {exc}", stat.ctime / 1000)
        return record, stat.version

    def holder(self, name: str, now: float | None = None) -> LockRecord | None:
        """The lock in force on ``name`` (None when free or expired)."""
        now = time.time() if now is None else now
        found = self.read(name)
        if found is None or found[0].expired(now):
            return None
        return found[0]

    def check_cluster(self) -> None:
        """LockError unless the cluster has formed (its epoch znode exists): a mistyped
        ``--cluster`` must not leave a lock (or a deploy) where no tooling looks."""
        if self.zk.exists(self.layout.epoch) is None:
            raise LockError(
                f"there is no cluster {self.layout.cluster!r} in ZooKeeper (no root has "
                "ever served it): check --cluster"
            )

    def acquire(self, lock: LockRecord, now: float | None = None) -> LockRecord:
        """Take the lock: create its znode, or replace a free or expired record with a
        version-checked write. LockHeld when someone holds it (two contenders never both
        win); LockError in a cluster that has not formed (see check_cluster).

        A lock's znode is never deleted (release empties it), so its version only grows and
        a version check cannot be fooled by a znode deleted and made again (ABA).
        """
        path = self.path(lock.name)
        data = lock.to_json().encode()
        self.check_cluster()
        for _ in range(5):
            found = self.read_znode(lock.name)
            if found is None:
                try:
                    self.zk.create(path, data, makepath=True)
                    return lock
                except NodeExistsError:
                    continue
            current, version = found
            moment = time.time() if now is None else now
            if current is not None and not current.expired(moment):
                raise LockHeld(current, moment)
            try:  # free, or expired: someone else may take it first, then look again
                self.zk.set(path, data, version=version)
                return lock
            except BadVersionError:
                continue
        raise LockError(f"lock {lock.name} kept changing; try again")

    def release(
        self, name: str, holder: str, force: bool = False, now: float | None = None
    ) -> LockRecord:
        """Free the lock if ``holder`` may (see release_refusal): its znode is emptied with a
        version-checked write, never deleted (see acquire); the record released."""
        now = time.time() if now is None else now
        found = self.read(name)
        if found is None:
            raise LockError(f"{name} is not locked")
        current, version = found
        refusal = release_refusal(current, holder, force, now)
        if refusal is not None:
            raise LockError(refusal)
        try:
            self.zk.set(self.path(name), b"", version=version)
        except BadVersionError:
            raise LockError(f"lock {name} changed meanwhile; look again") from None
        except NoNodeError:
            raise LockError(f"{name} is not locked") from None
        return current

    def all(self) -> list[LockRecord]:
        """Every lock znode's record (expired ones included), by name."""
        try:
            names = self.zk.get_children(self.layout.locks)
        except NoNodeError:
            return []
        found = [self.read(name) for name in sorted(names)]
        return [f[0] for f in found if f is not None]

    def deploy_mutex(self, service: str, identifier: str) -> Lock:
        """kazoo's Lock (session-bound) held by a deploy of ``service`` while it runs."""
        return self.zk.Lock(self.layout.deploying(check_name(service, "service")), identifier)

    def mark_started(self, service: str, record: bytes) -> None:
        """Keep the record of the deploy of ``service`` that starts, until its outcome is
        written (:meth:`clear_started`): one left behind tells the next deploy that this
        one died without an outcome (its deploy mutex went with its session)."""
        path = self.layout.started(check_name(service, "service"))
        try:
            self.zk.create(path, record, makepath=True)
        except NodeExistsError:
            self.zk.set(path, record)

    def started(self, service: str) -> bytes | None:
        """The record :meth:`mark_started` left, if any."""
        try:
            raw, _ = self.zk.get(self.layout.started(check_name(service, "service")))
        except NoNodeError:
            return None
        return raw

    def clear_started(self, service: str) -> None:
        """Forget the record of the deploy of ``service`` once its outcome is written."""
        with contextlib.suppress(NoNodeError):
            self.zk.delete(self.layout.started(check_name(service, "service")))
