"""``prodstate pause`` and ``resume`` (hold automatic failover and moves for maintenance),
``prodstate switchover`` (move the root on purpose), ``drain`` and ``undrain`` (move a
branch's leaves away before it is stopped or retired).

Exit status: 0 done; 1 not applied (``resume`` with no pause set, a cluster that does not
exist, a switchover refused or not completed, ZooKeeper refused it); 2 usage error or
ZooKeeper unreachable.

The pause and the switchover request are persistent znodes (:mod:`prodstate.zk.maintenance`)
that every agent watches and acts on itself (:mod:`prodstate.core.decide`,
:mod:`prodstate.core.switchover`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import click
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.cli.connect import secured, zookeeper
from prodstate.cli.exits import NOT_APPLIED, describe, fail
from prodstate.cli.options import env_name, zk_options
from prodstate.cli.security import security_options
from prodstate.core.durations import format_duration, parse_span
from prodstate.core.maintenance import MAX_REASON, Drain, Pause, Switchover
from prodstate.core.model import DataError, RootRecord
from prodstate.core.switchover import choose_target
from prodstate.core.tree import TreeStatus
from prodstate.ops.status import collect_status
from prodstate.zk.maintenance import (
    clear_drain,
    clear_pause,
    clear_switchover,
    request_switchover,
    set_drain,
    set_pause,
)
from prodstate.zk.paths import Layout

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


@click.command()
@zk_options
@click.option("--to", "target", help="The branch to hand the root to [the furthest along].")
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Seconds for the whole hand-over; past it the root serves on.",
)
@_json_option
@security_options
@click.pass_context
def switchover(
    ctx: click.Context, zk: str, cluster: str, target: str | None, timeout: float, as_json: bool
) -> None:
    """Move the root to another branch on purpose: the root fences (writes wait, none is
    lost), waits until the target holds its offset, and hands over; the target takes the
    root with the next epoch and the old root becomes its replica. Refused, with the
    reason and exit 1, when the target is not eligible or the cluster is paused."""
    found = secured()
    users = found.credentials
    options = {"user": users.redis_user("admin") or users.redis_user("reader"), "tls": found.tls}
    say = _progress(as_json)
    with zookeeper(zk, f"switching over cluster {cluster}") as client:
        status = collect_status(client, cluster, redis_options=options)
        chosen, why = choose_target(status, target)
        if chosen is None or status.root is None:
            _refuse(as_json, f"switchover refused: {why}")
        old = status.root
        now = time.time()
        request = Switchover(
            uuid.uuid4().hex, old.node_id, old.epoch, chosen, _operator(), now, now + timeout
        )
        say(f"switchover {request.id[:8]}: root {old.node_id} (epoch {old.epoch}) to {why}")
        request_switchover(client, cluster, request)
        try:
            new, seconds = _await_handover(client, cluster, request, say)
        finally:
            clear_switchover(client, cluster, request.id)
    if new is None or new.node_id != chosen:
        now_root = f"root is {new.node_id} (epoch {new.epoch})" if new else "no root"
        _refuse(as_json, f"switchover did not complete within {timeout:g}s: {now_root}")
    if as_json:
        doc = {"ok": True, "from": old.node_id, "to": new.node_id, "epoch": new.epoch}
        click.echo(json.dumps({**doc, "seconds": round(seconds, 3)}))
    else:
        click.echo(f"root {new.node_id} serves with epoch {new.epoch} ({seconds:.2f}s)")


def _progress(as_json: bool) -> Callable[[str], None]:
    """Print progress lines (on stderr with --json, so stdout stays one document)."""
    return lambda line: click.echo(line, err=as_json)


def _refuse(as_json: bool, reason: str) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "reason": reason}))
    fail(reason, NOT_APPLIED)


def _await_handover(
    client: KazooClient, cluster: str, request: Switchover, say: Callable[[str], None]
) -> tuple[RootRecord | None, float]:
    """Watch the root znode until the target serves (its replication id published) or
    the deadline; the last root seen and the seconds it took."""
    started = time.monotonic()
    path = Layout(cluster).root
    changed = threading.Event()
    released = False
    root: RootRecord | None = None
    while True:
        changed.clear()
        try:
            raw, stat = client.get(path, watch=lambda event: changed.set())
            root = RootRecord.from_json(raw, stat.ephemeralOwner)
        except NoNodeError:
            root = None
            if client.exists(path, watch=lambda event: changed.set()) is not None:
                continue  # created meanwhile: read it
        except DataError:
            root = None
        if not released and (root is None or root.epoch > request.epoch):
            released = True  # the new root may be there before this watch shows none
            say(f"root {request.source} fenced and released at the target's offset")
        if root is not None and root.epoch > request.epoch and root.replid:
            return root, time.monotonic() - started
        left = request.deadline - time.time()
        if left <= 0 or not changed.wait(left):
            return root, time.monotonic() - started


@click.command()
@zk_options
@click.argument("node")
@click.option(
    "--spread",
    default="10s",
    show_default=True,
    help="Leaves move off one by one over this long (90s, 2m), so the branches taking them "
    "are not flooded.",
)
@click.option("--wait", is_flag=True, help="Wait until no leaf replicates from NODE.")
@click.option(
    "--timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds --wait waits at most.",
)
@_json_option
@security_options
def drain(
    zk: str, cluster: str, node: str, spread: str, wait: bool, timeout: float, as_json: bool
) -> None:
    """Drain branch NODE: its leaves move to the other branches (partial resyncs, paced
    over --spread) and it is never elected root, until `prodstate undrain`. Refused for
    the root (switch it over first) and when no other branch could take its leaves."""
    try:
        seconds = parse_span(spread)
    except ValueError as exc:
        raise click.BadParameter(describe(exc), param_hint="--spread") from None
    found = secured()
    users = found.credentials
    options = {"user": users.redis_user("admin") or users.redis_user("reader"), "tls": found.tls}
    with zookeeper(zk, f"draining {node}") as client:
        status = collect_status(client, cluster, redis_options=options)
        why = _cannot_drain(status, node)
        if why:
            _refuse(as_json, f"drain refused: {why}")
        record = Drain(node, _operator(), time.time(), seconds)
        set_drain(client, cluster, record)
        leaves = _leaves_on(status, node)
        if not as_json:
            click.echo(f"branch {node} drained: {len(leaves)} leaf(s) move off it over {spread}")
        started, left = time.monotonic(), leaves
        while wait and left and time.monotonic() - started < timeout:
            threading.Event().wait(0.5)  # the leaves are read from their Redis: no watch
            left = _leaves_on(collect_status(client, cluster, redis_options=options), node)
    if wait and left:
        _refuse(as_json, f"{len(left)} leaf(s) still on {node} after {timeout:g}s: {left}")
    if as_json:
        doc = {"ok": True, "node": node, "leaves": len(leaves), "spread": seconds}
        if wait:
            doc["seconds"] = round(time.monotonic() - started, 3)
        click.echo(json.dumps(doc))
    elif wait:
        click.echo(f"no leaf replicates from {node} ({time.monotonic() - started:.1f}s)")


@click.command()
@zk_options
@click.argument("node")
@_json_option
@security_options
def undrain(zk: str, cluster: str, node: str, as_json: bool) -> None:
    """End the drain of branch NODE: leaves that rendezvous hashing gives it move back."""
    with zookeeper(zk, f"undraining {node}") as client:
        try:
            cleared = clear_drain(client, cluster, node)
        except DataError as exc:
            raise click.BadParameter(describe(exc), param_hint="NODE") from None
    if as_json:
        click.echo(json.dumps({"ok": cleared, "node": node}))
    if not cleared:
        fail(f"branch {node} is not drained", NOT_APPLIED)
    if not as_json:
        click.echo(f"branch {node} undrained: leaves return to it as rendezvous hashing says")


def _cannot_drain(status: TreeStatus, node: str) -> str:
    """Why ``node`` cannot be drained ("" if it can)."""
    branches = {n.node_id: n for n in status.nodes if n.tier == "branch"}
    if node not in branches:
        return f"{node} is not a registered branch"
    if status.root is not None and status.root.node_id == node:
        return f"{node} is the root: move the root first (prodstate switchover)"
    root = status.root.node_id if status.root else None
    others = [
        b for b, n in branches.items()
        if b not in (node, root) and n.available and not n.drained
    ]  # fmt: skip
    if not others and _leaves_on(status, node):
        return f"no other branch could take {node}'s leaves (they would load the root)"
    return ""


def _leaves_on(status: TreeStatus, node: str) -> list[str]:
    """The leaves replicating from ``node`` now."""
    address = next((n.address for n in status.nodes if n.node_id == node), None)
    return sorted(n.node_id for n in status.nodes if n.tier == "leaf" and n.master == address)
