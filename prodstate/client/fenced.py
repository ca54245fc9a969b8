"""The prodstate client: read from the local Redis, write durably through the root.

A write is sent to the root named in ZooKeeper inside a Lua script that first
checks the root's ``prodstate:epoch`` against the epoch the client read with
the root's address (a fencing token: a deposed root refuses it), then confirmed
by WAIT and by the root's ROLE reply showing that enough *branches* — the only
nodes that can become root — hold it. Refused writes (no root yet, fenced root, stale
epoch, connection refused) are retried until the deadline; a write that may
have been applied is never silently retried: it raises WriteUncertain.

    from prodstate import Client
    with Client("zk1:2181", "prod") as ps:
        ps.hset("db:foobar", "dsn", "postgres://db7/foobar")   # confirmed, or raises
        ps.hget("db:foobar", "dsn", max_staleness=5)            # local read, fresh enough
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from prodstate.client import latency
from prodstate.core import heartbeat
from prodstate.core.heartbeat import EPOCH_KEY, HEARTBEAT_KEY
from prodstate.core.model import RootRecord
from prodstate.redis.connect import connect
from prodstate.redis.scripts import (
    FENCED_BATCH,
    FENCED_CHECKED_BATCH,
    FENCED_WRITE,
    RESERVED_PREFIX,
    Script,
)
from prodstate.security.credentials import Secret
from prodstate.security.tls import TlsFiles

if TYPE_CHECKING:  # a read-only client (zk=None) never imports kazoo
    from kazoo.client import KazooClient

    from prodstate.settings.records import Settings
    from prodstate.zk.rootwatch import RootView, RootWatch

#: Seconds the first WAIT may take; slower acknowledgements are awaited in further rounds.
_FIRST_WAIT = 0.05
#: Errors that mean the root did not apply the write: safe to retry elsewhere or later.
_REFUSALS = ("STALEEPOCH", "NOREPLICAS", "READONLY", "MASTERDOWN", "LOADING", "NOSCRIPT")


class ProdstateError(Exception):
    """Base of the client's errors."""


class WriteFailed(ProdstateError):
    """The write was not confirmed. ``applied`` is False if it certainly was not applied,
    None if it may have been (the root took it but too few branches confirmed it)."""

    applied: bool | None = False


class WriteRejected(WriteFailed):
    """The root refused the command itself (wrong type, syntax, reserved key): not applied."""


class WriteConflict(WriteRejected):
    """A condition of :meth:`Client.write_batch` did not hold at the root: not applied.
    ``condition`` is its index in ``expect`` (0-based)."""

    def __init__(self, message: str, condition: int) -> None:
        super().__init__(message)
        self.condition = condition


class WriteUncertain(WriteFailed):
    """The root may have applied the write, but it was not confirmed in time."""

    applied = None


class StaleData(ProdstateError):
    """The local copy is older than the caller accepts."""


class NoRoot(ProdstateError):
    """No root is published (reads: ``Client.root()``)."""


def _role_replicas(role: Any) -> list[tuple[Any, Any, Any]]:
    """The ``[ip, port, offset]`` entries of a master's ``ROLE`` reply; malformed ones left out."""
    if not isinstance(role, list | tuple) or len(role) != 3:
        return []
    replicas = role[2] if isinstance(role[2], list | tuple) else []
    return [tuple(e) for e in replicas if isinstance(e, list | tuple) and len(e) == 3]


def branch_acks(write_offset: int, role: Any, branches: frozenset[str]) -> int:
    """How many branches report a replication offset at or past ``write_offset``.

    ``role`` is the root's ``ROLE`` reply: ``["master", offset, [[ip, port, offset], ...]]``,
    replicas named by their announced address. Leaves attached to the root do not count,
    because only branches can become root. A malformed reply counts no one.
    """
    acked = set()
    for ip, port, offset in _role_replicas(role):
        try:
            reached = int(offset) >= write_offset
        except (TypeError, ValueError, OverflowError):
            continue
        for name in (f"{ip}:{port}", f"[{ip}]:{port}"):
            if reached and name in branches:
                acked.add(name)
    return len(acked)


def non_branch_replicas(role: Any, branches: frozenset[str]) -> int:
    """How many replicas in a ``ROLE`` reply are not branches."""
    names = set()
    for ip, port, _ in _role_replicas(role):
        if f"{ip}:{port}" not in branches and f"[{ip}]:{port}" not in branches:
            names.add(f"{ip}:{port}")
    return len(names)


def role_offset(role: Any) -> int:
    """The master's replication offset in a ``ROLE`` reply; ValueError if malformed."""
    if not isinstance(role, list | tuple) or len(role) != 3 or role[0] != "master":
        raise ValueError(f"not a master's ROLE reply: {role!r}")
    try:
        return int(role[1])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"not a master's ROLE reply: {role!r}") from None


class Client:
    """Reads from the local Redis; writes confirmed by branches through the current root."""

    def __init__(
        self,
        zk: str | KazooClient | None,
        cluster: str,
        *,
        local: str = "localhost:6379",
        acks: int | None = None,
        timeout: float = 10.0,
        ack_timeout: float = 1.0,
        zk_timeout: float = 10.0,
        writer: Secret | None = None,
        reader: Secret | None = None,
        tls: TlsFiles | None = None,
        zk_tls: TlsFiles | None = None,
    ) -> None:
        """``acks``: branches that must confirm each write (default 1 while any branch other
        than the root is registered, else 0); ``timeout``: deadline of a write, failover
        included; ``zk=None`` makes a read-only client. ``writer`` and ``reader``: the Redis
        identities for writes at the root and reads of the local Redis; ``tls``: connect to
        Redis over TLS, ``zk_tls``: to ZooKeeper (when ``zk`` names its hosts). ZooKeeper is
        only read: no credentials are needed for it."""
        self.cluster = cluster
        self._writer, self._tls = writer, tls
        self.acks = acks
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self._own_zk = isinstance(zk, str)
        #: The epoch of the root that confirmed the last confirmed write (its fencing token).
        self.confirmed_epoch: int | None = None
        self.zk: KazooClient | None = None
        self.watch: RootWatch | None = None
        if zk is not None:
            # Imported here: a read-only client (``prodstate get``) never loads kazoo.
            from prodstate.zk.rootwatch import RootWatch

            self.zk = _start_zookeeper(zk, zk_timeout, zk_tls) if isinstance(zk, str) else zk
            self.watch = RootWatch(self.zk, cluster).start()
        self.local = connect(local, timeout=2.0, user=reader, tls=tls)
        self._roots: dict[str, redis.Redis] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close connections (and the ZooKeeper session, if this client opened it)."""
        for conn in self._roots.values():
            conn.close()
        self._roots.clear()
        self.local.close()
        if self.zk is not None and self._own_zk:
            self.zk.stop()
            self.zk.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads (local) ---------------------------------------------------------------------

    def read(self, *command: Any, max_staleness: float | None = None) -> Any:
        """Run a read command on the local Redis; StaleData if its copy is too old."""
        if max_staleness is None:
            return self.local.execute_command(*command)
        pipe = self.local.pipeline(transaction=False)
        pipe.get(HEARTBEAT_KEY)
        pipe.execute_command(*command)
        beat, value = pipe.execute()
        age = self.staleness(beat)
        if age is None or age > max_staleness:
            shown = "no heartbeat" if age is None else f"{age:.1f}s old"
            raise StaleData(f"local copy is {shown} (limit {max_staleness:g}s)")
        return value

    @staticmethod
    def staleness(raw: str | None, now: float | None = None) -> float | None:
        """Seconds since the root's heartbeat ``raw`` (None if missing or malformed)."""
        return heartbeat.age(raw, time.time() if now is None else now)

    def get(self, key: str, max_staleness: float | None = None) -> str | None:
        """GET from the local Redis."""
        return self.read("GET", key, max_staleness=max_staleness)

    def hget(self, key: str, field: str, max_staleness: float | None = None) -> str | None:
        """HGET from the local Redis (e.g. the DSN of the active foobar database)."""
        return self.read("HGET", key, field, max_staleness=max_staleness)

    def hgetall(self, key: str, max_staleness: float | None = None) -> dict[str, str]:
        """HGETALL from the local Redis."""
        return self.read("HGETALL", key, max_staleness=max_staleness)

    def smembers(self, key: str, max_staleness: float | None = None) -> set[str]:
        """SMEMBERS from the local Redis (e.g. machines running monkey instances)."""
        return self.read("SMEMBERS", key, max_staleness=max_staleness)

    def config(self, namespace: str, max_staleness: float | None = None) -> Settings:
        """The settings of ``namespace`` from the local Redis, as typed values (JSON decoded:
        ``settings["page_threshold"]`` is an int if it was set as one); UnknownNamespace if
        it has none. See :mod:`prodstate.settings`."""
        from prodstate.settings.records import read_settings  # only where settings are read

        return read_settings(self, namespace, max_staleness)

    # --- writes (through the root) -----------------------------------------------------------

    def set(self, key: str, value: str, **kw: Any) -> Any:
        """SET, confirmed."""
        return self.write("SET", key, value, **kw)

    def delete(self, *keys: str, **kw: Any) -> Any:
        """DEL, confirmed."""
        return self.write("DEL", *keys, **kw)

    def hset(self, key: str, field: str, value: str, **kw: Any) -> Any:
        """HSET one field, confirmed."""
        return self.write("HSET", key, field, value, **kw)

    def hdel(self, key: str, *fields: str, **kw: Any) -> Any:
        """HDEL, confirmed."""
        return self.write("HDEL", key, *fields, **kw)

    def sadd(self, key: str, *members: str, **kw: Any) -> Any:
        """SADD, confirmed."""
        return self.write("SADD", key, *members, **kw)

    def srem(self, key: str, *members: str, **kw: Any) -> Any:
        """SREM, confirmed."""
        return self.write("SREM", key, *members, **kw)

    def root(self) -> RootRecord:
        """The current root (address, epoch); NoRoot if none is published."""
        root = self._watch().view.root
        if root is None:
            raise NoRoot(f"no root is published for cluster {self.cluster}")
        return root

    def write(self, *command: Any, acks: int | None = None, timeout: float | None = None) -> Any:
        """Run any Redis write command at the root; return its raw reply once confirmed.

        Raises WriteRejected (not applied, permanent), WriteFailed (not applied before
        the deadline) or WriteUncertain (may have been applied, not confirmed).
        """
        _check_command(command)
        return self._write(FENCED_WRITE, command, acks, timeout)

    def write_batch(
        self,
        commands: list[tuple[Any, ...]],
        acks: int | None = None,
        timeout: float | None = None,
        expect: Sequence[tuple[str, str, str | None]] = (),
    ) -> list[Any]:
        """Run several write commands at the root in one fenced script (applied together,
        nothing in between), confirmed like :meth:`write`; their replies in order.

        ``expect``: ``(key, field, value)`` conditions checked in the same script, before
        anything is written: hash ``key``'s ``field`` must hold ``value`` (be absent for
        None), else WriteConflict names the first that does not hold (a compare-and-set).
        A command that fails at the root stops the script: the ones before it stay applied.
        """
        if not commands:
            raise WriteRejected("empty batch")
        args: list[Any] = []
        if expect:
            args.append(len(expect))
            for key, field, value in expect:
                args += [key, field, "absent", ""] if value is None else [key, field, "=", value]
        for command in commands:
            _check_command(command)
            args += [len(command), *command]
        script = FENCED_CHECKED_BATCH if expect else FENCED_BATCH
        return self._write(script, tuple(args), acks, timeout)

    def _write(
        self, script: Script, args: tuple[Any, ...], acks: int | None, timeout: float | None
    ) -> Any:
        start = time.monotonic()
        try:
            reply = self._write_by_deadline(script, args, acks, timeout)
        except BaseException as exc:
            latency.observe(self.cluster, latency.outcome_of(exc), time.monotonic() - start)
            raise
        latency.observe(self.cluster, "confirmed", time.monotonic() - start)
        return reply

    def _write_by_deadline(
        self, script: Script, args: tuple[Any, ...], acks: int | None, timeout: float | None
    ) -> Any:
        watch = self._watch()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        last = "no root is published"
        view = watch.view
        pause = 0.01
        while True:
            if view.root is not None:
                outcome = self._attempt(view, args, acks, deadline, script)
                if not isinstance(outcome, _Refused):
                    self.confirmed_epoch = view.root.epoch
                    return outcome.reply
                last = outcome.reason
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WriteFailed(f"not applied: {last} (gave up after the deadline)")
            # Wake on a new root at once; otherwise retry soon (branches reconnecting).
            seen = view.version
            view = watch.wait_for_change(seen, min(pause, remaining))
            pause = 0.01 if view.version != seen else min(pause * 2, 0.2)

    # --- internals ---------------------------------------------------------------------------

    def _watch(self) -> RootWatch:
        if self.watch is None:
            raise ProdstateError("this client has no ZooKeeper: it can only read")
        return self.watch

    def _root_conn(self, address: str) -> redis.Redis:
        conn = self._roots.get(address)
        if conn is None:
            # Never retried by redis-py itself: a resent write could be applied twice.
            conn = connect(
                address, timeout=self.ack_timeout + 2.0, user=self._writer, tls=self._tls
            )
            self._roots[address] = conn
        return conn

    def _wanted_acks(self, view: RootView, acks: int | None) -> int:
        if acks is not None:
            return acks
        if self.acks is not None:
            return self.acks
        assert view.root is not None
        return 1 if view.branches - {view.root.address} else 0

    def _attempt(
        self,
        view: RootView,
        args: tuple[Any, ...],
        acks: int | None,
        deadline: float,
        script: Script = FENCED_WRITE,
        send_text: bool = False,
    ) -> _Confirmed | _Refused:
        """One try at the root ``view`` names: the fenced script by digest (its text with
        ``send_text``, once the root said it has not loaded it), then the confirmation."""
        root = view.root
        assert root is not None
        if view.branches and root.address not in view.branches:
            # Only a registered branch can win the election: anything else is forged or stale.
            return _Refused(f"root {root.address} is not a registered branch")
        wanted = self._wanted_acks(view, acks)
        conn = self._root_conn(root.address)
        # One round trip in the common case: the write, the offset it reached (ROLE), WAIT,
        # and the offsets the replicas acknowledged (ROLE again: structured, cheap to parse).
        pipe = conn.pipeline(transaction=False)
        if send_text:
            pipe.eval(script.text, 1, EPOCH_KEY, str(root.epoch), *args)
        else:
            pipe.evalsha(script.sha, 1, EPOCH_KEY, str(root.epoch), *args)
        if wanted:
            pipe.execute_command("ROLE")
            # Short: if the write is refused, this WAIT still runs (and waits for nothing).
            pipe.execute_command("WAIT", wanted, self._wait_ms(deadline, _FIRST_WAIT))
            pipe.execute_command("ROLE")
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.AuthenticationError as exc:  # at connect: nothing was sent
            raise WriteRejected(f"root {root.address} refused the credentials: {exc}") from None
        except redis.ConnectionError as exc:
            if _never_sent(exc):
                return _Refused(f"root {root.address} unreachable: {exc}")
            raise WriteUncertain(f"lost the root {root.address} mid-write: {exc}") from None
        except redis.TimeoutError as exc:
            if _never_sent(exc):
                return _Refused(f"root {root.address} unreachable: {exc}")
            raise WriteUncertain(f"root {root.address} did not answer: {exc}") from None
        reply = results[0]
        if isinstance(reply, redis.exceptions.NoScriptError) and not send_text:
            # Not run: this root's agent has not loaded the script. Send its text instead
            # (which a secured cluster's writer may not: then it is refused below).
            return self._attempt(view, args, acks, deadline, script, send_text=True)
        if send_text and "'eval'" in str(reply).lower():  # NOPERM for EVAL itself
            return _Refused(f"root {root.address} has not loaded the fenced scripts yet")
        if isinstance(reply, redis.ResponseError):
            text = str(reply)
            if script is FENCED_CHECKED_BATCH and text.startswith("CONFLICT condition "):
                index = int(text.split()[2].rstrip(":")) - 1  # the values may say anything
                raise WriteConflict(f"not applied: {text}", index)
            if any(code in text for code in _REFUSALS):
                return _Refused(f"root {root.address} (epoch {root.epoch}) refused: {text}")
            raise WriteRejected(f"root refused the command: {text}")
        if not wanted:
            return _Confirmed(reply)
        try:
            write_offset = role_offset(results[1])
        except ValueError as exc:
            raise WriteUncertain(
                f"applied by root {root.address} but not confirmed: {exc}"
            ) from None
        if branch_acks(write_offset, results[3], view.branches) >= wanted:
            return _Confirmed(reply)
        return self._confirm(conn, root, view.branches, write_offset, wanted, deadline, reply)

    def _wait_ms(self, deadline: float, limit: float | None = None) -> int:
        """WAIT's timeout: at most ``limit`` (ack_timeout), never past the deadline, >= 1 ms."""
        remaining = deadline - time.monotonic()
        cap = self.ack_timeout if limit is None else limit
        return max(1, int(min(cap, max(remaining, 0.001)) * 1000))

    def _confirm(
        self,
        conn: redis.Redis,
        root: RootRecord,
        branches: frozenset[str],
        write_offset: int,
        wanted: int,
        deadline: float,
        reply: Any,
    ) -> _Confirmed:
        """WAIT until ``wanted`` branches hold ``write_offset``; WriteUncertain at the deadline."""
        others = 0  # replicas that are not branches (leaves briefly on the root): WAIT for them
        while True:
            try:
                pipe = conn.pipeline(transaction=False)
                pipe.execute_command("WAIT", others + wanted, self._wait_ms(deadline, 0.05))
                pipe.execute_command("ROLE")
                _, role = pipe.execute()
            except redis.RedisError as exc:
                raise WriteUncertain(
                    f"applied by root {root.address} but not confirmed: {exc}"
                ) from None
            acked = branch_acks(write_offset, role, branches)
            others = non_branch_replicas(role, branches)
            if acked >= wanted:
                return _Confirmed(reply)
            if time.monotonic() >= deadline:
                raise WriteUncertain(
                    f"applied by root {root.address} (epoch {root.epoch}) but confirmed by "
                    f"{acked} of {wanted} branch(es) before the deadline"
                )


def _start_zookeeper(hosts: str, timeout: float, tls: TlsFiles | None) -> KazooClient:
    """A started kazoo client (over TLS with ``tls``); ProdstateError if ZooKeeper cannot be
    reached in time."""
    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError

    zk = KazooClient(hosts=hosts, timeout=timeout, **(tls.kazoo_kwargs() if tls else {}))
    try:
        zk.start(timeout=timeout)
    except KazooTimeoutError:
        zk.close()
        raise ProdstateError(f"cannot connect to ZooKeeper at {hosts}") from None
    return zk


class _Confirmed:
    def __init__(self, reply: Any) -> None:
        self.reply = reply


class _Refused:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _check_command(command: tuple[Any, ...]) -> None:
    """WriteRejected for an empty command or one that names a reserved key."""
    if not command:
        raise WriteRejected("empty command")
    if len(command) > 1 and str(command[1]).startswith(RESERVED_PREFIX):
        raise WriteRejected(f"keys under {RESERVED_PREFIX!r} belong to prodstate itself")


def _never_sent(exc: redis.RedisError) -> bool:
    """True if the connection failed before the command could reach the server."""
    text = str(exc)
    return "connecting to" in text.lower() or "Connection refused" in text
