"""The agent's Redis link: INFO and pair replies parsed, refusals told from failures."""

from __future__ import annotations

import pytest

from prodstate.redis.control import parse_state
from prodstate.redis.link import ProtocolError, ReplyError, is_denied, pairs, parse_info, text

INFO_REPLICATION = (
    "# Replication\r\n"
    "role:master\r\n"
    "connected_slaves:2\r\n"
    "slave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\n"
    "slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=1\r\n"
    "master_failover_state:no-failover\r\n"
    "master_replid:" + "a" * 40 + "\r\n"
    "master_replid2:" + "0" * 40 + "\r\n"
    "master_repl_offset:42\r\n"
    "\r\n"
)


def test_info_lines_are_text_and_replica_lines_mappings():
    info = parse_info(INFO_REPLICATION)
    assert info["role"] == "master"
    assert info["master_repl_offset"] == "42"
    assert info["slave0"] == {
        "ip": "127.0.0.1",
        "port": "7001",
        "state": "online",
        "offset": "42",
        "lag": "0",
    }
    assert "# Replication" not in info


def test_a_parsed_info_makes_a_redis_state():
    repl = parse_info(INFO_REPLICATION)
    server = parse_info("run_id:" + "b" * 40 + "\r\n")
    persistence = parse_info("loading:0\r\n")
    state = parse_state(server, repl, persistence, pairs(["min-replicas-to-write", "0"]), "")
    assert state.role == "master" and state.offset == 42
    assert state.replicas == ("127.0.0.1:7001", "127.0.0.1:7002")
    assert state.acking == ("127.0.0.1:7001", "127.0.0.1:7002")  # online, or being synced


def test_a_value_with_a_colon_keeps_it():
    assert parse_info("config_file:/etc/redis/a:b.conf\r\n")["config_file"] == (
        "/etc/redis/a:b.conf"
    )


@pytest.mark.parametrize("reply", [None, 5, ["role:master"]])
def test_an_info_reply_that_is_not_text_is_a_protocol_error(reply):
    with pytest.raises(ProtocolError):
        parse_info(reply)


def test_pairs():
    assert pairs(["a", "1", "flags", ["on"]]) == {"a": "1", "flags": ["on"]}
    for reply in (["a"], "a", None):
        with pytest.raises(ProtocolError):
            pairs(reply)


def test_bulk_strings_are_decoded_and_undecodable_bytes_replaced():
    assert text([b"a", [b"\xff"], 3, None]) == ["a", ["\ufffd"], 3, None]


@pytest.mark.parametrize(
    ("exc", "denied"),
    [
        (ReplyError("NOPERM this user has no permissions"), True),
        (ReplyError("WRONGPASS invalid username-password pair"), True),
        (ReplyError("LOADING Redis is loading the dataset in memory"), False),
        (TimeoutError("timed out"), False),
    ],
)
def test_is_denied(exc, denied):
    assert is_denied(exc) is denied
