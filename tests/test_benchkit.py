"""The benchmarks' shared helpers that need no server: the RESP reader and encoder, /proc reads."""

from __future__ import annotations

import os

import pytest

from tests.bench_modules import load

benchkit = load("benchkit")

CONFIRM = b"*3\r\n$10\r\npsubscribe\r\n$6\r\nprop:*\r\n:1\r\n"
EVENT = b"*4\r\n$8\r\npmessage\r\n$6\r\nprop:*\r\n$21\r\n__keyspace@0__:prop:1\r\n$3\r\nset\r\n"


def test_resp_command_encodes_bulk_strings():
    assert benchkit.resp_command("SET", b"k", 12) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"


def test_resp_reader_returns_whole_messages_however_the_bytes_arrive():
    stream = CONFIRM + EVENT
    for cut in range(1, len(stream)):
        reader = benchkit.RespReader()
        messages = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert messages == [
            [b"psubscribe", b"prop:*", 1],
            [b"pmessage", b"prop:*", b"__keyspace@0__:prop:1", b"set"],
        ], cut
        assert reader.buffer == b""


def test_resp_reader_keeps_bulk_strings_holding_crlf_whole():
    reader = benchkit.RespReader()
    assert reader.feed(b"*2\r\n$4\r\na\r\nb\r\n$-1\r\n") == [[b"a\r\nb", None]]


def test_resp_reader_refuses_what_is_not_an_array():
    with pytest.raises(ValueError, match="expected an array"):
        benchkit.RespReader().feed(b"+OK\r\n")


def test_proc_figures_of_this_process_and_of_none():
    assert benchkit.cpu_seconds(os.getpid()) > 0
    assert benchkit.rss_bytes(os.getpid()) > 1024 * 1024
    assert benchkit.cpu_seconds(None) == 0.0 and benchkit.rss_bytes(None) == 0


def test_tick_time_allows_the_session_timeout():
    for session in (0.4, 2.0, 10.0, 30.0):
        tick = benchkit.tick_time_for(session)
        assert 2 * tick <= session * 1000 <= 20 * tick


def test_percentile_is_the_nearest_rank_even_where_floats_round_up():
    values = [float(i) for i in range(1, 1001)]
    assert [benchkit.percentile(values, q) for q in (0, 10, 50, 99, 99.9, 100)] == [
        1.0,
        100.0,
        500.0,
        990.0,
        999.0,
        1000.0,
    ]
    assert benchkit.percentile([7.0], 50) == 7.0
