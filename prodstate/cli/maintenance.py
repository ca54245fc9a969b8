"""``prodstate pause`` and ``resume``: hold automatic failover and moves for maintenance.

Exit status: 0 done; 1 not applied (``resume`` with no pause set, a cluster that does not
exist, ZooKeeper refused it); 2 usage error or ZooKeeper unreachable.

The pause is a persistent znode (:mod:`prodstate.zk.maintenance`) that every agent watches
and enforces itself (:func:`prodstate.core.decide.decide`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click
from kazoo.exceptions import NoNodeError

from prodstate.cli.connect import zookeeper
from prodstate.cli.exits import NOT_APPLIED, describe, fail
from prodstate.cli.options import config_option, env_name, zk_options
from prodstate.cli.security import security_options
from prodstate.core.maintenance import MAX_REASON, Pause, format_duration
from prodstate.core.model import DataError
from prodstate.statedb.keys import parse_span
from prodstate.zk.maintenance import clear_pause, set_pause

#: The longest a pause may be set for: longer maintenance sets a new one.
MAX_PAUSE = 30 * 86400


def _operator() -> str:
    """Who set it: ``user@host``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname().split('.')[0]}"


def _json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar=env_name("--json"),
        help="Print the pause as JSON.",
    )(command)


def _document(pause: Pause | None, now: float) -> dict[str, object]:
    if pause is None:
        return {"paused": False}
    doc: dict[str, object] = {"paused": pause.active(now), "reason": pause.reason}
    return {**doc, "by": pause.by, "since": pause.since, "expires": pause.expires}


@click.command()
@config_option
@zk_options
@click.option("--reason", required=True, help=f"Why (shown everywhere; {MAX_REASON} chars).")
@click.option("--expires", help="Resume by itself after this long (90s, 30m, 2h, 1d) [never].")
@_json_option
@security_options
def pause(zk: str, cluster: str, reason: str, expires: str | None, as_json: bool) -> None:
    """Pause automatic failover and moves: replication stays as it is, every agent keeps
    its Redis where it is and no branch takes the root, until `prodstate resume` (or
    --expires).
    A root that dies while paused is not replaced: writes stop until resumed."""
    now = time.time()
    seconds = None
    if expires is not None:
        try:
            seconds = parse_span(expires)
        except ValueError as exc:
            raise click.BadParameter(describe(exc), param_hint="--expires") from None
        if seconds > MAX_PAUSE:
            raise click.BadParameter(
                f"at most {format_duration(MAX_PAUSE)}: set a new pause to extend it",
                param_hint="--expires",
            )
    try:
        record = Pause(reason.strip(), _operator(), now, None if seconds is None else now + seconds)
    except DataError as exc:
        raise click.BadParameter(describe(exc), param_hint="--reason") from None
    with zookeeper(zk, f"pausing cluster {cluster}") as client:
        try:
            set_pause(client, cluster, record)
        except NoNodeError:
            fail(f"cluster {cluster} does not exist (no agent has registered): not paused")
    if as_json:
        click.echo(json.dumps(_document(record, now)))
    else:
        click.echo(f"cluster {cluster} {record.describe(now)}")


@click.command()
@config_option
@zk_options
@_json_option
@security_options
def resume(zk: str, cluster: str, as_json: bool) -> None:
    """End the pause: agents act on the tree as it is now (a dead root is replaced)."""
    now = time.time()
    with zookeeper(zk, f"resuming cluster {cluster}") as client:
        existed, removed = clear_pause(client, cluster)
    if as_json:
        click.echo(json.dumps({"paused": False, "resumed": existed}))
    if not existed:
        fail(f"cluster {cluster} is not paused", NOT_APPLIED)
    if not as_json:
        was = removed.describe(now) if removed else "a malformed pause record"
        click.echo(f"cluster {cluster} resumed (was {was})")
