"""``prodstate api``: serve the HTTP API (uvicorn) with one long-lived client."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import click

from prodstate.cli import exits
from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.statedb.cli_common import redis_option, secured, writer, zookeeper

#: Default port of the API.
PORT = 8470


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: any free port); exit 2 naming why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so (without it,
    # Nagle's algorithm and delayed ACKs add 40 ms to each answer on a kept-alive connection).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        exits.fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", exits.ERROR)
    return sock


def https_settings(cert: str | None, key: str | None, client_ca: str | None) -> dict[str, Any]:
    """uvicorn's TLS settings for the ``--https-*`` files (none: plain HTTP); a usage error
    (exit 2) for a key without its certificate or a client CA without either."""
    if (cert is None) != (key is None):
        exits.fail("--https-cert-file and --https-key-file go together", exits.ERROR)
    if client_ca is not None and cert is None:
        exits.fail(
            "--https-client-ca-file needs --https-cert-file and --https-key-file", exits.ERROR
        )
    if cert is None:
        return {}
    settings: dict[str, Any] = {"ssl_certfile": cert, "ssl_keyfile": key}
    if client_ca is not None:
        settings |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings


_FILE = click.Path(dir_okay=False)


@click.command()
@security_options
@zk_options
@redis_option
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--rate",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01, 10_000),
    help="Requests a second each identity may make (on average).",
)
@click.option(
    "--burst",
    default=20,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Requests an identity may make at once before --rate applies.",
)
@click.option(
    "--max-body",
    default=65_536,
    show_default=True,
    type=click.IntRange(256, 16 * 1024 * 1024),
    help="Largest request body taken (bytes); larger ones get 413.",
)
@click.option(
    "--write-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds a write may take to be confirmed (failover included).",
)
@click.option("--https-cert-file", type=_FILE, help="Serve HTTPS with this certificate (PEM).")
@click.option("--https-key-file", type=_FILE, help="Private key (PEM) of --https-cert-file.")
@click.option(
    "--https-client-ca-file",
    type=_FILE,
    help="Mutual TLS: accept only clients with a certificate this CA (PEM) signed.",
)
def api(
    zk: str,
    cluster: str,
    redis: str,
    bind: str,
    port: int,
    rate: float,
    burst: int,
    max_body: int,
    write_timeout: float,
    https_cert_file: str | None,
    https_key_file: str | None,
    https_client_ca_file: str | None,
) -> None:
    """Serve the HTTP API: reads of the local copy, phone-home writes through the root.

    Callers send a token of --credentials-file's [api.tokens]; each identity has rights
    (read, report, write). The OpenAPI description is at /openapi.json.
    """
    import uvicorn

    from prodstate.api.access import RateLimit, Tokens
    from prodstate.api.app import create_app
    from prodstate.api.records import Records

    tokens = secured().credentials.api_tokens
    if not tokens:
        exits.fail("no [api.tokens] in --credentials-file: nobody could call the API", exits.ERROR)
    https = https_settings(https_cert_file, https_key_file, https_client_ca_file)
    sock = listen(bind, port)
    with zookeeper(zk, "serving the API") as zk_client, writer(zk_client, cluster, redis) as client:
        app = create_app(
            Records(client, write_timeout), Tokens(tokens), RateLimit(rate, burst), max_body
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_keep_alive=5,
            limit_concurrency=256,
            **https,
        )
        try:
            config.load()  # reads the --https-* files
        except (OSError, ssl.SSLError) as exc:
            exits.fail(f"cannot serve HTTPS: {exits.describe(exc)}", exits.ERROR)
        host, bound = sock.getsockname()[:2]
        scheme = "https" if https else "http"
        mutual = " (client certificates required)" if https_client_ca_file else ""
        click.echo(f"prodstate api: serving {scheme}://{host}:{bound}/{mutual}", err=True)
        uvicorn.Server(config).run(sockets=[sock])
