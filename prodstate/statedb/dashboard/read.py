"""What the dashboard reads: the records in the local Redis, each part read on its own so
that one that fails (Redis down, ZooKeeper down) leaves the others shown, saying why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
from kazoo.handlers.threading import KazooTimeoutError

from prodstate.cli.exits import describe
from prodstate.client import Client
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.settings.history import Change
from prodstate.settings.records import Namespace, Refused
from prodstate.settings.store import (
    namespaces,
    read_last_change,
    read_namespace,
    read_with_history,
)
from prodstate.statedb.dashboard.namespaces import Listing, NamespaceRow
from prodstate.statedb.deploy_cli import read_deploys
from prodstate.statedb.deploys import Deploy, DeploySearch
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.errors_cli import read_errors
from prodstate.statedb.keys import (
    LOCKS,
    MACHINES,
    SERVICE_EVENTS,
    SERVICES,
    host_services,
    instances,
    loads,
)
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import Machine, machines
from prodstate.statedb.services import instances_by_key
from prodstate.zk.client import ZK_ERRORS

T = TypeVar("T")
#: Failures a part of a page is shown without (anything else is a bug, and propagates).
READ_ERRORS = (redis.RedisError, OSError, ValueError, KazooTimeoutError, *ZK_ERRORS)


@dataclass(frozen=True)
class Part(Generic[T]):
    """A part of a page: what was read, or why it could not be."""

    value: T | None = None
    error: str | None = None


def attempt(what: str, read: Callable[[], T]) -> Part[T]:
    """``read()`` as a part; a failure is kept as ``cannot read WHAT: why``."""
    try:
        return Part(read())
    except READ_ERRORS as exc:
        return Part(None, f"cannot read {what}: {describe(exc)}")


class Records:
    """The state database's records as read from one Redis (a ``Client`` reading locally)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def machines(self, now: float, stale_after: float) -> list[Machine]:
        """Every machine and how fresh its report is."""
        return machines(self.client.hgetall(MACHINES), now, stale_after)

    def machine(self, host: str, now: float, stale_after: float) -> Machine | None:
        """One machine (None if it has no record)."""
        raw = self.client.read("HGET", MACHINES, host)
        return None if raw is None else machines({host: raw}, now, stale_after)[0]

    def services_on(self, host: str) -> dict[str, dict[str, Any]]:
        """The instance records of the services on ``host``, by service."""
        return instances_by_key(self.client.hgetall(host_services(host)))

    def registry(self) -> dict[str, dict[str, Any]]:
        """Every service's current-version record, by service."""
        return {k: loads(v) for k, v in sorted(self.client.hgetall(SERVICES).items())}

    def service(self, name: str) -> dict[str, Any] | None:
        """One service's current-version record (None if it is not registered)."""
        raw = self.client.read("HGET", SERVICES, name)
        return None if raw is None else loads(raw)

    def instances(self, service: str) -> dict[str, dict[str, Any]]:
        """The instance records of ``service``, by host."""
        return instances_by_key(self.client.hgetall(instances(service)))

    def locks(self) -> list[LockRecord]:
        """The locks as mirrored into the dataset (an unreadable one shown as such)."""
        raw = self.client.hgetall(LOCKS)
        found = []
        for name in sorted(raw):
            try:
                found.append(LockRecord.from_json(name, raw[name]))
            except ValueError:
                found.append(LockRecord(name, "?", "unreadable lock record", 0.0))
        return found

    def deploys(self, search: DeploySearch) -> list[Deploy]:
        """The deploys ``search`` finds, newest first."""
        return read_deploys(self.client, search)

    def errors(self, service: str | None, since: float, limit: int) -> dict[str, list[ErrorEntry]]:
        """Errors since ``since`` by service, newest first."""
        return read_errors(self.client, service, since, limit)

    def service_events(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """The latest ``count`` service starts and stops."""
        return self.client.read("XREVRANGE", SERVICE_EVENTS, "+", "-", "COUNT", count)

    def namespaces(self, limit: int) -> Listing:
        """The first ``limit`` settings namespaces by name, each with its latest change (one
        with a malformed record listed as unreadable), and how many exist."""
        names = namespaces(self.client)
        rows = []
        for name in names[:limit]:
            try:
                found = read_namespace(self.client, name)
                last = read_last_change(self.client, name)
            except ValueError as exc:
                rows.append(NamespaceRow(name, error=describe(exc)))
                continue
            if found is not None:
                rows.append(NamespaceRow(name, found, last))
        return Listing(rows, len(names))

    def namespace(self, name: str, wait: float) -> tuple[Namespace | None, list[Change]]:
        """Settings namespace ``name`` and its history as of one revision (None: it does
        not exist); ValueError for a malformed record, or a history that still does not
        match the namespace after ``wait`` seconds."""
        try:
            return read_with_history(self.client, name, time.monotonic() + wait)
        except Refused as exc:
            raise ValueError(str(exc)) from None

    def copy_age(self, now: float) -> float | None:
        """Seconds since the root's heartbeat in this Redis (None without one)."""
        return Client.staleness(self.client.read("GET", HEARTBEAT_KEY), now)


class Reads:
    """Parts read one after another from one Redis: once the Redis cannot be reached, the
    parts after it are not tried (each would wait for the same timeout) but say so."""

    def __init__(self) -> None:
        self.down: str | None = None

    def attempt(self, what: str, read: Callable[[], T]) -> Part[T]:
        """:func:`attempt`, or the Redis's failure if it was found down."""
        if self.down is not None:
            return Part(None, self.down)
        try:
            return Part(read())
        except READ_ERRORS as exc:
            error = f"cannot read {what}: {describe(exc)}"
            if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
                self.down = error
            return Part(None, error)


class Shared(Generic[T]):
    """A value read at most once per ``period`` seconds, whoever asks: ten screens on one
    dashboard cost one reading."""

    def __init__(self, period: float, read: Callable[[], T]) -> None:
        self.period = period
        self._read = read
        self._lock = threading.Lock()
        self._kept: tuple[float, T] | None = None

    def get(self) -> T:
        """The value last read, or a new reading if it is older than the period."""
        with self._lock:
            now = time.monotonic()
            if self._kept is None or now - self._kept[0] >= self.period:
                self._kept = (now, self._read())
            return self._kept[1]
