"""What the state-database commands share: connections, durable writes, output, errors.

Exit status as for the data commands (:mod:`prodstate.cli.exits`): 0 done; 1 refused or
not applied (a lock held, no such record); 2 usage error or a service unreachable;
3 written but not confirmed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis
from kazoo.client import KazooClient

from prodstate.cli.connect import secured, zookeeper
from prodstate.cli.exits import ERROR, NOT_APPLIED, UNCERTAIN, describe, fail
from prodstate.cli.options import redis_option as local_redis_option
from prodstate.client import Client, WriteFailed, WriteRejected, WriteUncertain


def this_host() -> str:
    """This machine's name as the state database records it (the short hostname)."""
    return socket.gethostname().split(".")[0]


def checked(value: Any, check: Callable[..., Any], *args: Any) -> Any:
    """``check(value, *args)``, a ValueError from it turned into a usage error (exit 2)."""
    try:
        return check(value, *args)
    except ValueError as exc:
        fail(describe(exc), ERROR)


def redis_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--redis: the local Redis that reads come from."""
    return local_redis_option("The local Redis to read from.")(command)


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json: print the records as JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


@contextmanager
def writer(zk: KazooClient, cluster: str, local: str = "localhost:6379") -> Iterator[Client]:
    """A Client writing through the root of ``cluster``, sharing the kazoo session ``zk``,
    as the command's ``[redis.writer]`` identity, over TLS if the command was given it."""
    found = secured()
    users = found.credentials
    client = Client(
        zk,
        cluster,
        local=local,
        writer=users.redis_user("writer"),
        reader=users.redis_user("reader"),
        tls=found.tls,
    )
    try:
        yield client
    finally:
        client.close()


@contextmanager
def recording(hosts: str, cluster: str, doing: str) -> Iterator[Client]:
    """A :func:`writer` on its own ZooKeeper session (see :func:`zookeeper` for ``doing``)."""
    with zookeeper(hosts, doing) as zk, writer(zk, cluster) as client:
        yield client


@contextmanager
def reader(address: str) -> Iterator[Client]:
    """A read-only Client of the local Redis, as the command's ``[redis.reader]`` identity,
    over TLS if the command was given it; exit 2 if it cannot be read."""
    found = secured()
    identity = found.credentials.redis_user("reader")
    client = Client(None, "-", local=address, reader=identity, tls=found.tls)
    try:
        yield client
    except redis.RedisError as exc:
        hint = ""
        if isinstance(exc, redis.AuthenticationError) and identity is None:
            hint = " (it needs --credentials-file with [redis.reader])"
        fail(f"cannot read from Redis at {address}: {describe(exc)}{hint}", ERROR)
    finally:
        client.close()


def durable(client: Client, commands: list[tuple[Any, ...]], timeout: float = 10.0) -> list[Any]:
    """Write ``commands`` together through the durable path; exit 1/3 when not confirmed."""
    try:
        return client.write_batch(commands, timeout=timeout)
    except WriteRejected as exc:
        fail(f"rejected, not recorded: {describe(exc)}", NOT_APPLIED)
    except WriteUncertain as exc:
        fail(f"NOT CONFIRMED, may have been recorded: {describe(exc)}", UNCERTAIN)
    except WriteFailed as exc:
        fail(f"not recorded: {describe(exc)}", NOT_APPLIED)


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print rows under headers in aligned columns (the last column unpadded)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for row in [headers, *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
