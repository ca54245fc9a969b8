"""Property tests over every parser of external data not covered in test_model.py.

Redis INFO and ROLE replies, heartbeat values, election znodes, TOML config files,
environment options and command lines: each parses, or fails with the parser's own clear
error, for any input.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodstate.cli import check as check_cli
from prodstate.cli import get as get_cli
from prodstate.cli import load_command
from prodstate.cli.argv import UsageError
from prodstate.client import Client, branch_acks, non_branch_replicas, role_offset
from prodstate.core.model import (
    MAX_ZNODE_BYTES,
    DataError,
    RedisState,
    candidate_from_znode,
    parse_address,
)
from prodstate.core.nagios_range import Range
from prodstate.ops.check import Status, evaluate
from prodstate.redis.control import parse_state

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner)
)
info_keys = st.sampled_from(
    [
        "role",
        "run_id",
        "master_replid",
        "master_replid2",
        "master_repl_offset",
        "master_host",
        "master_port",
        "master_link_status",
        "master_sync_in_progress",
        "connected_slaves",
        "loading",
        "min-replicas-to-write",
        "slave0",
        "slave1",
    ]
)
sections = st.dictionaries(info_keys | st.text(max_size=10), values, max_size=8)
numeric_text = st.integers().map(str) | st.text(string.digits + "-.e", max_size=8)


# --- Redis INFO -----------------------------------------------------------------------------


@given(sections, sections | st.dictionaries(info_keys, numeric_text), sections, sections)
def test_info_parses_or_raises_data_error(server, repl, persistence, config):
    try:
        state = parse_state(server, repl, persistence, config)
    except DataError:
        return
    assert isinstance(state, RedisState) and state.reachable
    assert isinstance(state.offset, int) and isinstance(state.min_replicas_to_write, int)
    if state.master:
        parse_address(state.master)
    for address in state.replicas:
        parse_address(address)


@given(values, values, values, values)
def test_info_replies_of_any_shape_parse_or_are_data_errors(server, repl, persistence, config):
    try:
        state = parse_state(server, repl, persistence, config)
    except DataError:
        return
    assert isinstance(state, RedisState) and isinstance(state.offset, int)


def test_a_real_replica_info_parses():
    repl = {
        "role": "slave",
        "master_host": "10.0.0.1",
        "master_port": 6379,
        "master_link_status": "up",
        "master_repl_offset": 42,
        "slave0": {"ip": "10.0.0.9", "port": 6380, "state": "online", "offset": 42},
        "slave1": {"ip": "10.0.0.8", "port": "junk"},
    }
    state = parse_state({"run_id": "r"}, repl, {"loading": 0}, {"min-replicas-to-write": "0"})
    assert (state.master, state.offset, state.link_up) == ("10.0.0.1:6379", 42, True)
    assert state.replicas == ("10.0.0.9:6380",)


@pytest.mark.parametrize(
    "repl",
    [
        {"role": "slave", "master_host": "h", "master_port": 0},
        {"role": "slave", "master_host": "h", "master_port": "6379x"},
        {"master_repl_offset": "12abc"},
        {"master_repl_offset": [1]},
        {"master_sync_in_progress": True},
    ],
)
def test_malformed_info_fields_are_data_errors(repl):
    with pytest.raises(DataError):
        parse_state({}, repl, {}, {})


# --- ROLE replies and heartbeats ------------------------------------------------------------

branch_names = st.frozensets(st.sampled_from(["10.0.0.1:6379", "[::1]:6380", "h:1"]))


@given(st.integers(0, 2**64), values, branch_names)
def test_role_replies_of_any_shape_count_within_bounds(offset, role, branches):
    acks = branch_acks(offset, role, branches)
    assert 0 <= acks <= len(branches)
    assert non_branch_replicas(role, branches) >= 0
    try:
        offset = role_offset(role)
    except ValueError:
        return
    assert isinstance(offset, int) and role[0] == "master"


@pytest.mark.parametrize("bad", [["master", [1], []], ["master", float("inf"), []], None, "x"])
def test_role_offset_of_malformed_reply_is_a_value_error(bad):
    with pytest.raises(ValueError):
        role_offset(bad)


@given(st.text(max_size=30) | st.none(), st.floats(0, 2e9))
def test_staleness_is_none_or_a_finite_age(heartbeat, now):
    age = Client.staleness(heartbeat, now)
    assert age is None or (math.isfinite(age) and age >= 0)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN"])
def test_a_non_finite_heartbeat_is_never_fresh(raw):
    assert Client.staleness(raw, 1000.0) is None


@given(st.text(max_size=60), st.floats(0, 2e9), st.floats(0, 100), st.floats(0, 100))
def test_check_judges_any_heartbeat_in_one_line(raw, now, a, b):
    result = evaluate(raw, now, Range(0, a), Range(0, b))
    assert result.status in Status
    assert "\n" not in result.line("h:1")


# --- election znodes ------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_election_znode_is_a_node_id_or_data_error(raw):
    try:
        node = candidate_from_znode(raw)
    except DataError:
        return
    assert node.encode() == raw


def test_oversized_election_znode_is_a_data_error():
    with pytest.raises(DataError, match="over the limit"):
        candidate_from_znode(b"a" * (MAX_ZNODE_BYTES + 1))


# --- configuration: TOML files, environment, command lines --------------------------------

agent = load_command("agent")
REQUIRED = ["--zk", "z:2181", "--cluster", "c", "--tier", "leaf", "--redis", "h:1"]
option_names = st.sampled_from(
    [p.name for p in agent.params if p.name and p.name != "config"] + ["bogus", "zk-hosts"]
)
toml_values = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.text(string.ascii_letters + string.digits + ":.-_ ", max_size=12)
    | st.lists(st.integers(0, 9), max_size=3)
)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


def parses_or_usage_error(command: click.Command, args: list[str], env: dict[str, str]) -> None:
    """``make_context`` converts and validates every option without running the command."""
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            command.make_context(command.name, list(args))
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        assert exc.format_message()


# No deadline: parsing a command line is fast, but these run beside busy servers.
@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150, deadline=None
)
@given(settings_=st.dictionaries(option_names, toml_values, max_size=4))
def test_any_config_file_loads_or_is_a_usage_error(tmp_path: Path, settings_):
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in settings_.items()))
    parses_or_usage_error(agent, [*REQUIRED, "--config", str(path)], {})


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50, deadline=None
)
@given(raw=st.binary(max_size=200))
def test_any_config_bytes_load_or_are_a_usage_error(tmp_path: Path, raw):
    path = tmp_path / "agent.toml"
    path.write_bytes(raw)
    parses_or_usage_error(agent, [*REQUIRED, "--config", str(path)], {})


env_names = st.sampled_from(
    [
        f"PRODSTATE_{name}"
        for name in [
            "TICK",
            "SESSION_TIMEOUT",
            "METRICS_PORT",
            "TIER",
            "NODE_ID",
            "ADVERTISE",
            "JITTER",
        ]
    ]
)
env_text = st.text(string.printable.strip() + " ", max_size=12)


@settings(deadline=None)
@given(st.dictionaries(env_names, env_text, max_size=3))
def test_any_environment_options_parse_or_are_a_usage_error(env):
    parses_or_usage_error(agent, REQUIRED, env)


words = st.text(string.printable.strip(), max_size=10) | st.sampled_from(
    ["--zk", "--cluster", "--acks", "--timeout", "--redis", "-1", "--", "--max-staleness"]
)


@pytest.mark.parametrize("name", ["set", "write", "root", "status"])
@settings(deadline=None)
@given(args=st.lists(words, max_size=6))
def test_any_command_line_parses_or_is_a_usage_error(name, args):
    parses_or_usage_error(load_command(name), args, {})


check_words = words | st.sampled_from(
    ["-w", "-c", "-t", "--warning", "--critical", "--agent", "@", "~:", "10:", "@1:2", "-V"]
)


@pytest.mark.parametrize("parse", [check_cli.parse, lambda a: get_cli.parser().parse_args(a)])
@settings(deadline=None)
@given(args=st.lists(check_words, max_size=6))
def test_any_check_or_get_command_line_parses_or_is_a_usage_error(parse, args):
    """``prodstate check`` and ``get`` parse with argparse: options or a one-line
    UsageError, never another exception (``-h`` and ``-V`` end the process with 0)."""
    try:
        parse(args)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    except SystemExit as exc:
        assert exc.code == 0
        assert any(a.startswith("-") and ("V" in a or "h" in a) for a in args)
