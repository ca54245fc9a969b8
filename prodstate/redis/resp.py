"""A minimal Redis client for the one-shot reads of ``prodstate check`` and ``prodstate get``.

Those commands run every minute on every machine, and importing redis-py costs them
several times Python's own start-up. This speaks just what they need of RESP2: commands
out, and simple strings, errors, integers and bulk strings in (no arrays, no RESP3), over
TCP or TLS (:class:`~prodstate.security.tls.TlsFiles`, the server's name checked), with
``AUTH`` as an ACL user. Every reply is bounded in size; anything else is a
:class:`ProtocolError`. Everything else in prodstate uses redis-py.
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

Reply = bytes | str | int | None


class ProtocolError(Exception):
    """The server answered something that is not a RESP2 reply this client reads."""


class ReplyError(Exception):
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
        raise ProtocolError("connection closed before the reply ended")
    if not line.endswith(b"\r\n"):
        if len(line) > MAX_LINE:
            raise ProtocolError(f"reply line longer than {MAX_LINE} bytes")
        raise ProtocolError("connection closed before the reply ended")
    return line[:-2]


def _integer(text: bytes) -> int:
    digits = text[1:] if text[:1] == b"-" else text
    if not digits.isdigit() or len(text) > 20:  # bytes.isdigit is ASCII digits only
        raise ProtocolError(f"not an integer in the reply: {text[:40]!r}")
    return int(text)


def read_reply(stream: BinaryIO, max_bulk: int = MAX_BULK) -> Reply:
    """One reply from ``stream`` (a buffered binary file): bytes for a bulk string, None
    for a null one, str for a status, int for an integer; ReplyError for an error reply,
    ProtocolError for anything else or a bulk string over ``max_bulk`` bytes."""
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
            raise ProtocolError("connection closed before the reply ended")
        if data[-2:] != b"\r\n":
            raise ProtocolError("bulk string not ended by CRLF")
        return data[:-2]
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

    def send(self, *commands: tuple[str | bytes, ...]) -> None:
        """Send ``commands`` in one write (a pipeline); read their replies in order."""
        self._sock.sendall(b"".join(encode(*command) for command in commands))

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
