"""``prodstate machine report|list|show|forget``: machines and their hardware."""

from __future__ import annotations

import time

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
from prodstate.statedb.facts import collect
from prodstate.statedb.keys import MACHINES, check_name, fmt_time, host_services
from prodstate.statedb.machines import (
    STALE_AFTER,
    forget_commands,
    human_age,
    human_bytes,
    machines,
    record_command,
)

stale_option = click.option(
    "--stale-after",
    default=STALE_AFTER,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds after which a machine that has not reported is shown as stale.",
)


@click.group()
def machine() -> None:
    """Machines and their hardware."""


@machine.command()
@security_options
@zk_options
@click.option("--host", default=this_host, show_default="this host", help="Record under this name.")
@json_option
def report(zk: str, cluster: str, host: str, as_json: bool) -> None:
    """Collect this machine's facts (CPUs, memory, disks, OS, kernel, addresses), record them."""
    checked(host, check_name, "host")
    facts = collect(host)
    with recording(zk, cluster, f"recording the facts of {host}") as client:
        durable(client, [record_command(facts)])
    if as_json:
        echo_json(facts)
    else:
        click.echo(
            f"recorded {host}: {facts['cpus']} CPUs, {human_bytes(facts['memory_bytes'])}"
            f" memory, {facts['os']}, kernel {facts['kernel']}"
        )


@machine.command(name="list")
@security_options
@redis_option
@json_option
@stale_option
def list_machines(redis: str, as_json: bool, stale_after: float) -> None:
    """Every machine recorded, with its last report's age (stale ones marked)."""
    with reader(redis) as client:
        found = machines(client.hgetall(MACHINES), time.time(), stale_after)
    if as_json:
        echo_json([m.as_dict() for m in found])
        return
    rows = [
        [
            m.host,
            str(m.facts.get("cpus", "-")),
            human_bytes(m.facts.get("memory_bytes")),
            str(m.facts.get("os", "-")),
            str(m.facts.get("kernel", "-")),
            human_age(m.age) + (" STALE" if m.stale else ""),
        ]
        for m in found
    ]
    echo_table(["HOST", "CPUS", "MEMORY", "OS", "KERNEL", "REPORTED"], rows)


@machine.command()
@security_options
@redis_option
@json_option
@stale_option
@click.argument("host")
def show(redis: str, as_json: bool, stale_after: float, host: str) -> None:
    """One machine's facts; exit 1 if it never reported."""
    checked(host, check_name, "host")
    with reader(redis) as client:
        raw = client.hget(MACHINES, host)
    if raw is None:
        exits.fail(f"unknown machine {host}: it has never reported", exits.NOT_APPLIED)
    (found,) = machines({host: raw}, time.time(), stale_after)
    if as_json:
        echo_json(found.as_dict())
        return
    facts = found.facts
    click.echo(
        f"host      {host}" + ("   (STALE: no report for a long time)" if found.stale else "")
    )
    click.echo(f"reported  {fmt_time(facts.get('reported_at'))} UTC ({human_age(found.age)} ago)")
    click.echo(f"cpus      {facts.get('cpus')} x {facts.get('cpu_model') or '?'}")
    click.echo(f"memory    {human_bytes(facts.get('memory_bytes'))}")
    click.echo(f"os        {facts.get('os')}  kernel {facts.get('kernel')} {facts.get('arch', '')}")
    for disk in facts.get("disks", []):
        size = human_bytes(disk.get("size_bytes"))
        click.echo(f"disk      {disk.get('mount')} {disk.get('device')} {disk.get('fs')} {size}")
    for addr in facts.get("addresses", []):
        click.echo(f"address   {addr.get('interface')} {addr.get('address')}")


@machine.command()
@security_options
@zk_options
@redis_option
@click.argument("host")
def forget(zk: str, cluster: str, redis: str, host: str) -> None:
    """Remove a retired machine: its facts and the services recorded on it (the deploy
    log and service events keep their history); exit 1 if nothing is recorded for it."""
    checked(host, check_name, "host")
    with reader(redis) as local:
        known = local.hget(MACHINES, host) is not None
        services = list(local.hgetall(host_services(host)))
    if not known and not services:
        exits.fail(f"unknown machine {host}: nothing is recorded for it", exits.NOT_APPLIED)
    with recording(zk, cluster, f"forgetting {host}") as client:
        durable(client, forget_commands(host, services))
    also = f" and its {len(services)} service record(s)" if services else ""
    click.echo(f"forgot {host}{also}")
