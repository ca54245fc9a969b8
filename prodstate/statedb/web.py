"""``prodstate web``: serve the read-only dashboard (:mod:`prodstate.statedb.dashboard`)
with the standard library's threaded WSGI server."""

from __future__ import annotations

import socketserver
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click

from prodstate.cli import exits
from prodstate.cli.connect import secured
from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.statedb.cli_common import redis_option
from prodstate.statedb.dashboard.app import Dashboard
from prodstate.statedb.keys import check_span
from prodstate.zk.client import quiet_client


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged."""


@click.command()
@security_options
@zk_options
@redis_option
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--refresh",
    default=5.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds between a page's refreshes.",
)
@click.option(
    "--stale-after",
    default="1d",
    show_default=True,
    help="A machine that has not reported for this long is stale (90s, 2h, 1d).",
)
def web(
    zk: str, cluster: str, redis: str, port: int, bind: str, refresh: float, stale_after: str
) -> None:
    """Serve the read-only dashboard: tree, machines, services, deploys, locks, errors,
    settings and /metrics. ZooKeeper is needed for the tree only: while it cannot be
    reached, the other pages are served and the tree says why."""
    found = secured()
    try:
        stale = check_span(stale_after)
    except ValueError as exc:
        exits.fail(f"bad --stale-after: {exits.describe(exc)}", exits.ERROR)
    try:
        zk_client = quiet_client(zk, 5.0, found.credentials, found.zk_tls, reconnect_max_delay=5.0)
    except ValueError as exc:
        exits.fail(f"bad --zk {zk!r}: {exits.describe(exc)}", exits.ERROR)
    # Not start(): on a timeout it gives up, where the dashboard serves the other pages and
    # keeps trying (the tree says so meanwhile).
    zk_client.start_async().wait(timeout=5.0)
    if not zk_client.connected:
        click.echo(f"prodstate web: ZooKeeper at {zk} not reachable yet; retrying", err=True)
    app = Dashboard(zk_client, cluster, redis, stale, security=found, refresh=refresh)
    try:
        server = make_server(bind, port, app, _Server, _QuietHandler)
    except OSError as exc:
        zk_client.stop()
        zk_client.close()
        exits.fail(f"cannot serve on {bind}:{port}: {exc.strerror or exc}", exits.ERROR)
    click.echo(f"prodstate web: serving http://{bind}:{server.server_port}/", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        zk_client.stop()
        zk_client.close()
