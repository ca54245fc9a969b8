"""Data commands: ``prodstate set``, ``get``, ``write`` and ``root``.

Exit status (:mod:`prodstate.cli.exits`): 0 when the write is confirmed (or the read
answered); 1 when it was certainly not applied (or the key does not exist); 3 when it
may have been applied but was not confirmed; 2 for usage errors and unreachable
services. Every failure is one line on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from prodstate.cli.exits import ERROR, NOT_APPLIED, UNCERTAIN, fail
from prodstate.cli.options import option, zk_options
from prodstate.cli.security import security, security_options
from prodstate.client import (
    Client,
    NoRoot,
    ProdstateError,
    WriteFailed,
    WriteRejected,
    WriteUncertain,
)


def write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--acks and --timeout."""
    command = option(
        "--timeout",
        default=10.0,
        show_default=True,
        type=click.FloatRange(0.1, 3600),
        help="Give up after this many seconds (failover included).",
    )(command)
    return option(
        "--acks",
        type=click.IntRange(0, 1000),
        help="Branches that must confirm [1 while branches exist, else 0].",
    )(command)


@contextmanager
def _client(zk: str | None, cluster: str, **kw: Any) -> Iterator[Client]:
    secured = security(click.get_current_context())
    users = secured.credentials
    kw.update(writer=users.redis_user("writer"), reader=users.redis_user("reader"))
    try:
        client = Client(zk, cluster, tls=secured.tls, zk_tls=secured.zk_tls, **kw)
    except ProdstateError as exc:
        fail(str(exc), ERROR)
    try:
        yield client
    finally:
        client.close()


def _run_write(client: Client, command: tuple[str, ...], acks: int | None, timeout: float) -> None:
    try:
        reply = client.write(*command, acks=acks, timeout=timeout)
    except WriteRejected as exc:
        fail(f"rejected, not applied: {exc}", NOT_APPLIED)
    except WriteUncertain as exc:
        fail(f"NOT CONFIRMED, may have been applied: {exc}", UNCERTAIN)
    except WriteFailed as exc:
        fail(str(exc), NOT_APPLIED)
    click.echo(_show(reply))


def _show(reply: Any) -> str:
    if isinstance(reply, list | tuple | set):
        return "\n".join(_show(item) for item in reply)
    return "(nil)" if reply is None else str(reply)


@click.command(name="set")
@security_options
@zk_options
@write_options
@click.argument("key")
@click.argument("value")
def set_command(
    zk: str, cluster: str, acks: int | None, timeout: float, key: str, value: str
) -> None:
    """SET KEY VALUE at the root; exit 0 once branches confirm it."""
    with _client(zk, cluster) as client:
        _run_write(client, ("SET", key, value), acks, timeout)


@click.command(context_settings={"ignore_unknown_options": True})
@security_options
@zk_options
@write_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def write(
    zk: str, cluster: str, acks: int | None, timeout: float, command: tuple[str, ...]
) -> None:
    """Any Redis write command at the root, e.g. ``write HSET db:foobar dsn postgres://...``."""
    with _client(zk, cluster) as client:
        _run_write(client, command, acks, timeout)


@click.command()
@security_options
@zk_options
def root(zk: str, cluster: str) -> None:
    """The current root's address and epoch."""
    with _client(zk, cluster) as client:
        try:
            record = client.root()
        except NoRoot as exc:
            fail(str(exc), NOT_APPLIED)
    click.echo(f"{record.address} epoch={record.epoch} node={record.node_id}")
