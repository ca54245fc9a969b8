"""``prodstate check``: the Nagios/Icinga plugin (judged by :mod:`prodstate.ops.check`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from prodstate.cli.options import check_address, option
from prodstate.cli.security import security, security_options
from prodstate.ops.check import Status, read_heartbeat, unknown


@contextmanager
def _usage_isunknown() -> Iterator[None]:
    """Turn a click usage error into UNKNOWN: a status line on stdout and exit code 3."""
    try:
        yield
    except click.UsageError as exc:
        click.echo(unknown(f"usage error: {exc.format_message()}").line())
        exc.exit_code = Status.UNKNOWN.exit_code
        raise


class NagiosCommand(click.Command):
    """A click command whose usage errors exit 3 (UNKNOWN), as Nagios plugins must."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _usage_isunknown():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_isunknown():
            return super().invoke(ctx)


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter("must be a finite number of seconds", ctx, param)
    return value


@click.command(cls=NagiosCommand)
@option(
    "--redis",
    default="localhost:6379",
    show_default=True,
    callback=check_address,
    help="This machine's Redis HOST:PORT.",
)
@option(
    "--warning",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    callback=_finite,
    help="WARNING when the heartbeat is more than this many seconds old.",
)
@option(
    "--critical",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    callback=_finite,
    help="CRITICAL when the heartbeat is more than this many seconds old.",
)
@option(
    "--agent",
    callback=check_address,
    help="The local agent's metrics HOST:PORT: report its own measure of the heartbeat's "
    "age (free of clock skew) instead of comparing clocks.",
)
@security_options
@click.pass_context
def check(
    ctx: click.Context, redis: str, warning: float, critical: float, agent: str | None
) -> None:
    """Nagios/Icinga plugin: how old is the root's heartbeat in the local Redis?

    Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Redis unreachable, heartbeat missing
    or unreadable, usage error).
    """
    if warning > critical:
        raise click.UsageError(
            f"--warning ({warning:g}) must not exceed --critical ({critical:g})", ctx
        )
    secured = security(ctx)
    user = secured.credentials.redis_user("reader")
    result = read_heartbeat(redis, warning, critical, user=user, tls=secured.tls, agent=agent)
    click.echo(result.line(redis))
    ctx.exit(result.status.exit_code)
