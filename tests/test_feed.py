"""Reading keyspace notifications off a subscribed connection (no server: bytes only)."""

from __future__ import annotations

import pytest

from prodstate.redis.feed import channel_of, count_writes, split_messages
from prodstate.redis.resp import ProtocolError, encode

CHANNEL = channel_of("prodstate:time")


def notification(event: str = "set", channel: str = CHANNEL) -> bytes:
    """A notification as Redis pushes it: an array of bulk strings, like a command."""
    return encode("message", channel, event)


def test_the_channel_of_a_key_in_database_0():
    assert CHANNEL == "__keyspace@0__:prodstate:time"


def test_complete_notifications_are_read_and_an_unfinished_one_kept_for_later():
    data = notification() + notification("expire") + notification()[:-7]
    messages, rest = split_messages(data)
    assert len(messages) == 2 and rest == notification()[:-7]
    more, rest = split_messages(rest + notification()[-7:])
    assert len(more) == 1 and rest == b""


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_notification_split_anywhere_is_read_whole_once_the_rest_arrives(cut: int):
    data = notification() * 2
    first, rest = split_messages(data[:cut])
    second, left = split_messages(rest + data[cut:])
    assert count_writes(first + second, CHANNEL) == 2 and left == b""


def test_only_writes_of_the_key_count():
    messages, _ = split_messages(
        notification() + notification("del") + notification(channel=channel_of("other")) * 2
    )
    assert count_writes(messages, CHANNEL) == 1


@pytest.mark.parametrize(
    "data",
    [b"+OK\r\n", b":1\r\n", encode("subscribe", CHANNEL), b"!garbage\r\n"],
)
def test_what_a_subscribed_connection_does_not_receive_is_an_error(data: bytes):
    with pytest.raises(ProtocolError):
        count_writes(split_messages(data)[0], CHANNEL)
