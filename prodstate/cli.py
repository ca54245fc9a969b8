"""The ``prodstate`` command line."""

from __future__ import annotations

import click

from prodstate import __version__
from prodstate.agent_cli import agent
from prodstate.check import check
from prodstate.client_cli import get, root, set_command, write
from prodstate.dev import dev
from prodstate.statedb.deploy_cli import deploy, deploys
from prodstate.statedb.errors_cli import error, errors
from prodstate.statedb.lock_cli import lock
from prodstate.statedb.machine_cli import machine
from prodstate.statedb.service_cli import service
from prodstate.statedb.web import web
from prodstate.status_cli import status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prodstate")
def cli() -> None:
    """prodstate: global state on every machine, through a self-healing Redis tree."""


cli.add_command(agent)
cli.add_command(check)
cli.add_command(dev)
cli.add_command(status)
cli.add_command(set_command)
cli.add_command(get)
cli.add_command(write)
cli.add_command(root)
cli.add_command(lock)
cli.add_command(deploy)
cli.add_command(deploys)
cli.add_command(machine)
cli.add_command(service)
cli.add_command(error)
cli.add_command(errors)
cli.add_command(web)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prodstate")
