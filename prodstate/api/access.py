"""Who may call the API: tokens compared in constant time, rights per identity, and a
token bucket per identity. Pure: no framework here."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prodstate.security.credentials import ApiToken

READ, REPORT, WRITE = "read", "report", "write"


class Tokens:
    """The identities of ``[api.tokens]``, looked up by the token a request sends."""

    def __init__(self, tokens: Mapping[str, ApiToken]) -> None:
        self._tokens = [(_digest(t.token), t) for t in tokens.values()]

    def __len__(self) -> int:
        return len(self._tokens)

    def identify(self, presented: str) -> ApiToken | None:
        """The identity whose token is ``presented`` (None if none): the digests of every
        token are compared, each in constant time, so the time taken says nothing of which
        matched, nor of any token's length."""
        given = _digest(presented)
        found = None
        for token, identity in self._tokens:
            if hmac.compare_digest(token, given):
                found = identity
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode(errors="replace")).digest()


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """A token bucket per name (an identity, or a caller's address): ``rate`` requests a
    second, bursts of ``burst``; at most ``max_keys`` names tracked at once."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate, self.burst, self._clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, name: str) -> float:
        """0 if ``name`` may make a request now (which is counted), else the seconds until
        it may."""
        with self._lock:
            now = self._clock()
            if name not in self._buckets and len(self._buckets) >= self.max_keys:
                self._forget_full(now)
                if len(self._buckets) >= self.max_keys:  # that many callers all at once
                    return 1 / self.rate
            bucket = self._buckets.setdefault(name, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing."""
        full = [
            k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
