"""``prodstate agent``: run the agent beside this machine's Redis."""

from __future__ import annotations

import logging
import signal
import socket

import click

from prodstate.agent.config import AgentConfig
from prodstate.agent.logs import setup_logging
from prodstate.agent.loop import Agent
from prodstate.cli.exits import ERROR, fail
from prodstate.cli.options import (
    check_address,
    check_node_id,
    option,
    redis_option,
    zk_options,
)
from prodstate.cli.security import security, security_options
from prodstate.core.freshness import DEFAULT_POLICY, FreshnessPolicy
from prodstate.core.model import Tier, format_address
from prodstate.zk.session import SessionFileError


@click.command()
@zk_options
@option("--tier", required=True, type=click.Choice([t.value for t in Tier]), help="Tree tier.")
@option("--node-id", default=socket.gethostname(), show_default="hostname", callback=check_node_id)
@redis_option("Local Redis HOST:PORT to manage.", default=None, required=True)
@option("--advertise", callback=check_address, help="Address others replicate from [--redis].")
@option(
    "--session-timeout",
    default=AgentConfig.session_timeout,
    show_default=True,
    type=click.FloatRange(0.5, 600),
)
@option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics and /healthz here.")
@option(
    "--metrics-host",
    default=AgentConfig.metrics_host,
    show_default=True,
    help="Address to serve them on.",
)
@option("--tick", default=AgentConfig.tick, show_default=True, type=click.FloatRange(0.01, 5))
@option(
    "--rest-interval",
    default=AgentConfig.rest_interval,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="Seconds between decisions of a healthy replica at rest (0: never rests).",
)
@option("--jitter", default=AgentConfig.jitter, show_default=True, type=click.FloatRange(0, 60))
@option(
    "--refresh-interval",
    type=click.FloatRange(1, 3600),
    show_default="60",
    help="Seconds between full re-reads of ZooKeeper (watches drive the reads between).",
)
@option(
    "--backlog-size",
    default=AgentConfig.backlog_size,
    show_default=True,
    help="Redis repl-backlog-size.",
)
@option(
    "--cold-start-wait",
    default=AgentConfig.cold_start_wait,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds an empty leaf waits for a syncing branch before loading from the root.",
)
@option(
    "--heartbeat-interval",
    default=DEFAULT_POLICY.heartbeat_interval,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between the root's heartbeat writes, and between freshness checks.",
)
@option(
    "--stale-after",
    default=DEFAULT_POLICY.stale_after,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="A copy whose heartbeat has not advanced for longer is stale (a leaf blames its "
    "own parent's link after twice this; a root unacknowledged this long gives up).",
)
@option(
    "--fall",
    default=DEFAULT_POLICY.fall,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Stale checks in a row that make a node stale.",
)
@option(
    "--rise",
    default=DEFAULT_POLICY.rise,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Fresh checks in a row that make a stale node fresh (doubled for a flapping link).",
)
@option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING"], case_sensitive=False),
)
@option("--log-json", is_flag=True, help="Log JSON lines instead of key=value text.")
@option(
    "--state-dir",
    default=AgentConfig.state_dir,
    show_default=True,
    help="Private directory where the agent keeps its ZooKeeper session, so that a restart "
    "within the session timeout resumes it ('' to keep none: every restart is a new session).",
)
@security_options
@click.pass_context
def agent(
    ctx: click.Context,
    zk: str,
    cluster: str,
    tier: str,
    node_id: str,
    redis: str,
    advertise: str | None,
    session_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
    tick: float,
    rest_interval: float,
    jitter: float,
    refresh_interval: float | None,
    backlog_size: str,
    cold_start_wait: float,
    heartbeat_interval: float,
    stale_after: float,
    fall: int,
    rise: int,
    log_level: str,
    log_json: bool,
    state_dir: str,
) -> None:
    """Arrange this machine's Redis into the cluster's tree and keep it there."""
    secured = security(ctx)
    try:
        freshness = FreshnessPolicy(heartbeat_interval, stale_after, fall, rise)
    except ValueError as exc:
        raise click.UsageError(f"{exc} (--heartbeat-interval, --stale-after)") from None
    setup_logging(log_level, log_json)
    config = AgentConfig(
        zk=zk,
        cluster=cluster,
        tier=Tier(tier),
        node_id=node_id,
        redis=redis,
        advertise=advertise or redis,
        session_timeout=session_timeout,
        tick=tick,
        rest_interval=rest_interval,
        jitter=jitter,
        refresh_interval=refresh_interval,
        backlog_size=backlog_size,
        cold_start_wait=cold_start_wait,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        freshness=freshness,
        credentials=secured.credentials,
        tls=secured.tls,
        zk_tls=secured.zk_tls,
        state_dir=state_dir or None,
    )
    try:
        runner = Agent(config)
    except SessionFileError as exc:
        fail(f"refusing to run: {exc}", ERROR)
    try:
        bound = runner.serve_metrics()
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror or exc}"
        ) from None
    if bound is not None:
        logging.getLogger("prodstate.agent.loop").info(
            "serving /metrics and /healthz",
            extra={"node_id": node_id, "metrics_address": format_address(metrics_host, bound)},
        )

    problem = runner.preflight(timeout=min(10.0, session_timeout))
    if problem:
        runner.shutdown()
        fail(f"refusing to run: {problem}", ERROR)

    def _stop(signum: int, frame: object) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run()
