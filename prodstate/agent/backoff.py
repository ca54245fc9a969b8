"""Back-off for actions refused for lack of rights, which retrying at once cannot fix.

A wrong credential or a missing ACL right is fixed by an operator, not by time: an agent
retrying it every tick only floods ZooKeeper, Redis and its own log. Each refused action
waits twice as long as the last time (from ``first`` up to ``cap`` seconds) until it
succeeds; other failures (a timeout, a lost connection) are retried on the next tick.
"""

from __future__ import annotations

from kazoo.exceptions import AuthFailedError, NoAuthError

from prodstate.redis.link import is_denied as redis_denied

_DENIED = (NoAuthError, AuthFailedError)


def is_denied(exc: BaseException | None) -> bool:
    """True if ``exc``, or an exception it was raised from, is a refusal for lack of rights."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _DENIED) or redis_denied(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class Backoff:
    """Per-action retry times: doubling delays after each refusal, reset by a success."""

    def __init__(self, first: float, cap: float) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"need 0 < first <= cap, got first={first}, cap={cap}")
        self.first = first
        self.cap = cap
        self._delay: dict[str, float] = {}
        self._until: dict[str, float] = {}

    def remaining(self, key: str, now: float) -> float:
        """Seconds until ``key`` may be tried again (0 if it may be tried now)."""
        return max(0.0, self._until.get(key, now) - now)

    def waiting(self, now: float) -> frozenset[str]:
        """The keys that may not be tried yet at ``now``."""
        return frozenset(key for key, until in self._until.items() if until > now)

    def refused(self, key: str, now: float) -> float:
        """Record a refusal of ``key`` at ``now``; the delay before its next try."""
        last = self._delay.get(key)
        delay = self.first if last is None else min(self.cap, last * 2)
        self._delay[key] = delay
        self._until[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        """``key`` went through: its next refusal starts from ``first`` again."""
        self._delay.pop(key, None)
        self._until.pop(key, None)
