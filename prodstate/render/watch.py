"""``prodstate watch``'s parts: which keys a pattern names, and a key's value as text (pure
but for the reads)."""

from __future__ import annotations

import json
import re

import redis

from prodstate.redis.users import KEYSPACE_CHANNELS

#: Where the tree keeps its own keys: a watch skips them unless its pattern names them (the
#: heartbeat changes twice a second).
INTERNAL_PREFIX = "prodstate:"
CHANNEL_PREFIX = KEYSPACE_CHANNELS[:-1]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Redis's glob (``*``, ``?``, ``[abc]``, ``[^a]``, ``[a-z]``, ``\\x``) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                body = body[1:] if negate else body
                chars = "".join("\\" + ch if ch in "\\]^" else ch for ch in body)
                out.append(f"[{'^' if negate else ''}{chars}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class KeyFilter:
    """Which changed keys a watch of ``pattern`` reports."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regex = glob_regex(pattern)
        self._internal = pattern.startswith(INTERNAL_PREFIX)

    def matches(self, key: str) -> bool:
        if key.startswith(INTERNAL_PREFIX) and not self._internal:
            return False
        return self._regex.fullmatch(key) is not None

    def key_of(self, channel: str) -> str | None:
        """The key a keyspace notification's channel names, if this watch reports it."""
        if not channel.startswith(CHANNEL_PREFIX):
            return None
        key = channel[len(CHANNEL_PREFIX) :]
        return key if self.matches(key) else None


def show(conn: redis.Redis, key: str) -> str | None:
    """``key``'s value as one text: a string as it is, a hash, set, list or sorted set as
    JSON (sets sorted); None if the key does not exist."""
    kind = conn.type(key)
    if kind == "string":
        value: str | None = conn.get(key)
        return value
    if kind == "hash":
        return json.dumps(dict(sorted(conn.hgetall(key).items())))
    if kind == "set":
        return json.dumps(sorted(conn.smembers(key)))
    if kind == "list":
        return json.dumps(conn.lrange(key, 0, -1))
    if kind == "zset":
        return json.dumps(conn.zrange(key, 0, -1, withscores=True))
    if kind == "none":
        return None
    return f"({kind})"
