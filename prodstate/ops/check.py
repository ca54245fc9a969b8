"""What ``prodstate check`` (a Nagios/Icinga plugin) reports: the age of the replicated heartbeat.

The root agent writes its clock to :data:`~prodstate.core.heartbeat.HEARTBEAT_KEY` every
heartbeat interval and the value replicates to every machine. Asked with ``--agent``, the
check reports the local agent's own measure (``/freshness``): how long ago the value last
changed, on this machine's monotonic clock, which no clock difference enters. Without it, or
when the agent does not answer, it compares clocks: ``now - heartbeat``, and says so.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from prodstate.core import heartbeat
from prodstate.core.address import DataError, parse_address
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.nagios_range import Range
from prodstate.ops import http_get
from prodstate.redis.resp import Connection, ProtocolError, ReplyError

if TYPE_CHECKING:
    from prodstate.security.credentials import Secret
    from prodstate.security.tls import TlsFiles

#: A heartbeat up to this many seconds in the future is ordinary clock skew and goes unmentioned.
SKEW_ALLOWANCE = 1.0
#: Seconds the whole check may take (``-t``), as the Monitoring Plugins' default.
TIMEOUT = 10.0
#: The thresholds when neither ``-w`` nor ``-c`` is given: WARNING past 5 s, CRITICAL past 30 s.
DEFAULT_WARNING = Range(0.0, 5.0)
DEFAULT_CRITICAL = Range(0.0, 30.0)
#: The longest heartbeat value read, in bytes (a longer one is no heartbeat either).
MAX_HEARTBEAT = 4096
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


class CheckResult(NamedTuple):
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


def perfdata(staleness: float, warning: Range | None, critical: Range | None) -> str:
    """``staleness=0.412s;5;30;0``: the value, the thresholds as ranges (empty if unset), the
    minimum."""
    warn = "" if warning is None else str(warning)
    crit = "" if critical is None else str(critical)
    return f"staleness={staleness:.3f}s;{warn};{crit};0"


def judge(
    staleness: float, warning: Range | None, critical: Range | None, message: str
) -> CheckResult:
    """The state for ``staleness`` seconds: CRITICAL if ``critical`` alerts on it, else
    WARNING if ``warning`` does, else OK; with ``message`` and the perfdata."""
    if critical is not None and critical.alerts(staleness):
        status = Status.CRITICAL
    elif warning is not None and warning.alerts(staleness):
        status = Status.WARNING
    else:
        status = Status.OK
    return CheckResult(status, message, perfdata(staleness, warning, critical))


def evaluate(
    heartbeat_raw: str | None, now: float, warning: Range | None, critical: Range | None
) -> CheckResult:
    """Judge the heartbeat value read from Redis (``None`` if the key is missing) at ``now``.

    The staleness is judged by :func:`judge` against the ranges. A heartbeat up to
    :data:`~prodstate.core.heartbeat.MAX_FUTURE` ahead counts as 0 s old (more than
    :data:`SKEW_ALLOWANCE` ahead is mentioned as clock skew); further ahead, missing or not
    a number, it is UNKNOWN.
    """
    invalid = heartbeat.problem(heartbeat_raw, now)
    if invalid:
        return CheckResult(Status.UNKNOWN, invalid)
    value = heartbeat.parse_heartbeat(heartbeat_raw)
    assert value is not None
    delta = now - value
    staleness = max(0.0, delta)
    message = f"heartbeat {format_age(staleness)} old"
    if -delta > SKEW_ALLOWANCE:
        message += f", {format_age(-delta)} in the future (clock skew?)"
    return judge(staleness, warning, critical, message)


def read_agent(address: str, timeout: float = TIMEOUT) -> tuple[dict | None, str]:
    """The JSON object the agent at ``address`` (its metrics ``HOST:PORT``) answers on
    ``/freshness``, or None and why there is none."""
    import json

    try:
        host, port = parse_address(address)
        status, body = http_get.get(host, port, "/freshness", timeout)
    except DataError as exc:
        return None, str(exc)
    except (OSError, http_get.BadResponse) as exc:
        return None, f"not answering ({type(exc).__name__}: {exc})"
    if status != 200:
        return None, f"answered HTTP {status}"
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, "answered something that is not its freshness"
    return data, ""


def freshness_of(data: dict) -> tuple[float | None, str, str]:
    """The heartbeat's age in an agent's ``/freshness`` answer, or None and why it cannot
    tell; and the cluster's maintenance pause as the agent sees it ("" if none)."""
    try:
        age = data["heartbeat_age"]
        stuck = data["loop_stuck"]
    except (KeyError, TypeError):
        return None, "answered something that is not its freshness", ""
    paused = data.get("paused")
    paused = paused[:200] if isinstance(paused, str) else ""
    if stuck:
        return None, "its loop is stuck", paused
    if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age):
        return None, "has read no heartbeat yet", paused
    return max(0.0, float(age)), "", paused


def agent_freshness(address: str, timeout: float = TIMEOUT) -> tuple[float | None, str, str]:
    """The heartbeat's age as the agent at ``address`` (its metrics ``HOST:PORT``) measures
    it, from ``/freshness``, or None and why it cannot tell; and the cluster's maintenance
    pause as the agent sees it ("" if none)."""
    data, why = read_agent(address, timeout)
    if data is None:
        return None, why, ""
    return freshness_of(data)


def unknown(message: str) -> CheckResult:
    return CheckResult(Status.UNKNOWN, message)


def read_heartbeat(
    address: str,
    warning: Range | None,
    critical: Range | None,
    *,
    timeout: float = TIMEOUT,
    clock: Callable[[], float] = time.time,
    user: Secret | None = None,
    tls: TlsFiles | None = None,
    agent: str | None = None,
) -> CheckResult:
    """Read the heartbeat from the Redis at ``address`` and evaluate it; never raises.

    Redis being unreachable, loading, wanting a password or refusing the read is UNKNOWN with
    the reason. With ``agent`` (the local agent's metrics address), the age is the agent's
    monotonic measure; if it cannot give one, the clocks are compared and the message says
    why.
    """
    deadline = time.monotonic() + timeout
    try:
        with Connection(address, timeout, user=user, tls=tls) as conn:
            raw = conn.call("GET", HEARTBEAT_KEY, max_bulk=MAX_HEARTBEAT)
        now = clock()
    except ReplyError as exc:
        if exc.code == "LOADING":
            return unknown("Redis is loading its dataset into memory")
        if exc.code in ("NOAUTH", "WRONGPASS"):
            return unknown(f"Redis requires authentication: {exc}")
        return unknown(f"Redis refused GET {HEARTBEAT_KEY}: {exc}")
    except TimeoutError:
        return unknown(f"Redis did not answer within {timeout:g}s")
    except OSError as exc:
        return unknown(f"cannot connect to Redis: {exc}")
    except ProtocolError as exc:
        return unknown(f"not a Redis reply: {exc}")
    except DataError as exc:
        return unknown(f"bad Redis address: {exc}")
    except Exception as exc:
        return unknown(f"unexpected error: {type(exc).__name__}: {exc}")
    if raw is not None and not isinstance(raw, bytes):
        return unknown(f"Redis answered GET {HEARTBEAT_KEY} with {raw!r}")
    raw = None if raw is None else raw.decode("utf-8", "replace")
    if agent is None:
        return evaluate(raw, now, warning, critical)
    age, why, paused = agent_freshness(agent, max(0.001, deadline - time.monotonic()))
    maintenance = f"; cluster {paused}" if paused else ""
    if age is not None:
        message = f"heartbeat advanced {format_age(age)} ago (agent){maintenance}"
        return judge(age, warning, critical, message)
    result = evaluate(raw, now, warning, critical)
    message = f"{result.message} by clock comparison: agent at {agent} {why}{maintenance}"
    return CheckResult(result.status, message, result.perfdata)
