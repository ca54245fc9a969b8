"""``prodstate web``: the read-only dashboard, a small WSGI app over the local Redis (the
records) and ZooKeeper (the tree's health), served by the standard library."""

from __future__ import annotations

import socketserver
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click
from kazoo.client import KazooClient

from prodstate.cli import exits
from prodstate.cli.options import zk_options
from prodstate.cli.security import Security, security_options
from prodstate.client import Client
from prodstate.ops.status import collect_status
from prodstate.statedb import web_render
from prodstate.statedb.cli_common import redis_option, secured, zookeeper
from prodstate.statedb.deploy_cli import read_deploys
from prodstate.statedb.deploys import DeploySearch
from prodstate.statedb.errors_cli import read_errors
from prodstate.statedb.keys import LOCKS, MACHINES, SERVICES, instances, loads, parse_when
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import STALE_AFTER, machines
from prodstate.statedb.services import instances_by_key, running
from prodstate.zk.client import ZK_ERRORS

StartResponse = Callable[..., Any]
#: The errors page covers this many seconds.
ERRORS_SPAN = 86_400.0


class Dashboard:
    """The WSGI application: one page per path, each read afresh on every request.

    ``security``: the local Redis is read as its ``reader`` identity, every node's Redis
    (the tree page) as ``admin`` if it is there (as ``prodstate status`` does), over TLS if
    it has the files."""

    def __init__(
        self,
        zk: KazooClient | None,
        cluster: str,
        redis: str,
        stale_after: float = STALE_AFTER,
        security: Security | None = None,
    ) -> None:
        self.zk = zk
        self.cluster = cluster
        self.redis = redis
        self.stale_after = stale_after
        self.security = security or Security()
        self.routes: dict[str, Callable[[dict[str, str]], tuple[str, str]]] = {
            "/": self.tree,
            "/machines": self.machines,
            "/services": self.services,
            "/deploys": self.deploys,
            "/locks": self.locks,
            "/errors": self.errors,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", "read-only\n", "text/plain")
        handler = self.routes.get(path)
        if handler is None:
            return _reply(start_response, "404 Not Found", f"no page {path}\n", "text/plain")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            status, body = handler(query)
        except Exception as exc:  # a page that cannot be read says why instead of a traceback
            text = web_render.page(
                "Error", path, f'<p class="bad">{web_render.e(exits.describe(exc))}</p>'
            )
            return _reply(start_response, "503 Service Unavailable", text)
        return _reply(start_response, status, body)

    def _local(self) -> Client:
        reader = self.security.credentials.redis_user("reader")
        return Client(None, "-", local=self.redis, reader=reader, tls=self.security.tls)

    def tree(self, query: dict[str, str]) -> tuple[str, str]:
        """The tree with each node's health."""
        if self.zk is None:
            return "200 OK", web_render.tree_page(None, "no ZooKeeper given (--zk)")
        users = self.security.credentials
        user = users.redis_user("admin") or users.redis_user("reader")
        options = {"user": user, "tls": self.security.tls}
        try:
            status = collect_status(self.zk, self.cluster, redis_options=options)
        except ZK_ERRORS as exc:
            return "503 Service Unavailable", web_render.tree_page(
                None, f"cannot read ZooKeeper: {exits.describe(exc)}"
            )
        return "200 OK", web_render.tree_page(status, None)

    def machines(self, query: dict[str, str]) -> tuple[str, str]:
        """Every machine."""
        with self._local() as client:
            found = machines(client.hgetall(MACHINES), time.time(), self.stale_after)
        return "200 OK", web_render.machines_page(found)

    def services(self, query: dict[str, str]) -> tuple[str, str]:
        """Every service, its version and where it runs."""
        with self._local() as client:
            registry = {k: loads(v) for k, v in sorted(client.hgetall(SERVICES).items())}
            hosts = {s: running(instances_by_key(client.hgetall(instances(s)))) for s in registry}
        return "200 OK", web_render.services_page(registry, hosts)

    def deploys(self, query: dict[str, str]) -> tuple[str, str]:
        """The deploy log, searched by the form's fields."""
        try:
            search = DeploySearch(
                service=query.get("service") or None,
                machine=query.get("machine") or None,
                version=query.get("version") or None,
                since=parse_when(query["since"]) if query.get("since") else None,
                until=parse_when(query["until"]) if query.get("until") else None,
                text=query.get("q") or None,
            )
        except ValueError as exc:
            return "400 Bad Request", web_render.deploys_page([], query, str(exc))
        with self._local() as client:
            found = read_deploys(client, search)[:200]
        return "200 OK", web_render.deploys_page(found, query, None)

    def locks(self, query: dict[str, str]) -> tuple[str, str]:
        """The locks as mirrored into the dataset."""
        with self._local() as client:
            raw = client.hgetall(LOCKS)
        found = []
        for name in sorted(raw):
            try:
                found.append(LockRecord.from_json(name, raw[name]))
            except ValueError:
                found.append(LockRecord(name, "?", "unreadable lock record", 0.0))
        return "200 OK", web_render.locks_page(found, time.time())

    def errors(self, query: dict[str, str]) -> tuple[str, str]:
        """Errors of the last day per service."""
        now = time.time()
        with self._local() as client:
            found = read_errors(client, None, now - ERRORS_SPAN, 1000)
        return "200 OK", web_render.errors_page(found, now, ERRORS_SPAN)


def _reply(
    start_response: StartResponse, status: str, body: str, kind: str = "text/html"
) -> list[bytes]:
    data = body.encode()
    start_response(
        status,
        [
            ("Content-Type", f"{kind}; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [data]


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
def web(zk: str, cluster: str, redis: str, port: int, bind: str) -> None:
    """Serve the read-only dashboard: tree, machines, services, deploys, locks, errors."""
    found = secured()
    with zookeeper(zk, "serving the dashboard") as zk_client:
        app = Dashboard(zk_client, cluster, redis, security=found)
        try:
            server = make_server(bind, port, app, _Server, _QuietHandler)
        except OSError as exc:
            exits.fail(f"cannot serve on {bind}:{port}: {exc.strerror or exc}", 2)
        click.echo(f"prodstate web: serving http://{bind}:{server.server_port}/", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
