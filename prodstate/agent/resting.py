"""How a resting agent waits for its next decision (see :mod:`prodstate.core.rest`).

While its replica is healthy and nothing calls for a decision, an agent decides only every
``--rest-interval``. In between it follows the heartbeat in its local Redis: Redis tells it
each time the heartbeat is written there (keyspace notifications, on a connection of its
own, :class:`~prodstate.redis.feed.KeyFeed`), so it wakes once per heartbeat. When no
notification comes for two heartbeat intervals, or Redis refuses the subscription, it reads
the heartbeat and role itself (a pulse) once per heartbeat interval, as it measures
staleness. Anything a decision must see ends the wait: a ZooKeeper wake-up, a verdict
about to change, a role, master or link unlike the last full read, or the feed's
connection ending.
"""

from __future__ import annotations

import logging
import time

from prodstate.agent.config import AgentConfig
from prodstate.agent.metrics import AgentMetrics
from prodstate.agent.waker import Waker
from prodstate.core.freshness import Freshness
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.model import Snapshot
from prodstate.redis.control import RedisControl
from prodstate.redis.feed import KeyFeed
from prodstate.redis.link import RedisError

log = logging.getLogger("prodstate.agent.resting")

#: Heartbeat intervals without a notification before a resting agent reads its Redis.
QUIET_BEATS = 2
#: Seconds before a subscription Redis refused (its ACL) is asked for again.
FEED_RETRY = 60.0


class RestingWait:
    """The wait of a resting agent, and the connection it waits on."""

    def __init__(
        self, config: AgentConfig, redis: RedisControl, waker: Waker, metrics: AgentMetrics
    ) -> None:
        self.config = config
        self.redis = redis
        self.waker = waker
        self.metrics = metrics
        options = config.redis_options()
        self.feed = KeyFeed(config.redis, HEARTBEAT_KEY, user=options["user"], tls=options["tls"])
        self._feed_retry_at = 0.0
        self._refusal_logged = False

    def wait(self, s: Snapshot, freshness: Freshness, until: float) -> Freshness:
        """Wait until monotonic ``until``, a wake-up, or anything a decision must see;
        the freshness record as the notifications and pulses left it."""
        period = max(self.config.tick, self.config.freshness.heartbeat_interval)
        quiet = QUIET_BEATS * period
        heard = True  # the last wait ended on a notification (or none has been waited for)
        if self.feed.is_open:
            self.feed.drain()  # what arrived during the decision: read by it already
        while True:
            now = time.monotonic()
            feed = self._open_feed(now)
            if feed is None:
                if self.waker.wait(period) or time.monotonic() >= until:
                    return freshness
                readable = False
            else:
                limit = quiet if heard else period
                woken, readable = self.waker.wait_with(feed, min(limit, until - now))
                if woken:
                    return freshness
            now = time.monotonic()
            if readable:
                beats = self.feed.drain()
                if beats is None:
                    return freshness  # the connection ended: its Redis may have restarted
                if beats:
                    advanced = freshness.advanced(now, self.config.freshness)
                    if not self._holds(freshness, advanced, now):
                        return advanced
                    freshness = advanced
                heard = True
            if now >= until:
                return freshness
            if not readable:
                heard = False
                pulsed = self._pulse(s, freshness, now)
                if pulsed is None:
                    return freshness
                freshness = pulsed

    def _pulse(self, s: Snapshot, freshness: Freshness, now: float) -> Freshness | None:
        """The freshness after reading the heartbeat and role; None if the agent must
        decide now (no answer, a role, master or link unlike the last full read's, or a
        check that did not confirm the verdict)."""
        pulse = self.redis.pulse()
        if pulse is None or not pulse.matches(s.redis):
            return None
        after = freshness.observe(pulse.heartbeat, now, self.config.freshness)
        return after if self._holds(freshness, after, now) else None

    def _holds(self, before: Freshness, after: Freshness, now: float) -> bool:
        """Whether the verdict holds, no check disagreeing with it (then the metrics learn
        the heartbeat's new age); if not, the agent must decide now."""
        if after.fresh != before.fresh or after.streak:
            return False
        self.metrics.observe_rest(after, now)
        return True

    def _open_feed(self, now: float) -> KeyFeed | None:
        """The subscribed feed, opened now if need be; None while Redis refuses it."""
        if self.feed.is_open:
            return self.feed
        if now < self._feed_retry_at:
            return None
        try:
            self.feed.open()
        except OSError:
            return None  # out of reach: the pulse says so, and the agent decides
        except RedisError as exc:
            self._feed_retry_at = now + FEED_RETRY
            if not self._refusal_logged:
                log.warning(
                    "cannot subscribe to the heartbeat's keyspace notifications: resting on "
                    "reads once per heartbeat interval",
                    extra={"node_id": self.config.node_id, "error": str(exc)},
                )
                self._refusal_logged = True
            return None
        return self.feed

    def close(self) -> None:
        """Close the feed (an agent that does not rest: notifications would pile up in its
        Redis's output buffer for nobody)."""
        self.feed.close()
