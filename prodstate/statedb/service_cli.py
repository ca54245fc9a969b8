"""``prodstate service started|stopped|discover|list|where|on``: services and where they run."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from prodstate.cli import exits
from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.statedb.cli_common import (
    checked,
    durable,
    echo_json,
    echo_table,
    json_option,
    reader,
    recording,
    redis_option,
    this_host,
)
from prodstate.statedb.keys import (
    SERVICES,
    check_name,
    check_version,
    fmt_time,
    host_services,
    instances,
    loads,
)
from prodstate.statedb.services import (
    DISCOVERY,
    RUNNING,
    STOPPED,
    discovery_plan,
    forget_commands,
    instance_commands,
    instances_by_key,
    parse_patterns,
    running,
    running_services,
)

host_option = click.option(
    "--host", default=this_host, show_default="this host", help="The machine it runs on."
)


def process_cmdlines() -> list[str]:
    """The command lines of this machine's processes (this one left out)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if raw:
            lines.append(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
    return lines


@click.group()
def service() -> None:
    """Services: phone home from start/stop scripts, discover, and ask where they run."""


def _phone_home(
    zk: str, cluster: str, redis: str, name: str, host: str, state: str, version: str | None
) -> None:
    checked(name, check_name, "service")
    checked(host, check_name, "host")
    if version is not None:
        checked(version, check_version)
    with reader(redis) as local:
        previous = loads(local.hget(instances(name), host))
    try:
        commands = instance_commands(name, host, state, time.time(), version, previous=previous)
    except ValueError as exc:
        exits.fail(str(exc), exits.NOT_APPLIED)
    with recording(zk, cluster, f"recording {name} {state} on {host}") as client:
        durable(client, commands)
    click.echo(f"{name} {state} on {host}" + (f" (version {version})" if version else ""))


@service.command()
@security_options
@zk_options
@redis_option
@host_option
@click.option("--version", "version", help="The version that started.")
@click.argument("name")
def started(zk: str, cluster: str, redis: str, host: str, version: str | None, name: str) -> None:
    """Record that service NAME started on this machine (for start scripts)."""
    _phone_home(zk, cluster, redis, name, host, RUNNING, version)


@service.command()
@security_options
@zk_options
@redis_option
@host_option
@click.argument("name")
def stopped(zk: str, cluster: str, redis: str, host: str, name: str) -> None:
    """Record that service NAME stopped on this machine (for stop scripts)."""
    _phone_home(zk, cluster, redis, name, host, STOPPED, None)


@service.command()
@security_options
@zk_options
@redis_option
@host_option
@click.option(
    "--patterns",
    "patterns_file",
    required=True,
    type=click.Path(dir_okay=False),
    help='TOML file: [services] NAME = "REGEX over process command lines".',
)
@click.option("--dry-run", is_flag=True, help="Show what would be recorded; record nothing.")
def discover(
    zk: str, cluster: str, redis: str, host: str, patterns_file: str, dry_run: bool
) -> None:
    """Match this machine's processes against patterns; record services found or gone."""
    checked(host, check_name, "host")
    try:
        text = Path(patterns_file).read_text()
    except OSError as exc:
        exits.fail(
            f"cannot read {patterns_file}: {exc.strerror or exits.describe(exc)}", exits.ERROR
        )
    patterns = checked(text, parse_patterns)
    found = running_services(patterns, process_cmdlines())
    with reader(redis) as local:
        current = instances_by_key(local.hgetall(host_services(host)))
    start, stop = discovery_plan(found, current)
    for name in start:
        click.echo(f"running: {name}")
    for name in stop:
        click.echo(f"stopped: {name}")
    if not start and not stop:
        click.echo(f"no change on {host} ({len(found)} service(s) running)")
    if dry_run or not (start or stop):
        return
    now = time.time()
    commands = []
    for name in start:
        commands += instance_commands(name, host, RUNNING, now, None, DISCOVERY, current.get(name))
    for name in stop:
        commands += instance_commands(name, host, STOPPED, now, None, DISCOVERY, current.get(name))
    with recording(zk, cluster, f"recording the services of {host}") as client:
        durable(client, commands)


@service.command()
@security_options
@zk_options
@redis_option
@click.option("--force", is_flag=True, help="Forget it although machines run it.")
@click.argument("name")
def forget(zk: str, cluster: str, redis: str, force: bool, name: str) -> None:
    """Remove retired service NAME: its record, its instances on every machine and its
    errors (the deploy log and service events keep their history). Exit 1 if nothing is
    recorded for it, or if a machine runs it (unless --force)."""
    checked(name, check_name, "service")
    with reader(redis) as local:
        known = local.hget(SERVICES, name) is not None
        records = instances_by_key(local.hgetall(instances(name)))
    if not known and not records:
        exits.fail(f"unknown service {name}: nothing is recorded for it", exits.NOT_APPLIED)
    still = sorted(running(records))
    if still and not force:
        exits.fail(
            f"{name} still runs on {', '.join(still)}: stop it first (or use --force)",
            exits.NOT_APPLIED,
        )
    with recording(zk, cluster, f"forgetting {name}") as client:
        durable(client, forget_commands(name, records))
    also = f" and its {len(records)} instance record(s)" if records else ""
    click.echo(f"forgot {name}{also}")


@service.command(name="list")
@security_options
@redis_option
@json_option
def list_services(redis: str, as_json: bool) -> None:
    """Every service: its current (deployed) version and the machines running it."""
    with reader(redis) as client:
        registry = {k: loads(v) for k, v in sorted(client.hgetall(SERVICES).items())}
        hosts = {s: running(instances_by_key(client.hgetall(instances(s)))) for s in registry}
    if as_json:
        echo_json({s: {**registry[s], "running_on": sorted(hosts[s])} for s in registry})
        return
    rows = [
        [
            s,
            str(r.get("version") or "-"),
            fmt_time(r.get("deployed_at")),
            " ".join(sorted(hosts[s])) or "-",
        ]
        for s, r in registry.items()
    ]
    echo_table(["SERVICE", "VERSION", "DEPLOYED (UTC)", "RUNNING ON"], rows)


@service.command()
@security_options
@redis_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="Include stopped instances.")
@click.argument("name")
def where(redis: str, as_json: bool, show_all: bool, name: str) -> None:
    """The machines running service NAME."""
    checked(name, check_name, "service")
    with reader(redis) as client:
        records = instances_by_key(client.hgetall(instances(name)))
    _show_instances(records if show_all else running(records), "HOST", as_json)


@service.command()
@security_options
@redis_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="Include stopped services.")
@click.argument("host")
def on(redis: str, as_json: bool, show_all: bool, host: str) -> None:
    """The services running on machine HOST."""
    checked(host, check_name, "host")
    with reader(redis) as client:
        records = instances_by_key(client.hgetall(host_services(host)))
    _show_instances(records if show_all else running(records), "SERVICE", as_json)


def _show_instances(records: Mapping[str, Mapping[str, Any]], key: str, as_json: bool) -> None:
    if as_json:
        echo_json(records)
        return
    rows = [
        [
            k,
            r.get("state", "?"),
            str(r.get("version") or "-"),
            fmt_time(r.get("since")),
            r.get("source", "?"),
        ]
        for k, r in records.items()
    ]
    echo_table([key, "STATE", "VERSION", "SINCE (UTC)", "SOURCE"], rows)
