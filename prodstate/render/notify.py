"""Keyspace notifications of the local Redis, on a thread: what wakes a renderer or a watch.

The agent turns ``notify-keyspace-events`` on (``KA``: every change to every key, and a
replica publishes them for the changes it applies from its parent). The subscriber reports
each changed key to a callback; it reconnects after an error and then reports a change of
unknown keys (``None``), since changes may have been missed meanwhile. It also notes when
it last saw the heartbeat key change: a heartbeat that advances (read by polling) while no
notification of it arrives means the notifications are off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from prodstate.redis.users import KEYSPACE_CHANNELS

log = logging.getLogger(__name__)

_PREFIX = KEYSPACE_CHANNELS[:-1]
#: Seconds between attempts to subscribe again after an error (doubled up to the maximum).
RETRY_MIN, RETRY_MAX = 0.2, 5.0


class KeyspaceSubscriber:
    """Calls ``on_change(key)`` for every key changed in the local Redis (``key`` None:
    unknown keys, after a reconnection)."""

    def __init__(self, connect: Callable[[], redis.Redis], on_change: Callable[[str | None], None]):
        self._connect = connect
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keyspace", daemon=True)
        #: When a notification last arrived (monotonic), None before any.
        self.last_event: float | None = None
        #: True while subscribed.
        self.subscribed = threading.Event()

    def start(self) -> KeyspaceSubscriber:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = RETRY_MIN
        first = True
        while not self._stop.is_set():
            try:
                self._listen(first)
                delay = RETRY_MIN
            except (redis.RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning(
                    "keyspace notifications: subscription lost, retrying",
                    extra={"error": " ".join(str(exc).split()), "retry_in": delay},
                )
                self._stop.wait(delay)
                delay = min(RETRY_MAX, delay * 2)
            first = False

    def _listen(self, first: bool) -> None:
        conn = self._connect()
        pubsub = conn.pubsub()
        try:
            pubsub.psubscribe(KEYSPACE_CHANNELS)
            while True:  # until Redis confirms (an ACL refusal raises here)
                if self._stop.is_set():
                    return
                reply = pubsub.get_message(timeout=0.5)
                if reply is not None and reply.get("type") == "psubscribe":
                    break
            self.subscribed.set()
            log.info("subscribed to keyspace notifications", extra={"channels": KEYSPACE_CHANNELS})
            if not first:
                self._on_change(None)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None or message.get("type") != "pmessage":
                    continue
                channel = message.get("channel")
                if isinstance(channel, str) and channel.startswith(_PREFIX):
                    self.last_event = time.monotonic()
                    self._on_change(channel[len(_PREFIX) :])
        finally:
            pubsub.close()
            conn.close()
