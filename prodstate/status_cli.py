"""``prodstate status``: read the live tree (ZooKeeper and every node's Redis) and report it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
import redis
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from prodstate.model import DataError, Lineage, Member, RedisState, RootRecord, Tier
from prodstate.options import check_cluster, config_option, env_name, option
from prodstate.redisctl import HEARTBEAT_KEY, connect, read_state
from prodstate.security_options import security, security_options
from prodstate.status import TreeStatus, build_status

#: At most this many Redis reads run at once.
MAX_WORKERS = 32

# kazoo logs every failed connection attempt; the command reports failures itself.
_kazoo_log = logging.getLogger("prodstate.status.kazoo")
_kazoo_log.addHandler(logging.NullHandler())
_kazoo_log.propagate = False


def _read_node(
    address: str, timeout: float, options: dict[str, Any]
) -> tuple[RedisState, float | None]:
    """One Redis's state and the age of its heartbeat when read (None if it has none)."""
    conn = connect(address, timeout=timeout, **options)
    try:
        state = read_state(conn)
        if not state.reachable or state.loading:
            return state, None
        try:
            raw = conn.get(HEARTBEAT_KEY)
            return state, (time.time() - float(raw) if raw is not None else None)
        except (redis.RedisError, OSError, ValueError):
            return state, None
    finally:
        conn.close()


def _zk_reader(zk: KazooClient, timeout: float) -> Callable[..., Any]:
    """``call("get", path)``: a kazoo request that waits at most ``timeout`` seconds."""

    def call(method: str, *args: Any) -> Any:
        return getattr(zk, f"{method}_async")(*args).get(timeout=timeout)

    return call


def collect_status(
    zk: KazooClient,
    cluster: str,
    timeout: float = 0.5,
    stale_after: float | None = 10.0,
    zk_timeout: float = 5.0,
    redis_options: dict[str, Any] | None = None,
) -> TreeStatus:
    """Read the znodes of ``cluster``, then every member's Redis in parallel.

    Malformed znodes and unreachable Redis servers are reported as problems;
    ZooKeeper failures (kazoo exceptions, request timeouts) propagate.
    """
    base = f"/prodstate/{cluster}"
    call = _zk_reader(zk, zk_timeout)
    call("sync", base)
    problems: list[str] = []
    root = None
    try:
        raw, stat = call("get", f"{base}/root")
        root = RootRecord.from_json(raw, stat.ephemeralOwner)
    except NoNodeError:
        pass
    except DataError as exc:
        problems.append(f"malformed root znode: {exc}")
    lineage = Lineage()
    try:
        lineage = Lineage.from_json(call("get", f"{base}/epoch")[0])
    except NoNodeError:
        pass
    except DataError as exc:
        problems.append(f"malformed epoch znode: {exc}")
    members: dict[str, dict[str, Member]] = {}
    for tier in (str(Tier.BRANCH), str(Tier.LEAF)):
        members[tier] = {}
        try:
            children = call("get_children", f"{base}/members/{tier}")
        except NoNodeError:
            continue
        for child in sorted(children):
            try:
                member = Member.from_json(call("get", f"{base}/members/{tier}/{child}")[0])
            except NoNodeError:
                continue  # went away while we looked
            except DataError as exc:
                problems.append(f"malformed member znode {tier}/{child}: {exc}")
                continue
            if member.node_id != child:
                problems.append(f"member znode {tier}/{child} names node {member.node_id}")
                continue
            members[tier][child] = member
    targets = {m.node_id: m.address for by_id in members.values() for m in by_id.values()}
    if root is not None:
        targets.setdefault(root.node_id, root.address)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(targets)))) as pool:
        futures = {
            n: pool.submit(_read_node, a, timeout, redis_options or {}) for n, a in targets.items()
        }
        results = {n: f.result() for n, f in futures.items()}
    now = time.time()
    states = {n: state for n, (state, _) in results.items()}
    # Ages were measured as each node was read; restate them as heartbeats against one "now".
    heartbeats = {n: now - age if age is not None else None for n, (_, age) in results.items()}
    return build_status(root, lineage, members, states, heartbeats, now, stale_after, problems)


@click.command()
@config_option
@option("--zk", required=True, help="ZooKeeper hosts, e.g. zk1:2181,zk2:2181,zk3:2181.")
@option("--cluster", required=True, callback=check_cluster, help="Cluster name (namespace).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar=env_name("--json"),
    show_envvar=True,
    help="Print JSON instead of a tree.",
)
@option(
    "--stale-after",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Flag a node whose last root heartbeat is older than this many seconds.",
)
@option(
    "--timeout",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01, 60),
    help="Seconds to wait for each Redis.",
)
@option(
    "--zk-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds to wait for ZooKeeper (connecting, and each request).",
)
@security_options
@click.pass_context
def status(
    ctx: click.Context,
    zk: str,
    cluster: str,
    as_json: bool,
    stale_after: float,
    timeout: float,
    zk_timeout: float,
) -> None:
    """Show the live tree: root, epoch, each branch with its leaves, links, lag and staleness.

    Exits 0 when the tree is healthy, 1 when problems were found, 2 when
    ZooKeeper cannot be read (or on a usage error).
    """
    secured = security(ctx)
    # CONFIG GET (the fence) needs the admin identity; the reader still shows the rest.
    users = secured.credentials
    options = {"user": users.redis_user("admin") or users.redis_user("reader"), "tls": secured.tls}
    try:
        client = KazooClient(hosts=zk, logger=_kazoo_log)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--zk") from None
    try:
        client.start(timeout=zk_timeout)
    except (KazooTimeoutError, KazooException, OSError):
        click.echo(f"prodstate status: cannot connect to ZooKeeper at {zk}", err=True)
        ctx.exit(2)
    try:
        report = collect_status(client, cluster, timeout, stale_after, zk_timeout, options)
    except (KazooTimeoutError, KazooException, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        click.echo(f"prodstate status: cannot read ZooKeeper at {zk}: {detail}", err=True)
        ctx.exit(2)
    finally:
        client.stop()
        client.close()
    click.echo(report.to_json() if as_json else report.render_text())
    ctx.exit(0 if report.healthy else 1)
