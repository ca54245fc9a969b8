"""``prodstate check``: a Nagios/Icinga plugin reporting the age of the replicated heartbeat.

The root agent writes its clock to :data:`~prodstate.redisctl.HEARTBEAT_KEY` at least once a
second and the value replicates to every machine, so ``now - heartbeat`` on a machine's Redis is
how far behind the root that machine's copy of the state is (plus any clock difference).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from redis import exceptions as redis_errors

from prodstate.credentials import Secret
from prodstate.options import check_address, option
from prodstate.redisctl import HEARTBEAT_KEY, connect
from prodstate.security_options import security, security_options
from prodstate.tlsconfig import TlsFiles

#: A heartbeat up to this many seconds in the future is ordinary clock skew and goes unmentioned.
SKEW_ALLOWANCE = 1.0
#: Socket timeout (connect and reply) when reading the heartbeat, in seconds.
TIMEOUT = 2.0
#: Status line prefix, as Nagios plugins name their service.
PREFIX = "PRODSTATE"


class Status(enum.IntEnum):
    """Plugin states; the value is the exit code Nagios expects."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def exit_code(self) -> int:
        """The process exit code for this state."""
        return int(self)


@dataclass(frozen=True)
class CheckResult:
    """One check outcome: state, human message and Nagios perfdata ("" if there is none)."""

    status: Status
    message: str
    perfdata: str = ""

    def line(self, address: str | None = None) -> str:
        """The single status line, e.g. ``PRODSTATE OK - heartbeat 0.4s old (h:1) | ...``.

        Newlines and ``|`` in the message are replaced so the line stays one line and Nagios
        does not take part of the message for perfdata.
        """
        message = " ".join(self.message.split()).replace("|", "/")
        text = f"{PREFIX} {self.status.name} - {message}"
        if address:
            text += f" ({address})"
        if self.perfdata:
            text += f" | {self.perfdata}"
        return text


def format_age(seconds: float) -> str:
    """``0.4s``, ``59.9s``, ``12m 5s``, ``3h 2m``, ``2d 3h``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def _threshold(value: float) -> str:
    return f"{value:g}"


def evaluate(heartbeat_raw: str | None, now: float, warning: float, critical: float) -> CheckResult:
    """Judge the heartbeat value read from Redis (``None`` if the key is missing) at ``now``.

    Staleness above ``warning`` is WARNING, above ``critical`` CRITICAL (Nagios threshold
    semantics: a value equal to a threshold is still within it). A heartbeat in the future
    counts as 0 s old; more than :data:`SKEW_ALLOWANCE` ahead is mentioned as clock skew.
    """
    if not 0 <= warning <= critical:
        raise ValueError(f"need 0 <= warning <= critical, got {warning} and {critical}")
    if heartbeat_raw is None:
        return CheckResult(Status.UNKNOWN, f"heartbeat key {HEARTBEAT_KEY} is missing")
    try:
        heartbeat = float(heartbeat_raw)
    except ValueError:
        heartbeat = math.nan
    if not math.isfinite(heartbeat):
        shown = heartbeat_raw if len(heartbeat_raw) <= 40 else heartbeat_raw[:40] + "..."
        return CheckResult(Status.UNKNOWN, f"heartbeat {HEARTBEAT_KEY} is not a number: {shown!r}")
    delta = now - heartbeat
    staleness = max(0.0, delta)
    if staleness > critical:
        status = Status.CRITICAL
    elif staleness > warning:
        status = Status.WARNING
    else:
        status = Status.OK
    message = f"heartbeat {format_age(staleness)} old"
    if -delta > SKEW_ALLOWANCE:
        message += f", {format_age(-delta)} in the future (clock skew?)"
    perfdata = f"staleness={staleness:.3f}s;{_threshold(warning)};{_threshold(critical)};0"
    return CheckResult(status, message, perfdata)


def _unknown(message: str) -> CheckResult:
    return CheckResult(Status.UNKNOWN, message)


def read_heartbeat(
    address: str,
    warning: float,
    critical: float,
    *,
    timeout: float = TIMEOUT,
    clock: Callable[[], float] = time.time,
    user: Secret | None = None,
    tls: TlsFiles | None = None,
) -> CheckResult:
    """Read the heartbeat from the Redis at ``address`` and evaluate it; never raises.

    Redis being unreachable, loading, wanting a password or refusing the read is UNKNOWN with
    the reason.
    """
    try:
        conn = connect(address, timeout, user=user, tls=tls)
    except Exception as exc:
        return _unknown(f"bad Redis address: {exc}")
    try:
        raw = conn.get(HEARTBEAT_KEY)
        now = clock()
    except redis_errors.BusyLoadingError:
        return _unknown("Redis is loading its dataset into memory")
    except redis_errors.AuthenticationError as exc:
        return _unknown(f"Redis requires authentication: {exc}")
    except redis_errors.TimeoutError:
        return _unknown(f"Redis did not answer within {timeout:g}s")
    except redis_errors.ConnectionError as exc:
        return _unknown(f"cannot connect to Redis: {exc}")
    except redis_errors.ResponseError as exc:
        return _unknown(f"Redis refused GET {HEARTBEAT_KEY}: {exc}")
    except redis_errors.RedisError as exc:
        return _unknown(f"Redis error: {exc}")
    except UnicodeDecodeError:
        return _unknown(f"heartbeat {HEARTBEAT_KEY} is not a number: not valid UTF-8")
    except Exception as exc:
        return _unknown(f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    return evaluate(raw, now, warning, critical)


@contextmanager
def _usage_is_unknown() -> Iterator[None]:
    """Turn a click usage error into UNKNOWN: a status line on stdout and exit code 3."""
    try:
        yield
    except click.UsageError as exc:
        click.echo(_unknown(f"usage error: {exc.format_message()}").line())
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
        with _usage_is_unknown():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_is_unknown():
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
@security_options
@click.pass_context
def check(ctx: click.Context, redis: str, warning: float, critical: float) -> None:
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
    result = read_heartbeat(redis, warning, critical, user=user, tls=secured.tls)
    click.echo(result.line(redis))
    ctx.exit(result.status.exit_code)
