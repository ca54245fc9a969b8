"""``prodstate render``: files rendered from Jinja2 templates over the local Redis."""

from __future__ import annotations

import logging
import signal
import threading

import click

from prodstate.agent.logs import setup_logging
from prodstate.cli.exits import ERROR, NOT_APPLIED, fail
from prodstate.cli.options import check_address, option, redis_option
from prodstate.cli.security import security, security_options
from prodstate.redis.connect import connect
from prodstate.render.config import (
    ConfigError,
    TemplateSpec,
    check_destinations,
    parse_file,
    parse_flag,
)
from prodstate.render.debounce import Wait
from prodstate.render.metrics import RenderMetrics
from prodstate.render.notify import KeyspaceSubscriber
from prodstate.render.runner import Job, Renderer
from prodstate.render.source import Source
from prodstate.render.templates import TemplateError, load

log = logging.getLogger("prodstate.render")


def _wait(ctx: click.Context, param: click.Parameter, value: str | None) -> Wait | None:
    if value is None:
        return None
    try:
        return Wait.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _specs(
    templates_file: str | None, flags: tuple[str, ...], wait: Wait | None
) -> list[TemplateSpec]:
    try:
        specs = parse_file(templates_file, wait) if templates_file else []
        specs += [parse_flag(flag, wait or Wait()) for flag in flags]
        check_destinations(specs)
    except ConfigError as exc:
        fail(str(exc), ERROR)
    if not specs:
        fail("no templates: give --template SRC:DEST[:CMD] or --templates FILE", ERROR)
    return specs


@click.command()
@click.option(  # no PRODSTATE_TEMPLATE: the environment would split it at spaces
    "--template",
    multiple=True,
    metavar="SRC:DEST[:CMD]",
    help="A template, its destination and the command to run after it changed (repeatable).",
)
@option(
    "--templates",
    type=click.Path(dir_okay=False),
    help="TOML file of [[template]] entries.",
)
@redis_option("The local Redis to render from.")
@option(
    "--agent",
    callback=check_address,
    help="The local agent's metrics HOST:PORT: judge freshness and history by it.",
)
@option(
    "--max-staleness",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 86400),
    help="Keep the files as they are while the heartbeat has not advanced for this long.",
)
@option("--wait", callback=_wait, help="MIN[:MAX] debounce of every template (e.g. 2s:10s) [0].")
@option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1, 86400),
    help="Render every this many seconds even without a notification (a safety net).",
)
@option("--once", is_flag=True, help="Render once and exit (1 if a template was not rendered).")
@option("--dry-run", is_flag=True, help="Print what would be written; write nothing, run nothing.")
@option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on this port.")
@option("--metrics-host", default="127.0.0.1", show_default=True, help="Address to serve them on.")
@option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING"], case_sensitive=False),
)
@option("--log-json", is_flag=True, help="Log JSON lines instead of key=value text.")
@security_options
@click.pass_context
def render(
    ctx: click.Context,
    template: tuple[str, ...],
    templates: str | None,
    redis: str,
    agent: str | None,
    max_staleness: float,
    wait: Wait | None,
    interval: float,
    once: bool,
    dry_run: bool,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
    log_json: bool,
) -> None:
    """Render Jinja2 templates from the local Redis into files, running each template's
    command after its file changed; every template is checked first."""
    secured = security(ctx)
    setup_logging(log_level, log_json)
    specs = _specs(templates, template, wait)
    jobs = []
    for spec in specs:
        try:
            jobs.append(Job(spec, load(spec.source)))
        except TemplateError as exc:
            fail(str(exc), ERROR)
    user = secured.credentials.redis_user("reader")

    def new_connection():  # type: ignore[no-untyped-def]
        return connect(redis, 2.0, user=user, tls=secured.tls)

    source = Source(new_connection(), agent)
    metrics = RenderMetrics()
    renderer = Renderer(
        jobs,
        source,
        max_staleness=max_staleness,
        interval=interval,
        dry_run=dry_run,
        metrics=metrics,
    )
    if once or dry_run:
        if not renderer.once():
            fail("not every template was rendered (see the log above)", NOT_APPLIED)
        return
    if metrics_port is not None:
        try:
            bound = metrics.serve(metrics_port, metrics_host)
        except OSError as exc:
            fail(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror or exc}",
                ERROR,
            )
        log.info("serving /metrics", extra={"metrics_address": f"{metrics_host}:{bound}"})
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()
        renderer.wake()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    subscriber = KeyspaceSubscriber(new_connection, renderer.changed).start()
    log.info(
        "rendering",
        extra={
            "templates": len(jobs),
            "redis": redis,
            "agent": agent or "",
            "max_staleness": max_staleness,
        },
    )
    try:
        renderer.run(stop, subscriber.subscribed.is_set, lambda: subscriber.last_event)
    finally:
        subscriber.stop()
        source.conn.close()
    log.info("stopped")
