"""The one configuration file every command reads (prodstate.cli.config_file)."""

from __future__ import annotations

import itertools
from pathlib import Path

import click
import pytest

from prodstate.cli import COMMANDS, FAST, cli, load_command
from prodstate.cli import check as check_cli
from prodstate.cli import config_click as cc
from prodstate.cli import config_file as cf
from prodstate.cli import get as get_cli
from prodstate.cli.argv import UsageError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "packaging" / "prodstate.toml"


def context(args: list[str]) -> click.Context:
    """The context of the (sub)command ``args`` names, parsed as ``prodstate ARGS`` would
    be, without running it."""
    parent = click.Context(cli, info_name="prodstate")
    name, rest = args[0], args[1:]
    command = load_command(name)
    if isinstance(command, click.Group):
        parent = click.Context(command, info_name=name, parent=parent)
        name, rest = rest[0], rest[1:]
        command = command.commands[name]
    return command.make_context(name, rest, parent=parent)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prodstate.toml"
    path.write_text(text)
    return str(path)


def refusal(args: list[str]) -> str:
    with pytest.raises(click.BadParameter) as info:
        context(args)
    return info.value.format_message()


AGENT = ["agent", "--tier", "leaf", "--redis", "h:1"]


def test_shared_keys_and_the_commands_own_section_become_its_settings(tmp_path):
    path = write(
        tmp_path,
        'zk = "z1:2181"\ncluster = "prod"\nredis = "10.0.0.1:6379"\n'
        '[agent]\nnode-id = "web12"\nsession_timeout = 4\nlog-json = true\n'
        "[check]\nwarning = 7\n",
    )
    ctx = context(["agent", "--tier", "leaf", "--config", path])
    assert ctx.params["zk"] == "z1:2181" and ctx.params["cluster"] == "prod"
    assert ctx.params["redis"] == "10.0.0.1:6379"
    assert ctx.params["node_id"] == "web12" and ctx.params["session_timeout"] == 4.0
    assert ctx.params["log_json"] is True
    # status has no --tier: [agent] is not its business; the shared keys apply.
    status = context(["status", "--config", path])
    assert status.params["zk"] == "z1:2181" and "tier" not in status.params


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, 'zk = "file:1"\ncluster = "file"\n[agent]\nnode-id = "file"\n')
    monkeypatch.setenv("PRODSTATE_CLUSTER", "env")
    ctx = context([*AGENT, "--config", path, "--node-id", "line"])
    assert (ctx.params["zk"], ctx.params["cluster"], ctx.params["node_id"]) == (
        "file:1",
        "env",
        "line",
    )


def test_the_default_file_and_the_environment_name_it(tmp_path, monkeypatch):
    default = write(tmp_path, 'zk = "default:1"\ncluster = "c"\n')
    monkeypatch.setattr(cf, "DEFAULT_PATH", default)
    assert context(AGENT).params["zk"] == "default:1"
    other = tmp_path / "other.toml"
    other.write_text('zk = "other:1"\ncluster = "c"\n')
    monkeypatch.setenv("PRODSTATE_CONFIG", str(other))
    assert context(AGENT).params["zk"] == "other:1"
    monkeypatch.setattr(cf, "DEFAULT_PATH", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("PRODSTATE_CONFIG")
    plain = context([*AGENT, "--zk", "z:1", "--cluster", "c"])  # absent default: fine
    assert plain.params["zk"] == "z:1"


def test_a_subcommand_reads_its_groups_section_and_its_own(tmp_path):
    path = write(
        tmp_path,
        'zk = "z:1"\ncluster = "c"\n[lock]\nholder = "ops"\n[lock.acquire]\nttl = "2h"\n',
    )
    ctx = context(["lock", "acquire", "web", "--reason", "r", "--config", path])
    assert ctx.params["ttl"] == "2h"
    # ttl is acquire's alone; [lock] keys go to whichever subcommand takes them.
    release = context(["lock", "release", "web", "--config", path])
    assert release.params["zk"] == "z:1"


@pytest.mark.parametrize(
    "text, says",
    [
        ('tier = "leaf"\n', "tier: not a shared setting"),
        ('[agnet]\ntier = "leaf"\n', "[agnet]: no such command"),
        ("[agent]\nbogus = 1\n", "[agent] bogus: no such setting"),
        ('[agent]\nsession-timeout = "soon"\n', "session-timeout: 'soon' is not a valid float"),
        ('[agent]\ntier = "trunk"\n', "tier: 'trunk' is not one of"),
        ("[agent]\nmetrics-port = 70000\n", "metrics-port: 70000 is not in the range"),
        ('[agent]\nnode-id = ["a", "b"]\n', "node-id: takes one value, not a list"),
        ("[agent]\nnode-id = 1979-05-27\n", "node-id: must be a string, number, boolean"),
        ("[agent]\n[agent.sub]\nx = 1\n", "[agent.sub]: no such command"),
        ('zk = "a"\nzk_tls_ca_file = "x"\nzk-tls-ca-file = "y"\n', "given twice"),
        ("zk = [\n", "is not valid TOML"),
    ],
)
def test_what_no_command_may_take_is_refused_with_the_file_key_and_reason(tmp_path, text, says):
    path = write(tmp_path, text)
    message = refusal([*AGENT, "--config", path])
    assert path in message and says in message, message
    assert "\n" not in message


def test_a_groups_section_refuses_what_none_of_its_subcommands_takes(tmp_path):
    path = write(tmp_path, '[lock]\nbogus = 1\n[lock.release]\nholder = "x"\n')
    assert "[lock] bogus: no such setting" in refusal(["lock", "list", "--config", path])
    path = write(tmp_path, "[lock.nosuch]\nx = 1\n")
    assert "[lock.nosuch]: no such command" in refusal(["lock", "list", "--config", path])


def test_a_named_file_must_exist_and_be_text(tmp_path):
    assert "cannot read" in refusal([*AGENT, "--config", str(tmp_path / "absent.toml")])
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"zk = '\xff'\n")
    assert "not UTF-8" in refusal([*AGENT, "--config", str(binary)])
    huge = tmp_path / "huge.toml"
    huge.write_text("#" * (cf.MAX_BYTES + 1))
    assert "larger than" in refusal([*AGENT, "--config", str(huge)])


def every_command() -> list[tuple[str, ...]]:
    """The path of every command and subcommand."""

    def under(path: tuple[str, ...], command: click.Command) -> list[tuple[str, ...]]:
        if isinstance(command, click.Group):
            return [p for name, sub in command.commands.items() for p in under((*path, name), sub)]
        return [path]

    return [p for name in COMMANDS if name not in FAST for p in under((name,), load_command(name))]


@pytest.mark.parametrize("path", every_command(), ids=" ".join)
def test_every_command_takes_config_and_accepts_the_shipped_example(path):
    parent = click.Context(cli, info_name="prodstate")
    command = load_command(path[0])
    for group, name in itertools.pairwise(path):
        assert isinstance(command, click.Group)
        parent = click.Context(command, info_name=group, parent=parent)
        command = command.commands[name]
    config = next(p for p in command.params if p.name == "config")
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    cc.load(ctx, config, str(EXAMPLE))
    names = {p.name for p in command.params}
    assert set(ctx.default_map or {}) <= names
    if "zk" in names:
        assert (ctx.default_map or {})["zk"] == "zk1:2181,zk2:2181,zk3:2181"


def test_check_and_get_read_the_shared_keys_and_their_sections(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        'zk = "z:1"\nredis = "10.0.0.1:6379"\n[check]\nwarning = 7\ntimeout = "2"\n'
        "[get]\nmax-staleness = 4\n",
    )
    check = check_cli.parse(["--config", path])
    assert check.redis == "10.0.0.1:6379" and check.timeout == 2.0
    assert check.warning == check_cli.parse(["-w", "7"]).warning
    monkeypatch.setenv("PRODSTATE_CONFIG", path)
    get = get_cli.parser().parse_with_config(["key"], "get")
    assert get.redis == "10.0.0.1:6379" and get.max_staleness == 4.0
    monkeypatch.setenv("PRODSTATE_REDIS", "10.9.9.9:1")  # the environment wins
    assert get_cli.parser().parse_with_config(["key"], "get").redis == "10.9.9.9:1"
    assert check_cli.parse(["--redis", "h:2"]).redis == "h:2"  # and the command line


@pytest.mark.parametrize(
    "text, says",
    [
        ('[check]\nwarning = "10:5"\n', "warning: '10:5' is not a range"),
        ("[check]\nbogus = 1\n", "[check] bogus: no such setting"),
        ('tier = "leaf"\n', "tier: not a shared setting"),
        ("[check]\ntimeout = true\n", "timeout: must be one string or number"),
    ],
)
def test_check_refuses_a_bad_file_with_the_file_key_and_reason(tmp_path, text, says):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        check_cli.parse(["--config", path])
    assert path in str(info.value) and says in str(info.value), info.value


def test_the_shipped_example_suits_check_and_get():
    assert check_cli.parse(["--config", str(EXAMPLE)]).redis == "127.0.0.1:6379"
    assert get_cli.parser().parse_with_config(["k", "--config", str(EXAMPLE)], "get").redis
