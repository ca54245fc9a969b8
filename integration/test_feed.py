"""KeyFeed against real redis-servers: a replica tells its subscriber of each replicated
write of the heartbeat, refuses a user without the channel, and ends with its server."""

from __future__ import annotations

import select
from pathlib import Path

import pytest

from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.redis.feed import KeyFeed
from prodstate.redis.resp import ReplyError
from prodstate.security.credentials import Secret
from prodstate.testing import RedisServer, wait_until

EVENTS = {"notify-keyspace-events": "KA"}


def writes_seen(feed: KeyFeed, expected: int, timeout: float = 10.0) -> int:
    """Drain ``feed`` as the resting agent does (waiting on its socket) until ``expected``
    writes have been counted or ``timeout`` has passed; the count."""
    seen = 0

    def enough() -> bool:
        nonlocal seen
        readable, _, _ = select.select([feed], [], [], 0.1)
        if readable:
            got = feed.drain()
            assert got is not None, "the feed ended"
            seen += got
        return seen >= expected

    wait_until(enough, timeout=timeout, what=f"{expected} notified writes")
    return seen


def test_a_replica_notifies_each_replicated_write_of_the_heartbeat_and_nothing_else(
    tmp_path: Path,
):
    master = RedisServer(tmp_path, name="master").start()
    replica = RedisServer(tmp_path, name="replica", config=EVENTS).start()
    feed = KeyFeed(replica.address, HEARTBEAT_KEY)
    try:
        with replica.client() as conn:
            conn.replicaof(master.host, master.port)
        wait_until(replica.in_sync, what="the replica in sync")
        feed.open()
        assert feed.drain() == 0
        with master.client() as conn:
            for i in range(50):
                conn.set(HEARTBEAT_KEY, f"{i}.5")
                conn.set("other", i)
            conn.delete(HEARTBEAT_KEY)
            conn.set(HEARTBEAT_KEY, "99.5")
        assert writes_seen(feed, 51) == 51
        assert feed.drain() == 0  # the deletion and the other key were not counted
    finally:
        feed.close()
        replica.stop()
        master.stop()


def test_the_feed_ends_when_its_redis_does(tmp_path: Path):
    server = RedisServer(tmp_path, name="redis", config=EVENTS).start()
    feed = KeyFeed(server.address, HEARTBEAT_KEY)
    try:
        feed.open()
        server.stop()
        wait_until(lambda: select.select([feed], [], [], 0.1)[0], what="the socket readable")
        assert feed.drain() is None and not feed.is_open
    finally:
        feed.close()
        server.stop()


def test_a_user_without_the_channel_is_refused_and_nothing_stays_open(tmp_path: Path):
    server = RedisServer(tmp_path, name="redis", config=EVENTS).start()
    try:
        with server.client() as conn:
            conn.execute_command("ACL", "SETUSER", "nochan", "on", ">pw", "~*", "+@all")
        feed = KeyFeed(server.address, HEARTBEAT_KEY, user=Secret("nochan", "pw"))
        with pytest.raises(ReplyError):
            feed.open()
        assert not feed.is_open
    finally:
        server.stop()
