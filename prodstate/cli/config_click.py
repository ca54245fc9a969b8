"""The configuration file's settings as the defaults of a click command (its
``--config`` option; see :mod:`prodstate.cli.config_file`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from prodstate.cli.config_file import (
    DEFAULT_PATH,
    ENV,
    ConfigFileError,
    Scalar,
    find,
    read,
    settings_for,
)

if TYPE_CHECKING:
    from collections.abc import Collection


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
    path = find(path)
    if path is None:
        return
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
