"""Command-line options shared by commands, each also read from PRODSTATE_<NAME> and the
configuration file (:mod:`prodstate.cli.config_file`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from prodstate.core.model import DataError, parse_address, validate_node_id


def env_name(option: str) -> str:
    """``--node-id`` -> ``PRODSTATE_NODE_ID``."""
    return "PRODSTATE_" + option.lstrip("-").replace("-", "_").upper()


def option(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option that also reads ``PRODSTATE_<NAME>``."""
    envvar = env_name(name)
    kwargs.setdefault("show_envvar", True)
    return click.option(name, envvar=envvar, **kwargs)


def check_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a HOST:PORT value."""
    if value is None:
        return None
    try:
        parse_address(value)
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def check_node_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a node id that is a safe znode name."""
    if value is None:
        return None
    try:
        return validate_node_id(value)
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def check_cluster(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a cluster name (same rules as a node id)."""
    return check_node_id(ctx, param, value)


#: ``ctx.meta`` key of the options that only name files (credentials, TLS): their values,
#: by parameter name, loaded by :func:`prodstate.cli.security.security`.
FILE_OPTIONS = "prodstate.security"

_ZK_TLS_FILES = {
    "--zk-tls-ca-file": "CA certificate (PEM) that signs the ZooKeeper servers' certificates: "
    "connect to ZooKeeper over TLS.",
    "--zk-tls-cert-file": "Client certificate (PEM) for ZooKeeper servers that verify clients.",
    "--zk-tls-key-file": "Private key (PEM) of --zk-tls-cert-file.",
}


def remember_file(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Click callback of an option naming a file: keep it for ``security(ctx)``."""
    ctx.meta.setdefault(FILE_OPTIONS, {})[param.name] = value


def file_options(files: dict[str, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add an option naming a file for each of ``files`` (option -> help), read with
    :func:`prodstate.cli.security.security` rather than passed to the command."""

    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        for name, text in reversed(files.items()):
            command = option(
                name,
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=remember_file,
                help=text,
            )(command)
        return command

    return add


def zk_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--zk`` and ``--cluster`` (also ``PRODSTATE_ZK`` and ``PRODSTATE_CLUSTER``), and the
    ``--zk-tls-*`` files (read with :func:`prodstate.cli.security.security`)."""
    command = file_options(_ZK_TLS_FILES)(command)
    command = option("--cluster", required=True, callback=check_cluster, help="Cluster name.")(
        command
    )
    return option("--zk", required=True, help="ZooKeeper hosts, e.g. zk1:2181,zk2:2181,zk3:2181.")(
        command
    )


def redis_option(
    help: str, default: str | None = "localhost:6379", **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--redis HOST:PORT`` (also ``PRODSTATE_REDIS``)."""
    if default is not None:
        kwargs.update(default=default, show_default=True)
    return option("--redis", callback=check_address, help=help, **kwargs)
