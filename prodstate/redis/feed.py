"""The keyspace notifications of one key, on a connection of their own.

A resting agent sleeps on this connection instead of a timer: Redis tells it each time the
root's heartbeat lands in its local copy (the agent turns keyspace notifications on when it
configures its Redis), so that it wakes once per heartbeat, not once to ask and once more
for the answer. The connection is read without blocking: :meth:`KeyFeed.drain` takes what
has arrived.
"""

from __future__ import annotations

import io
import socket
import ssl
from typing import TYPE_CHECKING

from prodstate.redis.resp import Connection, ProtocolError, RedisError, ReplyEnded, read_reply

if TYPE_CHECKING:
    from prodstate.security.credentials import Secret
    from prodstate.security.tls import TlsFiles

#: The most bytes of notifications buffered unparsed (each is well under 100 bytes).
MAX_PENDING = 64 * 1024


def channel_of(key: str, db: int = 0) -> str:
    """The keyspace channel of ``key`` in database ``db``."""
    return f"__keyspace@{db}__:{key}"


def split_messages(data: bytes) -> tuple[list[object], bytes]:
    """The complete RESP replies at the start of ``data``, and the incomplete rest.
    ProtocolError if ``data`` holds something that is not RESP."""
    stream = io.BytesIO(data)
    messages: list[object] = []
    consumed = 0
    while consumed < len(data):
        try:
            messages.append(read_reply(stream, max_bulk=MAX_PENDING))
        except ReplyEnded:
            break
        consumed = stream.tell()
    return messages, data[consumed:]


def count_writes(messages: list[object], channel: str) -> int:
    """How many of ``messages`` notify a ``SET`` of the key of ``channel`` (other events,
    a deletion say, are not writes of a new value); ProtocolError for a message a
    subscribed connection does not receive."""
    wanted = channel.encode()
    count = 0
    for message in messages:
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            raise ProtocolError(f"not a notification: {message!r:.80}")
        count += message[1] == wanted and message[2] == b"set"
    return count


class KeyFeed:
    """The notifications of ``key`` (database 0) at the Redis at ``address``: connect with
    :meth:`open`, wait on :meth:`fileno`, count arrivals with :meth:`drain`."""

    def __init__(
        self,
        address: str,
        key: str,
        timeout: float = 1.0,
        *,
        user: Secret | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = address
        self.channel = channel_of(key)
        self.timeout = timeout
        self._user = user
        self._tls = tls
        self._conn: Connection | None = None
        self._pending = b""

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def open(self) -> None:
        """Connect and subscribe (once open, nothing). OSError if Redis is out of reach,
        RedisError if it refuses (an ACL without the channel) or answers something else."""
        if self._conn is not None:
            return
        conn = Connection(self.address, self.timeout, user=self._user, tls=self._tls)
        try:
            reply = conn.call("SUBSCRIBE", self.channel)
            if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
                raise ProtocolError(f"SUBSCRIBE answered {reply!r:.80}")
        except BaseException:
            conn.close()
            raise
        conn.socket.setblocking(False)
        self._conn = conn
        self._pending = b""

    def fileno(self) -> int:
        """The socket to wait on (ValueError when not open)."""
        if self._conn is None:
            raise ValueError("the feed is not open")
        return self._conn.socket.fileno()

    def drain(self) -> int | None:
        """Read what has arrived, without waiting: how many writes of the key were notified
        (0 if none); None if the connection ended or carried something else (it is closed then:
        the Redis restarted, or the agent must read it another way)."""
        if self._conn is None:
            return None
        try:
            data = self._receive(self._conn.socket)
            if data is None:
                self.close()
                return None
            messages, self._pending = split_messages(self._pending + data)
            if len(self._pending) > MAX_PENDING:
                raise ProtocolError("an unfinished notification of over 64 KiB")
            return count_writes(messages, self.channel)
        except (OSError, RedisError):
            self.close()
            return None

    @staticmethod
    def _receive(sock: socket.socket) -> bytes | None:
        """Every byte available now (b"" if none); None at the end of the connection."""
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            if not chunk:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._pending = b""
