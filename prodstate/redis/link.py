"""The agent's connection to one Redis: RESP2 commands with short timeouts, reconnecting.

A :class:`Link` holds at most one socket (:class:`prodstate.redis.resp.Connection`),
opened on first use. A failed connection (OSError, a timeout included, or a reply that
does not parse) is closed and the error raised: the next command connects again, and a
command is never retried by itself (the agent decides again on its next tick). An error
reply (``ReplyError``) leaves the connection as it is. Replies come back as text.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from prodstate.redis.resp import (
    Connection,
    ProtocolError,
    RedisError,
    Reply,
    ReplyError,
    encode,
)

if TYPE_CHECKING:
    from prodstate.security.credentials import Secret
    from prodstate.security.tls import TlsFiles

#: Error codes that mean "not allowed": retrying at once cannot fix them.
DENIED_CODES = frozenset({"NOAUTH", "WRONGPASS", "NOPERM"})
#: The error code of a Redis still loading its dataset.
LOADING = "LOADING"

Value = str | int | list | None | ReplyError
Info = dict[str, "str | dict[str, str]"]


def text(reply: Reply) -> Value:
    """A reply with its bulk strings decoded (UTF-8, undecodable bytes replaced)."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    if isinstance(reply, list):
        return [text(item) for item in reply]
    return reply


def parse_info(reply: Value) -> Info:
    """An ``INFO`` reply as a mapping: ``key: value`` lines as text, and lines whose value
    is a list of ``k=v`` pairs (``slave0:ip=...,port=...``, ``db0:keys=...``) as mappings.
    ProtocolError if the reply is not text."""
    if not isinstance(reply, str):
        raise ProtocolError(f"INFO reply is not text: {type(reply).__name__}")
    info: Info = {}
    for line in reply.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if "=" in value and key.startswith(("slave", "db")):
            info[key] = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
        else:
            info[key] = value
    return info


def pairs(reply: Value) -> dict[str, Value]:
    """A flat ``[key, value, ...]`` array reply (``CONFIG GET``, ``ACL GETUSER``) as a
    mapping; ProtocolError if it is not one."""
    if not isinstance(reply, list) or len(reply) % 2:
        raise ProtocolError("expected an array of key-value pairs")
    return {str(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def is_denied(exc: BaseException) -> bool:
    """True if ``exc`` is Redis refusing for lack of rights (a credential or an ACL rule)."""
    return isinstance(exc, ReplyError) and exc.code in DENIED_CODES


class Link:
    """Commands to the Redis at ``HOST:PORT``, each bounded by ``timeout`` seconds."""

    def __init__(
        self,
        address: str,
        timeout: float = 1.0,
        *,
        user: Secret | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._user = user
        self._tls = tls
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = Connection(self.address, self.timeout, user=self._user, tls=self._tls)
        return self._conn

    def pipeline(self, *commands: tuple[str | bytes | int | float, ...]) -> list[Value]:
        """Send ``commands`` in one write and read their replies in order; an error reply
        is returned in its place, not raised. OSError or ProtocolError (the connection is
        then closed) if the replies cannot all be read."""
        payload = b"".join(encode(*(_arg(a) for a in command)) for command in commands)
        return self.exchange(payload, len(commands))

    def exchange(self, payload: bytes, count: int) -> list[Value]:
        """Send ``payload``, ``count`` commands already encoded (:func:`encode`), and read
        their replies as :meth:`pipeline` does."""
        try:
            conn = self._connection()
            conn.send_raw(payload)
            replies: list[Value] = []
            for _ in range(count):
                try:
                    replies.append(text(conn.reply()))
                except ReplyError as exc:
                    replies.append(exc)
            return replies
        except (OSError, ProtocolError):
            self.close()
            raise

    def call(self, *args: str | bytes | int | float) -> Value:
        """One command's reply; ReplyError for an error reply (see :meth:`pipeline`)."""
        (reply,) = self.pipeline(args)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def send_only(self, *args: str | bytes | int | float) -> None:
        """Send a command Redis does not answer (``REPLCONF GETACK``), then a ``PING`` whose
        answer is read: when it returns, Redis has read both."""
        (pong,) = self.exchange(encode(*(_arg(a) for a in args)) + encode("PING"), 1)
        if isinstance(pong, ReplyError):
            raise pong

    def info(self, section: str) -> Info:
        """``INFO section`` as a mapping (see :func:`parse_info`)."""
        return parse_info(self.call("INFO", section))

    def close(self) -> None:
        """Close the socket (the next command opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _arg(value: str | bytes | int | float) -> str | bytes:
    return value if isinstance(value, str | bytes) else str(value)


__all__ = ["Link", "ProtocolError", "RedisError", "ReplyError", "is_denied", "parse_info"]
