"""``prodstate error report`` (a service reports an error) and ``prodstate errors``."""

from __future__ import annotations

import time
from typing import Any

import click

from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.client import Client
from prodstate.statedb.cli_common import (
    checked,
    durable,
    echo_json,
    json_option,
    reader,
    recording,
    redis_option,
    this_host,
)
from prodstate.statedb.errors import ErrorEntry, entries, histogram, report_commands, sparkline
from prodstate.statedb.keys import (
    ERROR_SERVICES,
    check_name,
    check_span,
    fmt_time,
)
from prodstate.statedb.keys import (
    errors as errors_key,
)


@click.group()
def error() -> None:
    """Errors of services."""


@error.command()
@security_options
@zk_options
@click.option("--host", default=this_host, show_default="this host", help="Where it happened.")
@click.argument("service")
@click.argument("message")
def report(zk: str, cluster: str, host: str, service: str, message: str) -> None:
    """Record an error MESSAGE of SERVICE."""
    commands = checked(service, lambda s: report_commands(s, host, message, time.time()))
    with recording(zk, cluster, f"recording an error of {service}") as client:
        durable(client, commands)
    click.echo(f"recorded an error of {service} on {host}")


def read_errors(
    client: Client, service: str | None, since: float, limit: int
) -> dict[str, list[ErrorEntry]]:
    """Errors since ``since`` by service (the services with errors since then), newest first."""
    if service is not None:
        names = [service]
    else:
        names = client.read("ZRANGE", ERROR_SERVICES, "+inf", int(since * 1000), "BYSCORE", "REV")
    found = {}
    for name in names:
        raw = client.read("XREVRANGE", errors_key(name), "+", int(since * 1000), "COUNT", limit)
        found[name] = entries(name, raw)
    return found


@click.command()
@security_options
@redis_option
@json_option
@click.option("--service", help="Only this service.")
@click.option("--since", default="24h", show_default=True, help="How far back (30m, 24h, 7d).")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Errors shown per service.",
)
def errors(redis: str, as_json: bool, service: str | None, since: str, limit: int) -> None:
    """Recent errors per service, with their count per hour over the period."""
    if service is not None:
        checked(service, check_name, "service")
    span = checked(since, check_span)
    now = time.time()
    with reader(redis) as client:
        found = read_errors(client, service, now - span, 1000)
    bucket = max(60.0, span / 24)
    if as_json:
        doc: dict[str, Any] = {
            name: {
                "counts": histogram(items, now, bucket, 24),
                "bucket_seconds": bucket,
                "errors": [vars(e) for e in items[:limit]],
            }
            for name, items in found.items()
        }
        echo_json(doc)
        return
    if not any(found.values()):
        click.echo(f"no errors in the last {since}")
        return
    for name, items in found.items():
        counts = histogram(items, now, bucket, 24)
        click.echo(f"{name}: {len(items)} error(s) in the last {since}  |{sparkline(counts)}|")
        for entry in items[:limit]:
            click.echo(f"  {fmt_time(entry.at)}  {entry.host}  {entry.message}")
