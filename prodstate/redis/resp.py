"""A minimal Redis client: RESP2 over one socket, for ``prodstate check``, ``get`` and the agent.

``check`` and ``get`` run every minute on every machine, and the agent runs on every
machine for good: importing redis-py costs the first several times Python's own start-up
and the second 20 MiB of memory. This speaks just what they need of RESP2: commands out;
simple strings, errors, integers, bulk strings and arrays in (no RESP3), over TCP or TLS
(:class:`~prodstate.security.tls.TlsFiles`, the server's name checked), with ``AUTH`` as
an ACL user. Every reply is bounded in size and depth; anything else is a
:class:`ProtocolError`. Clients and tools use redis-py.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, BinaryIO

from prodstate.core.address import parse_address

if TYPE_CHECKING:
    from prodstate.security.credentials import Secret
    from prodstate.security.tls import TlsFiles

#: The longest status, error or length line read, in bytes.
MAX_LINE = 64 * 1024
#: The longest bulk string read by default, in bytes (the whole dataset is tens of MB).
MAX_BULK = 64 * 1024 * 1024
#: The most elements an array reply may hold, and how deep arrays may nest.
MAX_ARRAY = 1024 * 1024
MAX_DEPTH = 8

Reply = bytes | str | int | list | None


class RedisError(Exception):
    """Redis answered, but not with what was asked for (an error or a malformed reply)."""


class ProtocolError(RedisError):
    """The server answered something that is not a RESP2 reply this client reads."""


class ReplyEnded(ProtocolError):
    """The stream ended in the middle of a reply (a closed connection, or data not all
    received yet)."""


class ReplyError(RedisError):
    """An error reply (``-ERR ...``); ``code`` is its first word, e.g. ``NOAUTH``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = message.split(" ", 1)[0]


def encode(*args: str | bytes) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _line(stream: BinaryIO) -> bytes:
    line = stream.readline(MAX_LINE + 2)
    if not line:
        raise ReplyEnded("connection closed before the reply ended")
    if not line.endswith(b"\r\n"):
        if len(line) > MAX_LINE:
            raise ProtocolError(f"reply line longer than {MAX_LINE} bytes")
        raise ReplyEnded("connection closed before the reply ended")
    return line[:-2]


def _integer(text: bytes) -> int:
    digits = text[1:] if text[:1] == b"-" else text
    if not digits.isdigit() or len(text) > 20:  # bytes.isdigit is ASCII digits only
        raise ProtocolError(f"not an integer in the reply: {text[:40]!r}")
    return int(text)


def read_reply(stream: BinaryIO, max_bulk: int = MAX_BULK, depth: int = 0) -> Reply:
    """One reply from ``stream`` (a buffered binary file): bytes for a bulk string, None
    for a null one, str for a status, int for an integer, a list for an array; ReplyError
    for an error reply (an error inside an array is its element, not raised),
    ProtocolError for anything else, a bulk string over ``max_bulk`` bytes, or arrays
    longer than ``MAX_ARRAY`` or deeper than ``MAX_DEPTH``."""
    line = _line(stream)
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode("utf-8", "replace")
    if kind == b"-":
        raise ReplyError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return _integer(rest)
    if kind == b"$":
        size = _integer(rest)
        if size == -1:
            return None
        if not 0 <= size <= max_bulk:
            raise ProtocolError(f"bulk string of {size} bytes (at most {max_bulk} read)")
        data = stream.read(size + 2)
        if len(data) != size + 2:
            raise ReplyEnded("connection closed before the reply ended")
        if data[-2:] != b"\r\n":
            raise ProtocolError("bulk string not ended by CRLF")
        return data[:-2]
    if kind == b"*":
        count = _integer(rest)
        if count == -1:
            return None
        if not 0 <= count <= MAX_ARRAY or depth >= MAX_DEPTH:
            raise ProtocolError(f"array of {count} elements at depth {depth} not read")
        items: list = []
        for _ in range(count):
            try:
                items.append(read_reply(stream, max_bulk, depth + 1))
            except ReplyError as exc:
                items.append(exc)
        return items
    raise ProtocolError(f"unexpected reply type {kind!r}")


class Connection:
    """One connection to the Redis at ``HOST:PORT``; every socket operation is bounded by
    ``timeout``. OSError (``TimeoutError`` included) if it cannot connect, ReplyError if
    ``AUTH`` is refused."""

    def __init__(
        self,
        address: str,
        timeout: float,
        *,
        user: Secret | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        host, port = parse_address(address)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            if tls is not None:
                sock = tls.context().wrap_socket(sock, server_hostname=host)
            self._sock = sock
            self._stream: BinaryIO = sock.makefile("rb")
            if user is not None:
                self.call("AUTH", user.user, user.password)
        except BaseException:
            sock.close()
            raise

    @property
    def socket(self) -> socket.socket:
        """The connection's socket (a subscriber waits on it)."""
        return self._sock

    def send(self, *commands: tuple[str | bytes, ...]) -> None:
        """Send ``commands`` in one write (a pipeline); read their replies in order."""
        self._sock.sendall(b"".join(encode(*command) for command in commands))

    def send_raw(self, payload: bytes) -> None:
        """Send commands already encoded (:func:`encode`)."""
        self._sock.sendall(payload)

    def reply(self, max_bulk: int = MAX_BULK) -> Reply:
        """The next reply (see :func:`read_reply`)."""
        return read_reply(self._stream, max_bulk)

    def call(self, *args: str | bytes, max_bulk: int = MAX_BULK) -> Reply:
        """Send one command and return its reply."""
        self.send(args)
        return self.reply(max_bulk)

    def close(self) -> None:
        self._stream.close()
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
