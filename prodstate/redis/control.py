"""Thin control of one Redis: read its replication state, change its role and fence."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from typing import Any

from prodstate.core.heartbeat import EPOCH_KEY, HEARTBEAT_KEY, MAX_TEXT
from prodstate.core.model import (
    FENCE_MIN_REPLICAS,
    MAX_ACK_LAG,
    UNREACHABLE,
    DataError,
    RedisState,
    format_address,
    parse_address,
)
from prodstate.core.rest import Pulse
from prodstate.redis.link import LOADING, Link, RedisError, ReplyError, pairs, parse_info
from prodstate.redis.resp import encode
from prodstate.redis.scripts import SCRIPTS
from prodstate.security.credentials import Secret
from prodstate.security.files import file_mode, writable_by_others
from prodstate.security.tls import ServerChecks, TlsFiles

log = logging.getLogger(__name__)


def read_state(link: Link) -> RedisState:
    """``INFO`` and ``CONFIG GET`` as a RedisState; UNREACHABLE if Redis does not answer.

    A reply that does not parse (a Redis that is not one, or lies) is logged and counts
    as unreachable: nothing is decided from it.
    """
    try:
        replies = link.pipeline(
            ("INFO", "server"),
            ("INFO", "replication"),
            ("INFO", "persistence"),
            ("CONFIG", "GET", "min-replicas-to-write"),
            ("GET", EPOCH_KEY),
            ("GET", HEARTBEAT_KEY),
        )
    except (RedisError, OSError):
        return UNREACHABLE
    errors = [r for r in replies if isinstance(r, ReplyError)]
    if any(e.code == LOADING for e in errors):
        return RedisState(reachable=True, loading=True)
    if errors:
        return UNREACHABLE
    server, repl, persistence, config, epoch, beat = replies
    try:
        state = parse_state(
            parse_info(server),
            parse_info(repl),
            parse_info(persistence),
            pairs(config),
            "" if epoch is None else epoch,
        )
    except (DataError, RedisError) as exc:
        log.warning("ignoring a malformed INFO reply", extra={"error": str(exc)})
        return UNREACHABLE
    if isinstance(beat, str) and len(beat) <= MAX_TEXT:
        state = replace(state, heartbeat=beat)
    return state


#: The commands of a pulse, encoded once: it is read every tick on every resting agent.
_PULSE = encode("GET", HEARTBEAT_KEY) + encode("ROLE")


def read_pulse(link: Link) -> Pulse | None:
    """The heartbeat and ``ROLE`` of a resting agent's Redis; None if it does not answer
    both, or answers something else."""
    try:
        beat, role = link.exchange(_PULSE, 2)
    except (RedisError, OSError):
        return None
    return parse_pulse(beat, role)


def parse_pulse(beat: object, role: object) -> Pulse | None:
    """A GET of the heartbeat and a ``ROLE`` reply as a Pulse (None if either is not what
    Redis answers). The heartbeat reads as :func:`read_state` reads it."""
    if not (beat is None or isinstance(beat, str)) or not isinstance(role, list) or not role:
        return None
    heartbeat = beat if isinstance(beat, str) and len(beat) <= MAX_TEXT else None
    if role[0] != "slave":
        return Pulse(heartbeat, str(role[0]))
    if len(role) < 4 or not isinstance(role[1], str) or not isinstance(role[2], int):
        return None
    if not 0 < role[2] < 65536:
        return None
    return Pulse(heartbeat, "slave", format_address(role[1], role[2]), role[3] == "connected")


def _int(section: Any, key: str) -> int:
    """An integer field of an INFO section (absent: 0); DataError if it is anything else."""
    value = section.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DataError(f"INFO field {key!r} is not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise DataError(f"INFO field {key!r} is not an integer: {value!r}") from None


def _text(section: Any, key: str) -> str:
    value = section.get(key, "")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DataError(f"INFO field {key!r} is not text: {value!r}")
    return str(value)


def parse_state(
    server: Any, repl: Any, persistence: Any, config: Any, epoch_key: Any = None
) -> RedisState:
    """The parsed ``INFO server``, ``replication``, ``persistence`` and ``CONFIG GET`` replies
    and the epoch key's value ("" if absent, None if not read), as mappings
    (:func:`~prodstate.redis.link.parse_info`), as a RedisState; DataError if any is malformed."""
    if not all(isinstance(part, dict) for part in (server, repl, persistence, config)):
        raise DataError("INFO or CONFIG GET reply is not a mapping")
    if epoch_key is not None and not isinstance(epoch_key, str):
        raise DataError(f"epoch key is not text: {epoch_key!r}")
    role = _text(repl, "role")
    links = _replica_links(repl)
    master = ""
    if role == "slave":
        port = _int(repl, "master_port")
        if not 0 < port < 65536:
            raise DataError(f"INFO master_port {port} is out of range")
        master = format_address(_text(repl, "master_host"), port)
    return RedisState(
        reachable=True,
        role=role,
        run_id=_text(server, "run_id"),
        replid=_text(repl, "master_replid"),
        replid2=_text(repl, "master_replid2"),
        offset=_int(repl, "master_repl_offset"),
        master=master,
        link_up=repl.get("master_link_status") == "up",
        sync_in_progress=bool(_int(repl, "master_sync_in_progress")),
        min_replicas_to_write=_int(config, "min-replicas-to-write"),
        loading=bool(_int(persistence, "loading")),
        replicas=tuple(address for address, _ in links),
        acking=tuple(address for address, acking in links if acking),
        epoch_key=None if epoch_key is None else epoch_key[:64],
    )


def _replica_links(repl: dict) -> list[tuple[str, bool]]:
    """``slaveN`` entries of INFO replication as (announced ``host:port``, acknowledging),
    sorted; entries that do not name a valid address are left out. A replica acknowledges
    while it is online with a ``lag`` of at most ``MAX_ACK_LAG`` seconds (measured by this
    Redis's own clock), or while it is being sent a full copy."""
    found = []
    for key, value in repl.items():
        if not (isinstance(key, str) and key.startswith("slave") and isinstance(value, dict)):
            continue
        try:
            port = _int(value, "port")
        except DataError:
            continue
        if "ip" in value and 0 < port < 65536 and isinstance(value["ip"], str | int):
            state = value.get("state")
            try:
                lag = _int(value, "lag") if "lag" in value else MAX_ACK_LAG + 1
            except DataError:
                lag = MAX_ACK_LAG + 1
            acking = state in _SYNCING or (state == "online" and lag <= MAX_ACK_LAG)
            found.append((format_address(str(value["ip"]), port), acking))
    return sorted(found)


#: ``INFO`` states of a replica being sent a full copy (it acknowledges once online).
_SYNCING = ("wait_bgsave", "send_bulk")


#: The Redis setting that publishes a notification for every change of a key.
NOTIFY_KEYSPACE_EVENTS = "notify-keyspace-events"
#: What Redis 7's ``A`` flag stands for (every class of event but key misses and new keys).
_ALL_EVENTS = "g$lshzxetd"


def merge_event_flags(current: str, needed: str) -> str:
    """``notify-keyspace-events`` holding both ``current``'s flags and ``needed``'s, written
    as Redis writes it back (``A`` for all classes, then the rest), so a Redis that already
    has them is left alone: ``merge_event_flags("Ex", "KA") == "AKE"``."""
    flags = set(current) | set(needed)
    if "A" in flags:
        flags |= set(_ALL_EVENTS)
        flags.discard("A")
    text = "A" if set(_ALL_EVENTS) <= flags else "".join(c for c in _ALL_EVENTS if c in flags)
    return text + "".join(c for c in "KEmn" if c in flags)


class HandOverFailed(RedisError):
    """Redis did not hand its role over; it is still the master (the reason is the text)."""


class RedisControl:
    """The local Redis an agent manages (or a peer's, for reads and fencing)."""

    def __init__(
        self,
        address: str,
        timeout: float = 1.0,
        *,
        user: Secret | None = None,
        tls: TlsFiles | None = None,
        servers: ServerChecks | None = None,
    ) -> None:
        """``servers`` checks each address this Redis is made to replicate from (by default,
        with TLS, a check of its own that remembers nothing)."""
        self.address = address
        self.link = Link(address, timeout, user=user, tls=tls)
        self.servers = servers if servers is not None else ServerChecks(tls)
        self._rewrite_warned = False

    def state(self) -> RedisState:
        """Current state, or UNREACHABLE."""
        return read_state(self.link)

    def pulse(self) -> Pulse | None:
        """The heartbeat and role (see :func:`read_pulse`)."""
        return read_pulse(self.link)

    def configure(self, settings: dict[str, str]) -> None:
        """``CONFIG SET`` each setting the tree needs (only those that differ). The flags
        of ``notify-keyspace-events`` are added to those the operator set, not put in
        their place."""
        current = pairs(self.link.call("CONFIG", "GET", "*"))
        for key, value in settings.items():
            if key == NOTIFY_KEYSPACE_EVENTS:
                value = merge_event_flags(str(current.get(key, "")), value)
            if str(current.get(key)) != str(value):
                self.link.call("CONFIG", "SET", key, value)

    def load_scripts(self) -> None:
        """``SCRIPT LOAD`` the fenced scripts clients run by digest (see redis.scripts)."""
        for script in SCRIPTS:
            self.link.call("SCRIPT", "LOAD", script.text)

    def set_user(self, args: list[str]) -> None:
        """``ACL SETUSER`` with ``args`` (a user name, then its rules)."""
        self.link.call("ACL", "SETUSER", *args)

    def announce(self, address: str) -> None:
        """Have this Redis name itself ``address`` to any master (``replica-announce-ip``
        and ``-port``), as its own agent would. Another agent that re-points this Redis
        sets them first: Redis reads ``replica-announce-ip`` once when it sends its
        handshake and again when it reads the answers, so one set in between (its agent
        configuring it just then) leaves the replica waiting for an answer that never
        comes, with its link down until ``repl-timeout``."""
        host, port = parse_address(address)
        self.configure({"replica-announce-ip": host, "replica-announce-port": str(port)})

    def replicate(self, address: str) -> None:
        """``REPLICAOF`` address, then ``CONFIG REWRITE`` (see persist_config). With TLS,
        only once the certificate at ``address`` proves to be a server's for that address
        (UntrustedServer if not: Redis itself checks only the CA)."""
        host, port = parse_address(address)
        self.servers.check(address)
        self.link.call("REPLICAOF", host, port)
        self.persist_config()

    def wait_caught_up(self, peer: RedisControl, timeout: float, poll: float = 0.005) -> bool:
        """Wait until ``peer`` has reached this Redis's replication offset, this one read
        first each time; False on timeout (an unreachable peer has not)."""
        deadline = time.monotonic() + timeout
        while True:
            own = self.state()
            theirs = peer.state()
            if theirs.reachable and theirs.offset >= own.offset:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def request_ack(self) -> None:
        """``REPLCONF GETACK``: have this replica acknowledge its offset to its master now,
        not at its next once-a-second acknowledgement. Redis answers it with nothing, so a
        PING follows on the same connection and its answer is read."""
        self.link.send_only("REPLCONF", "GETACK", "*")

    def hand_over(self, peer: RedisControl, timeout: float = 2.0, poll: float = 0.005) -> None:
        """Make ``peer``, a replica of this fenced master, the master with Redis's own
        coordinated ``FAILOVER``; return once this Redis is its replica (at once if it is).

        A fence refuses writes, but the stream still grows: PINGs, expirations and the
        ``REPLCONF GETACK`` of clients waiting in ``WAIT``; a replica left a few bytes past
        the new master would resume with a full resync, and a new master missing them
        would find the old one ahead of it. ``FAILOVER`` pauses writes and holds all of
        that back, waits until the target has acknowledged every byte, then turns this
        Redis into its replica and has the target take over. The target is asked to
        acknowledge at once (request_ack) instead of at its next periodic acknowledgement,
        up to a second later. Never with ``FORCE``: a PING sent just before the pause would
        then be the bytes the new master lacks. HandOverFailed if Redis refused, or aborted
        because the target had not acknowledged within ``timeout``: this Redis is then
        still the master."""
        address = peer.address
        if self.state().master == address:
            return
        host, port = parse_address(address)
        self.servers.check(address)
        try:
            self.link.call("FAILOVER", "TO", host, port, "TIMEOUT", max(1, round(timeout * 1000)))
        except ReplyError as exc:
            raise HandOverFailed(f"FAILOVER refused: {exc}") from None
        deadline = time.monotonic() + timeout + 1.0
        while (state := self.link.info("replication").get("master_failover_state")) != (
            "no-failover"
        ):
            if time.monotonic() >= deadline:
                with contextlib.suppress(ReplyError):  # ended meanwhile
                    self.link.call("FAILOVER", "ABORT")
                break
            if state == "waiting-for-sync":
                with contextlib.suppress(RedisError, OSError):  # it acknowledges each second anyway
                    peer.request_ack()
            time.sleep(poll)
        if self.state().master != address:
            raise HandOverFailed(
                f"FAILOVER to {address} aborted (not acknowledged within {timeout:g}s, or "
                "refused): see the Redis log"
            )
        self.persist_config()

    def fence(self) -> None:
        """Refuse every write from now on (reads and replication go on)."""
        self.link.call("CONFIG", "SET", "min-replicas-to-write", FENCE_MIN_REPLICAS)

    def promote(self) -> None:
        """Fence, then ``REPLICAOF NO ONE``: a master that refuses writes until served."""
        self.fence()
        self.link.call("REPLICAOF", "NO", "ONE")
        self.persist_config()

    def persist_config(self) -> bool:
        """``CONFIG REWRITE``: a restarted Redis comes back as what the agent made it, a
        replica of the same master (its saved dataset then resumes with a partial resync,
        instead of starting as a master with a new replication id), or a fenced master.

        The file holds ``masterauth``: it is not rewritten in a folder others may write
        (they could replace it), and its mode is put back after the rewrite (Redis writes
        a new file with its own default mode). False, and a warning once, when the file is
        not rewritten (no config file, not writable, or unsafe)."""
        path = self.config_file()
        unsafe = writable_by_others(os.path.dirname(path)) if path else ""
        if unsafe:
            self._warn_once("not rewriting redis.conf: a restarted Redis will not resume", unsafe)
            return False
        mode = file_mode(path) if path else None
        try:
            self.link.call("CONFIG", "REWRITE")
        except ReplyError as exc:
            self._warn_once(
                "CONFIG REWRITE refused: a restarted Redis will not resume its replication",
                str(exc),
            )
            return False
        if mode is not None and file_mode(path) != mode:
            try:
                os.chmod(path, mode)
            except OSError as exc:  # not the file's owner: the rewrite stands, say so
                self._warn_once(
                    f"cannot put back mode {mode:o} on redis.conf after CONFIG REWRITE: it "
                    "holds masterauth and may be readable by others (run the agent as the "
                    "file's owner, or redis-server with UMask=0077)",
                    exc.strerror or type(exc).__name__,
                )
                return True
            log.info(
                "restored the mode of redis.conf after CONFIG REWRITE",
                extra={"redis": self.address, "path": path, "mode": f"{mode:o}"},
            )
        return True

    def config_file(self) -> str:
        """The path of this Redis's config file ("" if it has none or does not say)."""
        try:
            path = self.link.info("server").get("config_file", "")
        except (RedisError, OSError):
            return ""
        return path if isinstance(path, str) else ""

    def _warn_once(self, message: str, error: str) -> None:
        if not self._rewrite_warned:
            log.warning(message, extra={"redis": self.address, "error": error})
            self._rewrite_warned = True

    def serve(self, min_replicas: int, epoch: int) -> None:
        """Accept writes acknowledged by ``min_replicas`` replicas; record the epoch first."""
        self.link.call("CONFIG", "SET", "min-replicas-to-write", 0)
        self.link.call("SET", EPOCH_KEY, epoch)
        self.link.call("CONFIG", "SET", "min-replicas-to-write", min_replicas)

    def drop_replicas(self, user: str | None = None) -> None:
        """Close every replica link, or those authenticated as ``user`` (aborts full syncs
        that have not started sending)."""
        self.link.call("CLIENT", "KILL", "TYPE", "replica", *(("USER", user) if user else ()))

    def user_enabled(self, user: str) -> bool | None:
        """True if ACL user ``user`` is on, False if off, None if absent or unreadable."""
        try:
            reply = self.link.call("ACL", "GETUSER", user)
            if reply is None:
                return None
            flags = pairs(reply).get("flags")
        except (RedisError, OSError):
            return None
        return isinstance(flags, list) and "on" in flags

    def heartbeat(self, now: float) -> bool:
        """Write the heartbeat key (no TTL); False if Redis refused it (e.g. fenced)."""
        try:
            self.link.call("SET", HEARTBEAT_KEY, f"{now:.6f}")
        except ReplyError:
            return False
        return True

    def close(self) -> None:
        """Close the connection."""
        self.link.close()

    def __enter__(self) -> RedisControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
