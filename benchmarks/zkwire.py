"""A small asyncio ZooKeeper client for ``zk_sessions.py``: thousands of sessions, no threads.

kazoo gives every client a few threads, so 10,000 kazoo sessions do not fit on two cores.
This client speaks the same wire protocol with kazoo's own request and reply classes
(``kazoo.protocol.serialization``) on asyncio, and behaves as kazoo does where the load
depends on it:

* a connection attempt goes through the hosts in a shuffled order; after a whole round
  fails it waits ``delay`` x U(0.6, 1.4), the delay doubling from 0.1 s up to ``max_delay``
  (the agent's ``KazooRetry(delay=0.1, max_delay=1.0)``), and back to 0.1 s once connected;
* the handshake sends the session id, password and last zxid seen, so a reconnect resumes
  the session; a session the server answers as expired starts a new one (kazoo's LOST);
* a ping goes out when nothing was sent for ``read_timeout / 2 - U(0.01, 0.4)`` s
  (``read_timeout`` = 2/3 of the negotiated session timeout), and a connection on which
  nothing arrived since an unanswered ping is dropped;
* watches live on the connection: after a drop nothing is watched (kazoo does not set its
  watches again), which the session's owner is told by ``on_state``.

Every request is counted by kind (``Counts``), pings and connection attempts apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import EXCEPTIONS, ConnectionLoss, NoNodeError, SessionExpiredError
from kazoo.protocol.serialization import (
    Auth,
    Close,
    Connect,
    Exists,
    Ping,
    ReplyHeader,
    Watch,
    int_struct,
)

WATCH_XID, PING_XID, AUTH_XID = -1, -2, -4
#: Session states told to ``on_state`` (kazoo's KazooState names).
CONNECTED, SUSPENDED, LOST = "CONNECTED", "SUSPENDED", "LOST"
#: The most a frame may hold (ZooKeeper's own jute.maxbuffer default is 1 MB).
MAX_FRAME = 4 * 1024 * 1024


def frame(request: Any, xid: int | None = None) -> bytes:
    """One request on the wire, as kazoo's ``_submit`` writes it: length, xid and type (the
    handshake has neither), then the body."""
    body = bytearray()
    if xid is not None:
        body += int_struct.pack(xid)
    if request.type is not None:
        body += int_struct.pack(request.type)
    body += request.serialize()
    return int_struct.pack(len(body)) + bytes(body)


class Framer:
    """Cuts a byte stream into ZooKeeper's length-prefixed frames."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; the frames now complete, oldest first."""
        self.buffer += data
        frames = []
        start = 0
        while len(self.buffer) - start >= 4:
            (length,) = int_struct.unpack_from(self.buffer, start)
            if not 0 <= length <= MAX_FRAME:
                raise ConnectionLoss(f"bad frame length {length}")
            end = start + 4 + length
            if len(self.buffer) < end:
                break
            frames.append(bytes(self.buffer[start + 4 : end]))
            start = end
        del self.buffer[:start]
        return frames


def request_name(request: Any) -> str:
    """The kind of a request, for counting: ``GetData``, ``GetChildren``, ``Create``..."""
    return type(request).__name__


class Counts:
    """What one session sent: requests by kind, pings, connection attempts and outcomes.
    While ``trace`` is a list, each request is also noted there as (time, kind, ``tag``)."""

    __slots__ = (
        "connects", "drops", "expired", "failed_connects", "pings", "requests", "tag", "trace",
    )  # fmt: skip

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.pings = 0
        self.connects = 0  # handshakes answered
        self.failed_connects = 0  # attempts refused, timed out or cut before an answer
        self.drops = 0  # established connections lost
        self.expired = 0  # sessions the server answered as expired
        self.tag = ""  # what the session's owner is doing (set by it)
        self.trace: list[tuple[float, str, str]] | None = None

    def add(self, name: str) -> None:
        self.requests[name] = self.requests.get(name, 0) + 1
        if self.trace is not None:
            self.trace.append((time.monotonic(), name, self.tag))

    @property
    def total(self) -> int:
        """Requests, pings and handshakes excluded."""
        return sum(self.requests.values())

    def snapshot(self) -> dict[str, int]:
        """Every counter, requests under their kind's name."""
        return {
            **self.requests,
            "ping": self.pings,
            "connect": self.connects,
            "failed_connect": self.failed_connects,
            "drop": self.drops,
            "expired": self.expired,
        }


class Reply:
    """A parsed frame: a watch event, a ping's reply, or the reply to request ``xid``."""

    __slots__ = ("err", "event", "offset", "raw", "xid", "zxid")

    def __init__(self, raw: bytes) -> None:
        header, self.offset = ReplyHeader.deserialize(raw, 0)
        self.raw, self.xid, self.zxid, self.err = raw, header.xid, header.zxid, header.err
        self.event: Watch | None = None
        if self.xid == WATCH_XID:
            self.event, _ = Watch.deserialize(raw, self.offset)

    def result(self, request: Any) -> Any:
        """The request's answer (an Exists on a missing node answers None), else raise
        kazoo's exception for the error code."""
        if self.err:
            if self.err == NoNodeError.code and isinstance(request, Exists):
                return None
            raise EXCEPTIONS[self.err]()
        if isinstance(request, Close) or not hasattr(request, "deserialize"):
            return None
        return request.deserialize(self.raw, self.offset)


class _Sweeper:
    """Times out the requests of every session on one event loop, a few times a second: one
    timer for all of them rather than one per request (10,000 sessions' requests would keep
    hundreds of thousands of timers in the loop's heap)."""

    EVERY = 0.25

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sessions: set[Session] = set()
        loop.call_later(self.EVERY, self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions):
            session.expire_requests(now)
        self.loop.call_later(self.EVERY, self._sweep)


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = (
    weakref.WeakKeyDictionary()
)


def _sweeper() -> _Sweeper:
    loop = asyncio.get_running_loop()
    if loop not in _sweepers:
        _sweepers[loop] = _Sweeper(loop)
    return _sweepers[loop]


class _Wire(asyncio.Protocol):
    """One TCP connection of a Session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.framer = Framer()
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.session.last_recv = time.monotonic()
        try:
            frames = self.framer.feed(data)
        except ConnectionLoss:
            self.abort()
            return
        for raw in frames:
            if not self.handshake.done():
                self.handshake.set_result(raw)
            else:
                self.session.received(self, raw)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionLoss("closed during the handshake"))
            self.handshake.exception()  # nobody may be waiting any more: no warning
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Session:
    """One ZooKeeper session kept connected, as a kazoo client keeps it."""

    def __init__(
        self,
        hosts: list[tuple[str, int]],
        timeout: float,
        *,
        on_state: Callable[[str], None],
        on_watch: Callable[[Watch], None],
        auth: tuple[str, str] | None = None,
        max_delay: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.hosts = list(hosts)
        self.timeout = timeout
        self.on_state, self.on_watch = on_state, on_watch
        self.auth = auth
        self.max_delay = max_delay
        self.rng = rng or random.Random()
        self.counts = Counts()
        self.session_id, self.passwd, self.last_zxid = 0, b"\x00" * 16, 0
        self.negotiated = timeout
        self.state = LOST
        self.wire: _Wire | None = None
        #: Requests sent and not answered: (request, its future, xid, answer due by).
        self.pending: deque[tuple[Any, asyncio.Future[Any], int, float]] = deque()
        self.xid = 0
        self.last_send = self.last_recv = self.ping_sent = 0.0
        self.ping_outstanding = False
        self.stopped = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_from = 0.0
        self.task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED

    def start(self) -> None:
        """Connect in the background, and keep connecting until ``close``."""
        _sweeper().sessions.add(self)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        delay = 0.1
        while not self.stopped:
            order = self.hosts[:]
            self.rng.shuffle(order)
            for host in order:
                if self.stopped:
                    return
                if await self._attempt(host):
                    delay = 0.1  # kazoo resets its retry once a connection is made
            if self.stopped:
                return
            await asyncio.sleep(delay * self.rng.uniform(0.6, 1.4))
            delay = min(delay * 2, self.max_delay)

    async def _attempt(self, host: tuple[str, int]) -> bool:
        """Connect to one server and serve the connection until it ends; whether the
        handshake was answered."""
        loop = asyncio.get_running_loop()
        handshake_timeout = self.timeout / len(self.hosts)
        wire: _Wire | None = None
        try:
            _, wire = await asyncio.wait_for(
                loop.create_connection(lambda: _Wire(self), *host), self.timeout
            )
            connect = Connect(
                0, self.last_zxid, int(self.timeout * 1000), self.session_id, self.passwd, False
            )
            wire.write(frame(connect))
            raw = await asyncio.wait_for(asyncio.shield(wire.handshake), handshake_timeout)
            answer, _ = Connect.deserialize(raw, 0)
        except (TimeoutError, OSError, ConnectionLoss):
            self.counts.failed_connects += 1
            if wire is not None:
                wire.abort()
            return False
        if answer.time_out <= 0:  # the server no longer knows this session
            wire.abort()
            self.counts.expired += 1
            self.session_id, self.passwd, self.last_zxid = 0, b"\x00" * 16, 0
            self._set_state(LOST)
            return True
        self.counts.connects += 1
        self.session_id, self.passwd = answer.session_id, answer.passwd
        self.negotiated = answer.time_out / 1000
        self.wire, self.xid, self.ping_outstanding = wire, 0, False
        self.last_send = self.last_recv = time.monotonic()
        if self.auth:
            wire.write(frame(Auth(0, *self.auth), AUTH_XID))
        self._schedule_ping()
        self._set_state(CONNECTED)
        await wire.closed
        self._connection_ended()
        return True

    def _connection_ended(self) -> None:
        self.wire = None
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        while self.pending:
            _, future, _, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(ConnectionLoss())
        if not self.stopped:
            self.counts.drops += 1
            self._set_state(SUSPENDED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    # --- pings ----------------------------------------------------------------------------

    def _ping_interval(self) -> float:
        return self.negotiated / 3 - self.rng.randint(1, 40) / 100

    def _schedule_ping(self) -> None:
        self._ping_from = self.last_send
        at = self.last_send + self._ping_interval()
        self._ping_timer = asyncio.get_running_loop().call_at(at, self._ping_due)

    def _ping_due(self) -> None:
        """Nothing was sent for a ping interval (else wait again from the last send): drop
        the connection if nothing came since the last ping, else ping."""
        wire = self.wire
        if wire is None:
            return
        if self.last_send > self._ping_from:
            self._schedule_ping()
            return
        if self.ping_outstanding and self.last_recv < self.ping_sent:
            wire.abort()  # kazoo: "outstanding heartbeat ping not received"
            return
        self.ping_outstanding = True
        self.ping_sent = self.last_send = time.monotonic()
        self.counts.pings += 1
        wire.write(frame(Ping(), PING_XID))
        self._schedule_ping()

    # --- requests -------------------------------------------------------------------------

    async def call(self, request: Any, timeout: float) -> Any:
        """Send ``request`` and wait at most ``timeout`` s for its answer; ConnectionLoss if
        not connected or the connection drops, TimeoutError if no answer comes in time
        (the reply, when it comes, is then read and dropped, as kazoo does)."""
        wire = self.wire
        if wire is None or self.state != CONNECTED:
            raise ConnectionLoss("not connected")
        self.xid = self.xid % 2147483647 + 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.last_send = time.monotonic()
        self.pending.append((request, future, self.xid, self.last_send + timeout))
        self.counts.add(request_name(request))
        wire.write(frame(request, self.xid))
        return await future

    def expire_requests(self, now: float) -> None:
        """Fail the requests whose answer is overdue with TimeoutError (their replies, if
        they come, are dropped)."""
        for request, future, _, due in self.pending:
            if due > now:
                return
            if not future.done():
                future.set_exception(TimeoutError(f"{request_name(request)} unanswered"))

    def received(self, wire: _Wire, raw: bytes) -> None:
        """One frame from the server (called by the connection)."""
        reply = Reply(raw)
        if reply.zxid > 0:
            self.last_zxid = reply.zxid
        if reply.xid == PING_XID:
            self.ping_outstanding = False
        elif reply.xid == WATCH_XID:
            assert reply.event is not None
            self.on_watch(reply.event)
        elif reply.xid == AUTH_XID:
            if reply.err:
                wire.abort()
        elif self.pending:
            request, future, xid, _ = self.pending.popleft()
            if xid != reply.xid:
                wire.abort()  # out of order: kazoo raises and drops the connection
                return
            if future.done():
                return
            try:
                future.set_result(reply.result(request))
            except Exception as exc:
                future.set_exception(exc)

    async def close(self, timeout: float = 5.0) -> None:
        """End the session (its ephemeral znodes go at once) and stop connecting."""
        self.stopped = True
        wire = self.wire
        if wire is not None and self.state == CONNECTED:
            with contextlib.suppress(ConnectionLoss, SessionExpiredError, TimeoutError):
                await self.call(Close(), timeout)
            wire.abort()
        if self.task is not None:
            self.task.cancel()
        _sweeper().sessions.discard(self)
        self.state = LOST

    def drop(self) -> None:
        """Cut the connection without ending the session (a network blip)."""
        if self.wire is not None:
            self.wire.abort()
