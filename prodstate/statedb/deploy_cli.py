"""``prodstate deploy`` (run and record a deploy) and ``prodstate deploys`` (the log)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import uuid

import click
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout

from prodstate.cli import exits
from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.client import Client
from prodstate.statedb.cli_common import (
    checked,
    durable,
    echo_json,
    echo_table,
    json_option,
    reader,
    redis_option,
    this_host,
    writer,
    zookeeper,
)
from prodstate.statedb.deploys import (
    Deploy,
    DeploySearch,
    OutputTail,
    finish_commands,
    search,
    start_entry,
)
from prodstate.statedb.keys import (
    DEPLOY_OUTPUT,
    DEPLOYS,
    check_name,
    check_version,
    fmt_time,
    parse_when,
)
from prodstate.statedb.lock_cli import default_holder
from prodstate.statedb.locks import LockStore

#: Exit status when the command could not be started at all (as a shell says).
EXIT_NOT_FOUND = 127


def run_captured(command: list[str], tail: OutputTail) -> int:
    """Run ``command``, passing its output (stdout and stderr merged) through while keeping
    its tail; its exit status (127 if it cannot be started)."""
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        tail.add(f"cannot run {command[0]}: {exc.strerror or exc}")
        click.echo(f"prodstate: cannot run {command[0]}: {exc.strerror or exc}", err=True)
        return EXIT_NOT_FOUND
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.add(line)
    return proc.wait()


@click.command(context_settings={"ignore_unknown_options": False})
@security_options
@zk_options
@click.option("--service", required=True, help="The service deployed.")
@click.option("--version", "version", required=True, help="The version deployed.")
@click.option("--target", "targets", multiple=True, help="A machine deployed to (repeatable).")
@click.option("--who", default=default_holder, show_default="user@host", help="Who deploys.")
@click.option(
    "--wait",
    default=0.0,
    type=click.FloatRange(0, 3600),
    show_default=True,
    help="Seconds to wait for another deploy of the service to end.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def deploy(
    zk: str,
    cluster: str,
    service: str,
    version: str,
    targets: tuple[str, ...],
    who: str,
    wait: float,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (after --) as a deploy of --service at --version, and record it.

    Refused (exit 1) while the service's lock is held or another deploy of it runs.
    Records the start, then the outcome and the tail of the output; on success the
    service's current version. Exits with COMMAND's status.
    """
    checked(service, check_name, "service")
    checked(version, check_version)
    for target in targets:
        checked(target, check_name, "target")
    host = this_host()
    with zookeeper(zk, f"deploying {service}") as zk_client:
        store = LockStore(zk_client, cluster)
        mutex = store.deploy_mutex(service, f"{who} on {host}")
        try:
            got = mutex.acquire(blocking=wait > 0, timeout=wait or None)
        except LockTimeout:
            got = False
        if not got:
            holders = ", ".join(mutex.contenders()) or "another deploy"
            exits.fail(f"refused: a deploy of {service} is running ({holders})", exits.NOT_APPLIED)
        try:
            held = store.holder(service)
            if held is not None:
                exits.fail(f"refused: {held.describe(time.time())}", exits.NOT_APPLIED)
            status = _deploy(
                zk_client, cluster, service, version, list(targets), who, host, list(command)
            )
        finally:
            mutex.release()
    raise SystemExit(status)


def _deploy(
    zk_client: KazooClient,
    cluster: str,
    service: str,
    version: str,
    targets: list[str],
    who: str,
    host: str,
    command: list[str],
) -> int:
    record = Deploy(
        id=uuid.uuid4().hex[:12],
        service=service,
        version=version,
        targets=targets,
        who=who,
        host=host,
        started_at=time.time(),
    )
    with writer(zk_client, cluster) as client:
        durable(
            client,
            [start_entry(record.id, service, version, targets, who, host, shlex.join(command))],
        )
        click.echo(f"prodstate: deploy {record.id}: {service} {version} started", err=True)
        tail = OutputTail()
        status = run_captured(command, tail)
        durable(client, finish_commands(record, status, tail.text(), time.time()), timeout=30)
    outcome = "succeeded" if status == 0 else f"failed (exit {status})"
    click.echo(f"prodstate: deploy {record.id}: {service} {version} {outcome}", err=True)
    return status


@click.command()
@security_options
@redis_option
@json_option
@click.option("--service", help="Only deploys of this service.")
@click.option("--machine", help="Only deploys to (or run on) this machine.")
@click.option("--version", "version", help="Only deploys of this version.")
@click.option("--since", help="Started after: a time ago (2h, 3d) or a date (2026-05-01T12:00).")
@click.option("--until", help="Started before (same forms as --since).")
@click.option("--grep", "text", help="Text in the command, output or deployer.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--output", "show_output", is_flag=True, help="Show each deploy's output tail.")
def deploys(
    redis: str,
    as_json: bool,
    service: str | None,
    machine: str | None,
    version: str | None,
    since: str | None,
    until: str | None,
    text: str | None,
    limit: int,
    show_output: bool,
) -> None:
    """The deploy log, newest first, searched by service, machine, version and time."""
    query = DeploySearch(
        service=service,
        machine=machine,
        version=version,
        since=None if since is None else checked(since, parse_when),
        until=None if until is None else checked(until, parse_when),
        text=text,
    )
    with reader(redis) as client:
        found = read_deploys(client, query)[:limit]
    if as_json:
        echo_json([d.as_dict() for d in found])
        return
    rows = [
        [
            fmt_time(d.started_at),
            d.service,
            d.version,
            d.outcome if d.exit_code in (None, 0) else f"{d.outcome} ({d.exit_code})",
            d.who,
            " ".join(d.targets) or "-",
            d.id,
        ]
        for d in found
    ]
    echo_table(["STARTED (UTC)", "SERVICE", "VERSION", "OUTCOME", "WHO", "TARGETS", "ID"], rows)
    if show_output:
        for d in found:
            click.echo(f"\n--- {d.id} {d.service} {d.version}\n{d.output}")


def read_deploys(client: Client, query: DeploySearch) -> list[Deploy]:
    """The deploys matching ``query`` in the local Redis's log."""
    high, low = query.stream_range()
    entries = client.read("XREVRANGE", DEPLOYS, high, low)
    return search(entries, query, client.read("XREVRANGE", DEPLOY_OUTPUT, high, low))
