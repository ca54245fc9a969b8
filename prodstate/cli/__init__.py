"""The ``prodstate`` command line: one module per command, imported when that command runs.

``COMMANDS`` names each command's module and object (as pip's ``commands_dict`` does), so
a command imports only what it uses; ``check`` and ``get`` (:data:`FAST`) do not even
import click or redis-py.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "agent": "prodstate.cli.agent:agent",
    "check": "prodstate.cli.check:main",
    "dev": "prodstate.cli.dev:dev",
    "status": "prodstate.cli.status:status",
    "set": "prodstate.cli.data:set_command",
    "get": "prodstate.cli.get:main",
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
    "api": "prodstate.api.cli:api",
    "config": "prodstate.settings.cli:config",
    "render": "prodstate.cli.render:render",
    "watch": "prodstate.cli.watch:watch",
}


def load_command(name: str) -> click.Command:
    """Import the click command ``name`` of :data:`COMMANDS`, with ``--config`` added to it
    and to each of its subcommands (:mod:`prodstate.cli.config_click`); ``check`` and
    ``get`` read the file themselves (:mod:`prodstate.cli.argv`)."""
    import click

    from prodstate.cli.config_click import config_option

    module, _, attribute = COMMANDS[name].partition(":")
    loaded = importlib.import_module(module)
    if name in FAST:
        from prodstate.cli.argv import click_command

        return click_command(name, getattr(loaded, attribute), loaded.parser().description)
    command = getattr(loaded, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name]} is not a click command")
    return config_option(command)


#: Commands that run on every machine every minute: ``main`` runs them without click. Their
#: :data:`COMMANDS` entry names a function taking the arguments after the command's name
#: and returning the exit code (with ``parser()`` beside it); through the group they are
#: wrapped as click commands that hand the arguments over untouched.
FAST = frozenset({"check", "get"})


def __getattr__(name: str) -> Any:
    """``cli`` and ``LazyGroup`` (:mod:`prodstate.cli.group`), loaded with click when asked."""
    if name in ("cli", "LazyGroup"):
        from prodstate.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point: ``check`` and ``get`` straight, the rest through click."""
    args = sys.argv[1:]
    if args and args[0] in FAST:
        module, _, function = COMMANDS[args[0]].partition(":")
        raise SystemExit(getattr(importlib.import_module(module), function)(args[1:]))
    from prodstate.cli.group import cli

    cli(prog_name="prodstate")
