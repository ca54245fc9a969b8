"""The client's pure parts: branch acknowledgements, staleness, refusals before any I/O."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from prodstate.cli import cli
from prodstate.client import Client, ProdstateError, WriteRejected, branch_acks, replica_entries

BRANCHES = frozenset({"10.0.0.1:6379", "10.0.0.2:6379", "[::1]:6380"})


def slave(ip: str, port: int, offset: int) -> dict:
    return {"ip": ip, "port": port, "state": "online", "offset": offset, "lag": 0}


def test_only_branches_at_or_past_the_write_count():
    replicas = [
        slave("10.0.0.1", 6379, 500),  # branch, caught up
        slave("10.0.0.2", 6379, 499),  # branch, behind
        slave("10.0.0.9", 6379, 900),  # a leaf on the root: cannot become root
    ]
    assert branch_acks(500, replicas, BRANCHES) == 1
    assert branch_acks(499, replicas, BRANCHES) == 2
    assert branch_acks(501, replicas, BRANCHES) == 0


def test_ipv6_branches_match_their_bracketed_address():
    assert branch_acks(10, [slave("::1", 6380, 10)], BRANCHES) == 1


def test_a_branch_listed_twice_counts_once():
    replicas = [slave("10.0.0.1", 6379, 10), slave("10.0.0.1", 6379, 10)]
    assert branch_acks(10, replicas, BRANCHES) == 1


def test_replica_entries_come_from_slave_keys_only():
    info = {"role": "master", "connected_slaves": 1, "slave0": slave("10.0.0.1", 6379, 1)}
    assert replica_entries(info) == [slave("10.0.0.1", 6379, 1)]


@pytest.mark.parametrize(
    ("heartbeat", "expected"), [("990.5", 9.5), ("1001", 0.0), (None, None), ("x", None)]
)
def test_staleness(heartbeat, expected):
    assert Client.staleness(heartbeat, now=1000.0) == expected


def test_reserved_keys_and_empty_commands_are_rejected_before_any_io():
    client = Client(None, "c", local="127.0.0.1:1")
    with pytest.raises(WriteRejected, match="belong to prodstate"):
        client.set("prodstate:epoch", "9")
    with pytest.raises(WriteRejected, match="empty"):
        client.write()
    with pytest.raises(ProdstateError, match="only read"):
        client.set("k", "v")
    client.close()


def test_cli_errors_are_one_line_and_non_zero():
    runner = CliRunner()
    missing = runner.invoke(cli, ["set", "k", "v"], env={})
    assert missing.exit_code == 2 and "--zk" in missing.output
    unreachable = runner.invoke(cli, ["get", "k", "--redis", "127.0.0.1:1"])
    assert unreachable.exit_code == 2
    assert "cannot read from Redis at 127.0.0.1:1" in unreachable.output
    bad = runner.invoke(cli, ["get", "k", "--redis", "nonsense"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output
