"""The one configuration file every command reads.

``/etc/prodstate/prodstate.toml`` unless ``PRODSTATE_CONFIG`` or ``--config`` names
another (a named file must exist; the default one may be absent). Its keys are option
names (``node-id`` or ``node_id``); the command line wins over the environment, which
wins over the file::

    zk = "zk1:2181,zk2:2181,zk3:2181"      # shared: every command that has the option
    cluster = "prod"
    credentials-file = "/etc/prodstate/credentials.toml"

    [agent]                                 # one command's own settings
    tier = "leaf"
    node-id = "web12"

    [lock.acquire]                          # a subcommand's
    ttl = "2h"

Only the shared options may stand at the top level; any other key, a section no command
has, a key the command's own section does not know, or a value its option refuses is a
usage error naming the file, the key and the reason. Sections of other commands are
checked when those commands run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import click

#: Where the file is when neither ``--config`` nor ``PRODSTATE_CONFIG`` names one.
DEFAULT_PATH = "/etc/prodstate/prodstate.toml"
#: The environment variable naming the file.
ENV = "PRODSTATE_CONFIG"
#: Options that may stand at the top level, applied to every command that has them.
SHARED = frozenset(
    {
        "zk",
        "cluster",
        "redis",
        "credentials-file",
        "tls-ca-file",
        "tls-cert-file",
        "tls-key-file",
        "zk-tls-ca-file",
        "zk-tls-cert-file",
        "zk-tls-key-file",
    }
)
#: The largest configuration file read, in bytes.
MAX_BYTES = 1 << 20

Scalar = str | int | float | bool


class ConfigFileError(Exception):
    """The file cannot be read or holds a setting no command may take."""


def read(path: str) -> dict[str, Any]:
    """The TOML table in ``path``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigFileError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode())
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path} is not valid TOML: {exc}") from None


def settings_for(
    data: Mapping[str, Any],
    where: str,
    command_path: tuple[str, ...],
    known: Collection[str],
    sections: Collection[str],
    groups: Sequence[tuple[Collection[str], Collection[str]]] = (),
) -> dict[str, Scalar | list[Scalar]]:
    """The settings the file ``where`` holds for the command at ``command_path`` (e.g.
    ``("lock", "acquire")``), whose options are ``known`` (their file names). ``sections``
    are the top-level command names; ``groups`` gives, for each group along the path, its
    subcommands' names and every option under it. Raises :class:`ConfigFileError` for
    anything no command may take."""
    data = _dashed_keys(data, where)
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in sections:
                raise ConfigFileError(f"{where}: [{key}]: no such command")
        elif key not in SHARED:
            hint = ", ".join(sorted(SHARED))
            raise ConfigFileError(
                f"{where}: {key}: not a shared setting (those are {hint}); "
                "a command's own settings go in its section, e.g. [agent]"
            )
    found = {k: v for k, v in data.items() if not isinstance(v, dict) and k in known}
    table: Mapping[str, Any] = data
    for depth, name in enumerate(command_path):
        section = table.get(name)
        if section is None:
            break
        label = ".".join(command_path[: depth + 1])
        if not isinstance(section, dict):
            raise ConfigFileError(f"{where}: {label}: not a table")
        subcommands, under = groups[depth] if depth < len(groups) else ((), ())
        for key, value in section.items():
            if isinstance(value, dict):
                if key not in subcommands:
                    raise ConfigFileError(f"{where}: [{label}.{key}]: no such command")
            elif key in known:
                found[key] = value
            elif key not in under:
                raise ConfigFileError(f"{where}: [{label}] {key}: no such setting")
        table = section
    for key, value in found.items():
        if not _plain(value):
            raise ConfigFileError(
                f"{where}: {key}: must be a string, number, boolean or a list of those"
            )
    return found


def _dashed_keys(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``table`` with ``node_id`` spelt ``node-id``, at every depth."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name in out:
            raise ConfigFileError(f"{where}: {name}: given twice ({key!r} and another)")
        out[name] = _dashed_keys(value, where) if isinstance(value, dict) else value
    return out


def _plain(value: object) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, Scalar) for v in value)
    return isinstance(value, Scalar)


def _key(param: click.Parameter) -> str:
    """The name of ``param`` in the file: its long option without dashes (``--host`` ->
    ``host``), else its name."""
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:] if longs else (param.name or "").replace("_", "-")


def _command_path(ctx: click.Context, sections: Collection[str]) -> tuple[str, ...]:
    """The command's names from its top-level command on: ``("lock", "acquire")``."""
    names: list[str] = []
    while ctx is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent  # type: ignore[assignment]
    names.reverse()
    starts = [i for i, name in enumerate(names) if name in sections]
    return tuple(names[starts[0] :]) if starts else ()


def _groups(ctx: click.Context, depth: int) -> list[tuple[set[str], set[str]]]:
    """For each of the ``depth`` groups above ``ctx``'s command (outermost first), its
    subcommands' names and every option of any command under it."""
    chain: list[click.Command] = []
    parent = ctx.parent
    while parent is not None and len(chain) < depth:
        chain.append(parent.command)
        parent = parent.parent
    return [
        (set(group.commands) if isinstance(group, click.Group) else set(), _options_under(group))
        for group in reversed(chain)
    ]


def _options_under(command: click.Command) -> set[str]:
    if isinstance(command, click.Group):
        return {o for sub in command.commands.values() for o in _options_under(sub)}
    return {_key(p) for p in command.params}


def load(ctx: click.Context, param: click.Parameter, path: str | None) -> None:
    """Eager callback of ``--config``: the file's settings for this command become its
    defaults (``ctx.default_map``), each checked with its option's own type."""
    if path is None:
        if not os.path.exists(DEFAULT_PATH):
            return
        path = DEFAULT_PATH
    try:
        from prodstate.cli import COMMANDS

        options = {_key(p): p for p in ctx.command.params if p.name and p.name != "config"}
        names = _command_path(ctx, COMMANDS)
        groups = _groups(ctx, len(names) - 1)
        found = settings_for(read(path), path, names, options, COMMANDS, groups)
        defaults = {
            options[key].name: _convert(ctx, options[key], value, path)
            for key, value in found.items()
        }
    except ConfigFileError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _as_click(param: click.Parameter, value: Scalar) -> bool | str:
    """``value`` as click takes a default: booleans for boolean options, else text (click
    converts text for every type; a TOML number may not convert as itself)."""
    keep = isinstance(value, bool) and isinstance(param.type, click.types.BoolParamType)
    return value if keep else str(value)


def _convert(
    ctx: click.Context, param: click.Parameter, value: Scalar | list[Scalar], path: str
) -> bool | str | list[bool | str]:
    """``value`` checked with ``param``'s own type, in the form click takes as a default."""
    if isinstance(value, list) and not getattr(param, "multiple", False):
        raise ConfigFileError(f"{path}: {_key(param)}: takes one value, not a list")
    values = [_as_click(param, v) for v in (value if isinstance(value, list) else [value])]
    for one in values:
        try:
            param.type.convert(one, param, ctx)
        except click.BadParameter as exc:
            raise ConfigFileError(f"{path}: {_key(param)}: {exc.message}") from None
    return values if isinstance(value, list) else values[0]


def config_option(command: click.Command) -> click.Command:
    """``command`` (and every subcommand of a group) with ``--config FILE`` added."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            config_option(sub)
        return command
    if any(p.name == "config" for p in command.params):
        return command
    command.params.insert(
        0,
        click.Option(
            ["--config"],
            type=click.Path(dir_okay=False),
            envvar=ENV,
            is_eager=True,
            expose_value=False,
            callback=load,
            help=f"TOML file of settings (default {DEFAULT_PATH} if present). [env: {ENV}]",
        ),
    )
    return command
