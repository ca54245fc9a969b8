"""The ``prodstate`` click group, whose commands are imported only when used."""

from __future__ import annotations

import click

from prodstate import __version__
from prodstate.cli import COMMANDS, load_command


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used (or listed by ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prodstate")
def cli() -> None:
    """prodstate: global state on every machine, through a self-healing Redis tree."""
