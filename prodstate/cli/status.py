"""``prodstate status``: read the live tree (ZooKeeper and every node's Redis) and report it."""

from __future__ import annotations

import click

from prodstate.cli.options import env_name, option, zk_options
from prodstate.cli.security import security, security_options
from prodstate.ops.status import collect_status
from prodstate.zk.client import ZK_ERRORS, quiet_client


@click.command()
@zk_options
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
        client = quiet_client(zk, tls=secured.zk_tls)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--zk") from None
    try:
        client.start(timeout=zk_timeout)
    except ZK_ERRORS:
        click.echo(f"prodstate status: cannot connect to ZooKeeper at {zk}", err=True)
        ctx.exit(2)
    try:
        report = collect_status(client, cluster, timeout, stale_after, zk_timeout, options)
    except ZK_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        click.echo(f"prodstate status: cannot read ZooKeeper at {zk}: {detail}", err=True)
        ctx.exit(2)
    finally:
        client.stop()
        client.close()
    click.echo(report.to_json() if as_json else report.render_text())
    ctx.exit(0 if report.healthy else 1)
