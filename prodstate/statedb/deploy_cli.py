"""``prodstate deploy`` (run and record a deploy) and ``prodstate deploys`` (the log)."""

from __future__ import annotations

import shlex
import time
import uuid
from dataclasses import replace

import click
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
from prodstate.statedb.deploy_run import run_supervised
from prodstate.statedb.deploys import (
    Deploy,
    DeploySearch,
    OutputTail,
    abandon_command,
    finish_commands,
    search,
    start_entry,
)
from prodstate.statedb.keys import (
    DEPLOY_OUTPUT,
    DEPLOYS,
    WHO_MAX,
    check_name,
    check_targets,
    check_text,
    check_version,
    fmt_time,
    parse_when,
)
from prodstate.statedb.lock_cli import default_holder
from prodstate.statedb.locks import LockError, LockStore


@click.command(context_settings={"ignore_unknown_options": False})
@security_options
@zk_options
@click.option("--service", required=True, help="The service deployed.")
@click.option("--version", "version", required=True, help="The version deployed.")
@click.option(
    "--target", "targets", multiple=True, help="A machine deployed to (repeatable, up to 32)."
)
@click.option("--who", default=default_holder, show_default="user@host", help="Who deploys.")
@click.option(
    "--wait",
    default=0.0,
    type=click.FloatRange(0, 3600),
    show_default=True,
    help="Seconds to wait for another deploy of the service to end.",
)
@click.option(
    "--under-lock",
    is_flag=True,
    help="Deploy although the service's lock is held, if --who holds it.",
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
    under_lock: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (after --) as a deploy of --service at --version, and record it.

    Refused (exit 1) while another deploy of the service runs, or while its lock is held
    (unless --under-lock and --who holds it). Records the start, then the outcome and
    the tail of the output; on success the service's current version. COMMAND runs in a
    process group of its own: SIGTERM, SIGINT and SIGHUP are passed on to it and waited
    for (recorded as aborted), and if this command dies it ends too. Exits with COMMAND's
    status, or 128 plus the signal that killed it.
    """
    checked(service, check_name, "service")
    checked(version, check_version)
    machines = checked(targets, check_targets)
    checked(who, check_text, "--who", WHO_MAX)
    host = this_host()
    with zookeeper(zk, f"deploying {service}") as zk_client:
        store = LockStore(zk_client, cluster)
        try:
            store.check_cluster()
        except LockError as exc:
            exits.fail(f"refused: {exc}", exits.NOT_APPLIED)
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
            if held is not None and not (under_lock and held.holder == who):
                hint = "" if held.holder != who else " (deploy under it with --under-lock)"
                exits.fail(f"refused: {held.describe(time.time())}{hint}", exits.NOT_APPLIED)
            status = _deploy(store, cluster, service, version, machines, who, host, list(command))
        finally:
            mutex.release()
    raise SystemExit(status)


def _deploy(
    store: LockStore,
    cluster: str,
    service: str,
    version: str,
    targets: list[str],
    who: str,
    host: str,
    command: list[str],
) -> int:
    """Record the start, run the command, record its outcome; the shell's exit status."""
    record = Deploy(
        id=uuid.uuid4().hex[:12],
        service=service,
        version=version,
        targets=targets,
        who=who,
        host=host,
        started_at=time.time(),
    )
    with writer(store.zk, cluster) as client:
        starting = [
            start_entry(record.id, service, version, targets, who, host, shlex.join(command))
        ]
        previous = store.started(service)
        if previous is not None:  # its deploy died without an outcome: this one holds the mutex
            dead = Deploy.from_started_record(previous)
            if dead is not None:
                starting.insert(0, abandon_command(dead))
                click.echo(f"prodstate: deploy {dead.id} of {service} was abandoned", err=True)
        durable(client, starting)
        store.mark_started(service, record.started_record())
        click.echo(f"prodstate: deploy {record.id}: {service} {version} started", err=True)
        tail = OutputTail()
        outcome = run_supervised(command, tail)
        durable(client, finish_commands(record, outcome, tail.text(), time.time()), timeout=30)
        store.clear_started(service)
    done = replace(record, outcome=outcome.name, exit_code=outcome.exit_code, signal=outcome.signal)
    click.echo(
        f"prodstate: deploy {record.id}: {service} {version} {done.describe_outcome()}", err=True
    )
    return outcome.shell_status


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
            d.describe_outcome(),
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
