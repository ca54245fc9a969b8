"""What the API's endpoints read and write, with no HTTP in it: reads from the local Redis
(with the heartbeat's age), and phone-home writes built by the state database's own
functions (the same validation and bounds as the commands), confirmed through one
long-lived :class:`~prodstate.Client`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from prodstate.client import Client, StaleData, WriteFailed
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.settings.records import Settings
from prodstate.statedb.deploy_cli import read_deploys
from prodstate.statedb.deploys import Deploy, DeploySearch, Outcome, finish_commands, start_entry
from prodstate.statedb.errors import report_commands
from prodstate.statedb.errors_cli import read_errors
from prodstate.statedb.keys import (
    COMMAND_MAX,
    LOCKS,
    MACHINES,
    SERVICES,
    WHO_MAX,
    check_name,
    check_targets,
    check_text,
    check_version,
    clip,
    instances,
    loads,
)
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import STALE_AFTER, machines, record_command
from prodstate.statedb.services import instance_commands, instances_by_key, running

#: Redis types a key may hold to be read, and the command that reads it whole.
_READERS = {"string": ("GET",), "hash": ("HGETALL",), "set": ("SMEMBERS",), "list": ("LRANGE",)}


class Records:
    """Reads and confirmed writes of the API, over ``client`` (which holds its ZooKeeper
    session and Redis connections for the server's life). Writes are sent one at a time."""

    def __init__(self, client: Client, write_timeout: float = 10.0) -> None:
        self.client = client
        self.write_timeout = write_timeout
        self._writing = threading.Lock()

    # --- reads -----------------------------------------------------------------------------

    def age(self, max_staleness: float | None) -> float | None:
        """Seconds since the root's heartbeat in the local copy; StaleData if that is more
        than ``max_staleness`` (or there is no heartbeat and a limit is given). Read before
        the data, so the data is at least this fresh."""
        age = Client.staleness(self.client.local.get(HEARTBEAT_KEY))
        if max_staleness is not None and (age is None or age > max_staleness):
            shown = "no heartbeat" if age is None else f"{age:.1f}s old"
            raise StaleData(f"local copy is {shown} (limit {max_staleness:g}s)")
        return age

    def key(self, key: str) -> tuple[str, Any] | None:
        """``key``'s type and whole value (None if it does not exist); ValueError for a type
        the API does not read (streams, sorted sets)."""
        kind = self.client.read("TYPE", key)
        if kind == "none":
            return None
        if kind not in _READERS:
            raise ValueError(
                f"key {key!r} holds a {kind}: the API reads strings, hashes, sets, lists"
            )
        extra = (0, -1) if kind == "list" else ()
        value = self.client.read(*_READERS[kind], key, *extra)
        return kind, sorted(value) if kind == "set" else value

    def machines(self, stale_after: float = STALE_AFTER) -> list[dict[str, Any]]:
        """Every machine's facts with the age of its report."""
        raw = self.client.hgetall(MACHINES)
        return [m.as_dict() for m in machines(raw, time.time(), stale_after)]

    def machine(self, host: str, stale_after: float = STALE_AFTER) -> dict[str, Any] | None:
        """One machine's facts (None if it never reported)."""
        raw = self.client.hget(MACHINES, check_name(host, "host"))
        return None if raw is None else machines({host: raw}, time.time(), stale_after)[0].as_dict()

    def services(self) -> dict[str, Any]:
        """Every service: its deployed version and the machines running it."""
        registry = {k: loads(v) for k, v in sorted(self.client.hgetall(SERVICES).items())}
        return {
            name: {**record, "running_on": sorted(running(self._instances(name)))}
            for name, record in registry.items()
        }

    def service(self, name: str) -> dict[str, Any] | None:
        """One service's record and its instance on every machine (None if unknown)."""
        raw = self.client.hget(SERVICES, check_name(name, "service"))
        found = self._instances(name)
        if raw is None and not found:
            return None
        return {**loads(raw), "instances": found}

    def _instances(self, name: str) -> dict[str, dict[str, Any]]:
        return instances_by_key(self.client.hgetall(instances(name)))

    def deploys(self, search: DeploySearch, limit: int) -> list[dict[str, Any]]:
        """The deploy log's deploys matching ``search``, newest first."""
        return [d.as_dict() for d in read_deploys(self.client, search)[:limit]]

    def errors(self, service: str | None, since: float, limit: int) -> dict[str, Any]:
        """Errors since ``since`` by service, newest first."""
        if service is not None:
            check_name(service, "service")
        found = read_errors(self.client, service, since, limit)
        return {name: [vars(e) for e in items] for name, items in found.items()}

    def locks(self) -> list[dict[str, Any]]:
        """The locks as mirrored into the dataset (unreadable records left out)."""
        found = []
        for name, raw in sorted(self.client.hgetall(LOCKS).items()):
            try:
                found.append(vars(LockRecord.from_json(name, raw)))
            except ValueError:
                continue
        return found

    def settings(self, namespace: str) -> Settings:
        """A namespace's typed settings (UnknownNamespace if it has none)."""
        return self.client.config(namespace)

    # --- phone home (confirmed writes) ------------------------------------------------------

    def service_state(self, name: str, host: str, state: str, version: str | None) -> int:
        """Record that ``name`` is ``state`` on ``host`` (as ``prodstate service started``
        and ``stopped``); the epoch of the root that confirmed it."""
        previous = loads(self.client.hget(instances(name), check_name(host, "host")))
        return self.write(
            instance_commands(name, host, state, time.time(), version, previous=previous)
        )

    def machine_report(self, host: str, facts: dict[str, Any]) -> int:
        """Record a machine's facts (as ``prodstate machine report``, bounded the same)."""
        return self.write([record_command({**facts, "host": host, "reported_at": time.time()})])

    def error_report(self, service: str, host: str, message: str) -> int:
        """Record an error of ``service`` (as ``prodstate error report``)."""
        return self.write(report_commands(service, host, message, time.time()))

    def deploy_record(
        self,
        service: str,
        version: str,
        targets: Sequence[str],
        who: str,
        host: str,
        outcome: Outcome,
        output: str = "",
        command: str = "",
    ) -> tuple[str, int]:
        """Record a deploy done elsewhere: its start and its outcome together (on success
        the service's current version), as ``prodstate deploy`` records its own. The
        deploy's id and the confirming epoch."""
        check_name(service, "service")
        check_version(version)
        machines_ = check_targets(targets)
        check_text(who, "who", WHO_MAX)
        check_name(host, "host")
        now = time.time()
        record = Deploy(uuid.uuid4().hex[:12], service, version, machines_, who, host, now)
        commands = [
            start_entry(
                record.id, service, version, machines_, who, host, clip(command, COMMAND_MAX)
            )
        ]
        commands += finish_commands(record, outcome, output, now)
        return record.id, self.write(commands)

    def set_key(self, key: str, value: str) -> int:
        """SET ``key`` (the ``write`` right)."""
        return self.write([("SET", key, value)])

    def write(self, commands: list[tuple[Any, ...]]) -> int:
        """``commands`` applied together at the root and confirmed within the write
        timeout (the wait for earlier writes included); the client's errors
        (WriteRejected, WriteFailed, WriteUncertain) otherwise."""
        deadline = time.monotonic() + self.write_timeout
        if not self._writing.acquire(timeout=self.write_timeout):
            raise WriteFailed("not applied: earlier writes still wait for the root")
        try:
            remaining = max(0.001, deadline - time.monotonic())
            self.client.write_batch(commands, timeout=remaining)
            epoch = self.client.confirmed_epoch
            assert epoch is not None  # set by every confirmed write
            return epoch
        finally:
            self._writing.release()
