"""The client's pure parts: branch acknowledgements, staleness, refusals before any I/O."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from prodstate.cli import cli
from prodstate.client import (
    Client,
    ProdstateError,
    WriteRejected,
    branch_acks,
    non_branch_replicas,
    role_offset,
)

BRANCHES = frozenset({"10.0.0.1:6379", "10.0.0.2:6379", "[::1]:6380"})


def role(*replicas: tuple[str, int, int], offset: int = 1000) -> list:
    """A master's ROLE reply as redis-py decodes it."""
    return ["master", offset, [[ip, str(port), str(off)] for ip, port, off in replicas]]


def test_only_branches_at_or_past_the_write_count():
    reply = role(
        ("10.0.0.1", 6379, 500),  # branch, caught up
        ("10.0.0.2", 6379, 499),  # branch, behind
        ("10.0.0.9", 6379, 900),  # a leaf on the root: cannot become root
    )
    assert branch_acks(500, reply, BRANCHES) == 1
    assert branch_acks(499, reply, BRANCHES) == 2
    assert branch_acks(501, reply, BRANCHES) == 0


def test_ipv6_branches_match_their_bracketed_address():
    assert branch_acks(10, role(("::1", 6380, 10)), BRANCHES) == 1


def test_a_branch_listed_twice_counts_once():
    assert branch_acks(10, role(("10.0.0.1", 6379, 10), ("10.0.0.1", 6379, 10)), BRANCHES) == 1


@pytest.mark.parametrize(
    "reply", [None, "OK", ["slave", "h", 1, "connected", 5], ["master", 5, [["x"]]], []]
)
def test_malformed_role_replies_count_no_one(reply):
    assert branch_acks(0, reply, BRANCHES) == 0


def test_non_branch_replicas_are_the_leaves_on_the_root():
    reply = role(("10.0.0.1", 6379, 5), ("10.0.0.9", 6379, 5), ("10.0.0.8", 6379, 5))
    assert non_branch_replicas(reply, BRANCHES) == 2
    assert non_branch_replicas(None, BRANCHES) == 0


def test_role_offset():
    assert role_offset(role(offset=42)) == 42
    with pytest.raises(ValueError, match="not a master"):
        role_offset(["slave", "10.0.0.1", 6379, "connected", 5])


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
