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
from dataclasses import dataclass

from redis import exceptions as redis_errors

from prodstate.core import heartbeat
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.model import DataError, parse_address
from prodstate.redis.control import connect
from prodstate.security.credentials import Secret
from prodstate.security.tls import TlsFiles

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


def judge(staleness: float, warning: float, critical: float, message: str) -> CheckResult:
    """The state for ``staleness`` seconds (Nagios threshold semantics: a value equal to a
    threshold is still within it), with ``message`` and the perfdata."""
    if staleness > critical:
        status = Status.CRITICAL
    elif staleness > warning:
        status = Status.WARNING
    else:
        status = Status.OK
    perfdata = f"staleness={staleness:.3f}s;{_threshold(warning)};{_threshold(critical)};0"
    return CheckResult(status, message, perfdata)


def evaluate(heartbeat_raw: str | None, now: float, warning: float, critical: float) -> CheckResult:
    """Judge the heartbeat value read from Redis (``None`` if the key is missing) at ``now``.

    Staleness above ``warning`` is WARNING, above ``critical`` CRITICAL (Nagios threshold
    semantics: a value equal to a threshold is still within it). A heartbeat up to
    :data:`~prodstate.core.heartbeat.MAX_FUTURE` ahead counts as 0 s old (more than
    :data:`SKEW_ALLOWANCE` ahead is mentioned as clock skew); further ahead, missing or not
    a number, it is UNKNOWN.
    """
    if not 0 <= warning <= critical:
        raise ValueError(f"need 0 <= warning <= critical, got {warning} and {critical}")
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
    import http.client
    import json

    try:
        host, port = parse_address(address)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/freshness")
            response = conn.getresponse()
            body = response.read(4096)
        finally:
            conn.close()
    except DataError as exc:
        return None, str(exc)
    except (OSError, http.client.HTTPException) as exc:
        return None, f"not answering ({type(exc).__name__}: {exc})"
    if response.status != 200:
        return None, f"answered HTTP {response.status}"
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
    warning: float,
    critical: float,
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
    try:
        conn = connect(address, timeout, user=user, tls=tls)
    except Exception as exc:
        return unknown(f"bad Redis address: {exc}")
    try:
        raw = conn.get(HEARTBEAT_KEY)
        now = clock()
    except redis_errors.BusyLoadingError:
        return unknown("Redis is loading its dataset into memory")
    except redis_errors.AuthenticationError as exc:
        return unknown(f"Redis requires authentication: {exc}")
    except redis_errors.TimeoutError:
        return unknown(f"Redis did not answer within {timeout:g}s")
    except redis_errors.ConnectionError as exc:
        return unknown(f"cannot connect to Redis: {exc}")
    except redis_errors.ResponseError as exc:
        return unknown(f"Redis refused GET {HEARTBEAT_KEY}: {exc}")
    except redis_errors.RedisError as exc:
        return unknown(f"Redis error: {exc}")
    except UnicodeDecodeError:
        return unknown(f"heartbeat {HEARTBEAT_KEY} is not a number: not valid UTF-8")
    except Exception as exc:
        return unknown(f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    if agent is None:
        return evaluate(raw, now, warning, critical)
    age, why, paused = agent_freshness(agent, timeout)
    maintenance = f"; cluster {paused}" if paused else ""
    if age is not None:
        message = f"heartbeat advanced {format_age(age)} ago (agent){maintenance}"
        return judge(age, warning, critical, message)
    result = evaluate(raw, now, warning, critical)
    message = f"{result.message} by clock comparison: agent at {agent} {why}{maintenance}"
    return CheckResult(result.status, message, result.perfdata)
