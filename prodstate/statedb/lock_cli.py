"""``prodstate lock acquire|release|check|list``: deploy locks held in ZooKeeper."""

from __future__ import annotations

import getpass
import time

import click
from kazoo.client import KazooClient

from prodstate.cli import exits
from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.client import ProdstateError
from prodstate.statedb.cli_common import (
    checked,
    echo_json,
    echo_table,
    json_option,
    this_host,
    writer,
    zookeeper,
)
from prodstate.statedb.keys import check_span, fmt_time
from prodstate.statedb.locks import (
    LOCK_TTL_MAX,
    LockError,
    LockHeld,
    LockRecord,
    LockStore,
    mirror_command,
    new_lock,
)


def default_holder() -> str:
    """``user@host`` of whoever runs the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{this_host()}"


def _mirror(zk: KazooClient, cluster: str, lock: LockRecord | None, name: str) -> None:
    """Mirror the lock's state into the dataset; the ZooKeeper znode stays authoritative."""
    try:
        with writer(zk, cluster) as client:
            client.write(*mirror_command(lock, name), timeout=10)
    except ProdstateError as exc:
        exits.fail(
            "done in ZooKeeper, but the mirror in the dataset is not updated: "
            f"{exits.describe(exc)}",
            exits.UNCERTAIN,
        )


@click.group()
def lock() -> None:
    """Deploy locks: tooling refuses an action while its lock is held."""


@lock.command()
@security_options
@zk_options
@click.argument("name")
@click.option("--reason", required=True, help="Why the lock is held (shown to whoever is refused).")
@click.option("--ttl", help="Expire after this long (90s, 30m, 2h, 1d; at most 365d) [never].")
@click.option("--holder", default=default_holder, show_default="user@host", help="Who holds it.")
def acquire(zk: str, cluster: str, name: str, reason: str, ttl: str | None, holder: str) -> None:
    """Take lock NAME until released (or until --ttl); exit 1 if someone holds it."""
    seconds = None if ttl is None else checked(ttl, check_span, LOCK_TTL_MAX)
    now = time.time()
    record = checked(name, lambda n: new_lock(n, holder, reason, now, seconds))
    with zookeeper(zk, f"taking lock {name}") as client:
        try:
            LockStore(client, cluster).acquire(record)
        except LockHeld as exc:
            exits.fail(f"cannot lock: {exc}", exits.NOT_APPLIED)
        except LockError as exc:
            exits.fail(str(exc), exits.NOT_APPLIED)
        _mirror(client, cluster, record, name)
    click.echo(f"locked: {record.describe(now)}")


@lock.command()
@security_options
@zk_options
@click.argument("name")
@click.option("--holder", default=default_holder, show_default="user@host", help="Who releases it.")
@click.option("--force", is_flag=True, help="Release a lock someone else holds.")
def release(zk: str, cluster: str, name: str, holder: str, force: bool) -> None:
    """Release lock NAME (only its holder may, unless --force or expired)."""
    with zookeeper(zk, f"releasing lock {name}") as client:
        store = LockStore(client, cluster)
        checked(name, store.path)
        try:
            record = store.release(name, holder, force)
        except LockError as exc:
            exits.fail(str(exc), exits.NOT_APPLIED)
        _mirror(client, cluster, None, name)
    click.echo(f"released {name} (was held by {record.holder}: {record.reason})")


@lock.command()
@security_options
@zk_options
@click.argument("names", nargs=-1, required=True)
def check(zk: str, cluster: str, names: tuple[str, ...]) -> None:
    """Exit 0 if every lock NAME is free; exit 1 saying who holds one and why."""
    with zookeeper(zk, "reading the locks") as client:
        store = LockStore(client, cluster)
        for name in names:
            checked(name, store.path)
        now = time.time()
        held = [r for r in (store.holder(n, now) for n in names) if r is not None]
    if held:
        exits.fail("LOCKED: " + "; ".join(r.describe(now) for r in held), exits.NOT_APPLIED)
    click.echo(f"free: {', '.join(names)}")


@lock.command(name="list")
@security_options
@zk_options
@json_option
def list_locks(zk: str, cluster: str, as_json: bool) -> None:
    """Every lock in ZooKeeper, expired ones marked."""
    with zookeeper(zk, "listing the locks") as client:
        records = LockStore(client, cluster).all()
    now = time.time()
    if as_json:
        echo_json([{**vars(r), "expired": r.expired(now)} for r in records])
        return
    rows = [
        [
            r.name,
            r.holder,
            fmt_time(r.acquired_at),
            "expired" if r.expired(now) else fmt_time(r.expires_at),
            r.reason,
        ]
        for r in records
    ]
    echo_table(["NAME", "HOLDER", "SINCE (UTC)", "EXPIRES", "REASON"], rows)
