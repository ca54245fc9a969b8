"""Parsers of external data (znodes, addresses, node ids) and the lineage record."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.core.model import (
    MAX_LINEAGE,
    MAX_ZNODE_BYTES,
    DataError,
    Lineage,
    Member,
    RedisState,
    RootRecord,
    Tier,
    format_address,
    parse_address,
    validate_node_id,
)

node_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,40}\Z")
hostnames = st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,30}\Z")
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(1, 65535)
addresses = st.builds(format_address, hostnames | ipv6, ports)
replids = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
texts = st.text(max_size=30)

members = st.builds(Member, node_ids, st.sampled_from(Tier), addresses, st.booleans(), texts)
roots = st.builds(
    RootRecord,
    node_ids,
    addresses,
    st.integers(1, 2**63),
    replids | st.just(""),
    addresses | st.just(""),
    st.integers(0, 2**63),
    texts,
)
lineages = st.builds(
    Lineage,
    st.integers(0, 2**63),
    node_ids | st.just(""),
    addresses | st.just(""),
    st.lists(replids, max_size=MAX_LINEAGE, unique=True).map(tuple),
)


def obj(**fields) -> bytes:
    return json.dumps(fields).encode()


GOOD_MEMBER = {"node_id": "n1", "tier": "leaf", "address": "10.0.0.1:6379"}
GOOD_ROOT = {"node_id": "n1", "address": "10.0.0.1:6379", "epoch": 3}
GOOD_LINEAGE = {"epoch": 3, "node_id": "n1", "address": "10.0.0.1:6379", "replids": ["a"]}


# --- round trips ----------------------------------------------------------------------------


@given(members)
def test_member_round_trips(member):
    assert Member.from_json(member.to_json()) == member


@given(roots)
def test_root_record_round_trips_with_its_owner_session(root):
    raw = root.to_json()
    assert "owner_session" not in json.loads(raw)
    assert RootRecord.from_json(raw, owner_session=root.owner_session) == root


@given(lineages)
def test_lineage_round_trips(lineage):
    assert Lineage.from_json(lineage.to_json()) == lineage


def test_defaults_when_optional_fields_are_absent():
    assert Member.from_json(obj(**GOOD_MEMBER)) == Member("n1", Tier.LEAF, "10.0.0.1:6379")
    assert RootRecord.from_json(obj(**GOOD_ROOT)) == RootRecord("n1", "10.0.0.1:6379", 3)
    assert Lineage.from_json(b"") == Lineage()
    assert Lineage.from_json(obj(epoch=0)) == Lineage()


def test_lineage_keeps_only_the_newest_ids():
    ids = [f"id{i}" for i in range(MAX_LINEAGE + 5)]
    parsed = Lineage.from_json(obj(epoch=1, replids=ids))
    assert parsed.replids == tuple(ids[:MAX_LINEAGE])


# --- rejection ------------------------------------------------------------------------------

GARBAGE = [
    b"\xff\xfe\x00",
    b"not json",
    b"{",
    b'{"node_id": "n1", "tier": "le',
    b"   ",
    b"[]",
    b'"a string"',
    b"42",
    b"null",
    b"true",
    b'[{"node_id": "n1"}]',
]


@pytest.mark.parametrize("raw", GARBAGE)
@pytest.mark.parametrize("parse", [Member.from_json, RootRecord.from_json, Lineage.from_json])
def test_garbage_is_a_data_error(parse, raw):
    with pytest.raises(DataError):
        parse(raw)


@pytest.mark.parametrize(
    "change",
    [
        {"node_id": 5},
        {"node_id": ""},
        {"node_id": "../etc"},
        {"node_id": "-leading-dash"},
        {"node_id": "x" * 129},
        {"tier": "root"},
        {"tier": "Branch"},
        {"tier": None},
        {"address": "10.0.0.1"},
        {"address": "10.0.0.1:"},
        {"address": ":6379"},
        {"address": "10.0.0.1:0"},
        {"address": "10.0.0.1:65536"},
        {"address": "10.0.0.1:-1"},
        {"address": "10.0.0.1:63a"},
        {"address": "[]:6379"},
        {"address": 6379},
        {"available": "yes"},
        {"available": 1},
    ],
)
def test_member_with_wrong_field_is_a_data_error(change):
    with pytest.raises(DataError):
        Member.from_json(obj(**{**GOOD_MEMBER, **change}))


@pytest.mark.parametrize(
    "change",
    [
        {"epoch": "3"},
        {"epoch": True},
        {"epoch": 3.0},
        {"epoch": 0},
        {"epoch": -1},
        {"epoch": None},
        {"address": "nohost"},
        {"node_id": "a b"},
        {"replid": 5},
        {"run_id": ["r"]},
        {"previous": "10.0.0.2"},
        {"previous": None},
    ],
)
def test_root_record_with_wrong_field_is_a_data_error(change):
    with pytest.raises(DataError):
        RootRecord.from_json(obj(**{**GOOD_ROOT, **change}))


@pytest.mark.parametrize(
    "change",
    [
        {"epoch": "3"},
        {"epoch": False},
        {"epoch": -1},
        {"epoch": None},
        {"replids": "abc"},
        {"replids": [1, 2]},
        {"replids": {"a": 1}},
        {"node_id": 7},
        {"address": ["10.0.0.1:6379"]},
    ],
)
def test_lineage_with_wrong_field_is_a_data_error(change):
    with pytest.raises(DataError):
        Lineage.from_json(obj(**{**GOOD_LINEAGE, **change}))


@pytest.mark.parametrize(
    ("parse", "good"),
    [
        (Member.from_json, GOOD_MEMBER),
        (RootRecord.from_json, GOOD_ROOT),
        (Lineage.from_json, GOOD_LINEAGE),
    ],
)
def test_oversized_data_is_a_data_error(parse, good):
    padded = obj(**good, pad="x" * MAX_ZNODE_BYTES)
    assert len(padded) > MAX_ZNODE_BYTES
    with pytest.raises(DataError, match="limit"):
        parse(padded)
    fits = obj(**good, pad="x" * (MAX_ZNODE_BYTES - 200))
    assert len(fits) <= MAX_ZNODE_BYTES
    parse(fits)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
# HOST:PORT with a port in any Unicode digits (Nd, No: fullwidth, superscript, Arabic-Indic).
odd_ports = st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=5)
near_addresses = st.builds("{}:{}".format, hostnames, odd_ports)
field_values = (
    json_values | addresses | near_addresses | node_ids | st.sampled_from(["branch", "leaf", ""])
)
keys = st.sampled_from(
    [
        "node_id",
        "tier",
        "address",
        "available",
        "version",
        "epoch",
        "replid",
        "previous",
        "replids",
        "run_id",
    ]
)
near_records = st.dictionaries(keys, field_values, max_size=9)
PARSERS = [
    (Member.from_json, Member),
    (RootRecord.from_json, RootRecord),
    (Lineage.from_json, Lineage),
]


def parses_or_data_error(parse, kind, raw: bytes) -> None:
    try:
        result = parse(raw)
    except DataError:
        return
    assert type(result) is kind


@pytest.mark.parametrize(("parse", "kind"), PARSERS)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_data_error(parse, kind, raw):
    parses_or_data_error(parse, kind, raw)


@pytest.mark.parametrize(("parse", "kind"), PARSERS)
@given(value=json_values | near_records)
def test_arbitrary_json_parses_or_raises_data_error(parse, kind, value):
    parses_or_data_error(parse, kind, json.dumps(value).encode())


# --- addresses and node ids -----------------------------------------------------------------


@given(hostnames | ipv6, ports)
def test_address_round_trips(host, port):
    text = format_address(host, port)
    assert parse_address(text) == (host, port)
    assert (text.startswith("[") and "]:" in text) == (":" in host)


def test_ipv6_addresses_are_bracketed():
    assert format_address("::1", 6379) == "[::1]:6379"
    assert format_address("10.0.0.1", 6379) == "10.0.0.1:6379"
    assert parse_address("[fe80::1]:7000") == ("fe80::1", 7000)
    assert parse_address("redis-1.example.net:6380") == ("redis-1.example.net", 6380)


@given(st.text(alphabet=string.printable, max_size=30))
def test_parse_address_accepts_only_host_colon_port(text):
    try:
        host, port = parse_address(text)
    except DataError:
        return
    port_text = text.rpartition(":")[2]
    assert host and 0 < port < 65536
    assert port_text.isdigit() and int(port_text) == port
    assert host in text.rpartition(":")[0]


@given(node_ids)
def test_valid_node_ids_pass(node_id):
    assert validate_node_id(node_id) == node_id


@pytest.mark.parametrize(
    "bad", ["", "-x", ".x", "_x", "a/b", "a b", "x" * 129, "zk\x00", "é", 5, None, b"abc"]
)
def test_invalid_node_ids_are_data_errors(bad):
    with pytest.raises(DataError):
        validate_node_id(bad)


# --- regressions: each of these once got through ------------------------------------------


def test_node_id_with_trailing_newline_is_rejected():
    with pytest.raises(DataError):
        validate_node_id("abc\n")


def test_port_in_superscript_digits_is_a_data_error():
    with pytest.raises(DataError):
        Member.from_json(obj(**{**GOOD_MEMBER, "address": "10.0.0.1:6²"}))


def test_port_in_fullwidth_digits_is_a_data_error():
    with pytest.raises(DataError):
        parse_address("10.0.0.1:\uff16\uff13\uff17\uff19")


def test_deeply_nested_json_is_a_data_error():
    with pytest.raises(DataError):
        Lineage.from_json(b"[" * 50_000)


def test_huge_integer_is_a_data_error():
    with pytest.raises(DataError):
        RootRecord.from_json(b'{"node_id": "n1", "address": "h:1", "epoch": 1' + b"0" * 5000 + b"}")


# --- lineage --------------------------------------------------------------------------------

A, B, C = "a" * 40, "b" * 40, "c" * 40
ZEROS = "0" * 40


def redis(replid: str, replid2: str = ZEROS) -> RedisState:
    return RedisState(reachable=True, role="slave", replid=replid, replid2=replid2)


def test_empty_lineage_knows_every_redis():
    assert Lineage().knows(redis("f" * 40))
    assert Lineage().knows(RedisState(reachable=False))


def test_lineage_knows_a_redis_by_either_id():
    lineage = Lineage(3, "n1", "h:1", (A, B))
    assert lineage.knows(redis(A))
    assert lineage.knows(redis(C, B))
    assert not lineage.knows(redis(C))
    assert not lineage.knows(redis(C, "d" * 40))


@given(lineages, replids)
def test_with_replid_puts_the_id_first_without_duplicates(lineage, replid):
    newer = lineage.with_replid(replid)
    assert newer.replids[0] == replid
    assert len(newer.replids) == len(set(newer.replids))
    assert len(newer.replids) <= MAX_LINEAGE
    assert (newer.epoch, newer.node_id, newer.address) == (
        lineage.epoch,
        lineage.node_id,
        lineage.address,
    )
    rest = [r for r in lineage.replids if r != replid]
    assert list(newer.replids[1:]) == rest[: MAX_LINEAGE - 1]
    assert newer.with_replid(replid) == newer
    assert newer.knows(redis(replid))


def test_with_replid_drops_the_oldest_at_the_cap():
    ids = tuple(f"{i:040d}" for i in range(MAX_LINEAGE))
    newer = Lineage(1, "n1", "h:1", ids).with_replid(A)
    assert newer.replids == (A, *ids[:-1])
    assert Lineage(1, "n1", "h:1", (A, B, C)).with_replid(C).replids == (C, A, B)
