"""The ``prodstate`` command line: one module per command, imported when that command runs.

``COMMANDS`` names each command's module and object (as pip's ``commands_dict`` does), so
``prodstate check`` imports the Redis client and not kazoo, the agent, the dashboard or
the test harness.
"""

from __future__ import annotations

import importlib

import click

from prodstate import __version__
from prodstate.cli.config_file import config_option

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "agent": "prodstate.cli.agent:agent",
    "check": "prodstate.cli.check:check",
    "dev": "prodstate.cli.dev:dev",
    "status": "prodstate.cli.status:status",
    "set": "prodstate.cli.data:set_command",
    "get": "prodstate.cli.data:get",
    "write": "prodstate.cli.data:write",
    "root": "prodstate.cli.data:root",
    "pause": "prodstate.cli.maintenance:pause",
    "resume": "prodstate.cli.maintenance:resume",
    "switchover": "prodstate.cli.maintenance:switchover",
    "drain": "prodstate.cli.maintenance:drain",
    "undrain": "prodstate.cli.maintenance:undrain",
    "lock": "prodstate.statedb.lock_cli:lock",
    "deploy": "prodstate.statedb.deploy_cli:deploy",
    "deploys": "prodstate.statedb.deploy_cli:deploys",
    "machine": "prodstate.statedb.machine_cli:machine",
    "service": "prodstate.statedb.service_cli:service",
    "error": "prodstate.statedb.errors_cli:error",
    "errors": "prodstate.statedb.errors_cli:errors",
    "web": "prodstate.statedb.web:web",
    "config": "prodstate.settings.cli:config",
    "render": "prodstate.cli.render:render",
    "watch": "prodstate.cli.watch:watch",
}


def load_command(name: str) -> click.Command:
    """Import the click command ``name`` of :data:`COMMANDS`, with ``--config`` added to it
    and to each of its subcommands (:mod:`prodstate.cli.config_file`)."""
    module, _, attribute = COMMANDS[name].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name]} is not a click command")
    return config_option(command)


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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prodstate")
