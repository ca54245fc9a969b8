"""``prodstate check``: the Nagios/Icinga plugin (judged by :mod:`prodstate.ops.check`).

It follows the Monitoring Plugins guidelines: ``-w``/``-c`` take threshold ranges, ``-t``
bounds the whole run, ``-V`` prints the version, and every outcome, usage errors included,
is one status line on stdout and the Nagios exit code (a usage error is UNKNOWN, 3).

It runs every minute on every machine, so it parses its options with
:mod:`prodstate.cli.argv` (argparse) and reads Redis with :mod:`prodstate.redis.resp`;
``check`` wraps it as a click command for the ``prodstate`` group and its ``--help``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from prodstate import __version__
from prodstate.cli.argv import (
    Parser,
    UsageError,
    add_security_options,
    address,
    env,
    reader_and_tls,
)
from prodstate.core.nagios_range import Range, RangeError, parse_range
from prodstate.ops.check import (
    DEFAULT_CRITICAL,
    DEFAULT_WARNING,
    TIMEOUT,
    CheckResult,
    Status,
    read_heartbeat,
    unknown,
)

PROG = "prodstate check"
#: The longest ``-t`` accepted, in seconds.
MAX_TIMEOUT = 3600.0


def _range(text: str) -> Range:
    try:
        return parse_range(text)
    except RangeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: must be above 0 and at most {MAX_TIMEOUT:g}")
    return value


def parser() -> argparse.ArgumentParser:
    """The option parser; defaults come from ``PRODSTATE_<OPTION>`` variables."""
    p = Parser(
        prog=PROG,
        description="Nagios/Icinga plugin: how long ago did the root's heartbeat reach the "
        "local Redis? Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Redis unreachable "
        "or too slow, heartbeat missing or unreadable, usage error).",
        epilog="RANGE as in the Monitoring Plugins guidelines: 10 (alert above 10 or below "
        "0), 10: (below 10), ~:10 (above 10), 10:20 (outside 10..20), @10:20 (inside "
        f"10..20). With neither -w nor -c: -w {DEFAULT_WARNING} -c {DEFAULT_CRITICAL}. Each "
        "option is also read from PRODSTATE_<OPTION> (e.g. PRODSTATE_WARNING).",
    )
    add = p.add_argument
    add("-V", "--version", action="version", version=f"{PROG} {__version__}")
    add("--redis", metavar="HOST:PORT", type=address, default=env("--redis") or "localhost:6379",
        help="this machine's Redis (default: %(default)s)")  # fmt: skip
    add("-w", "--warning", metavar="RANGE", type=_range, default=env("--warning"),
        help="WARNING when the heartbeat's age in seconds is outside RANGE")  # fmt: skip
    add("-c", "--critical", metavar="RANGE", type=_range, default=env("--critical"),
        help="CRITICAL when the heartbeat's age in seconds is outside RANGE")  # fmt: skip
    add("-t", "--timeout", metavar="SECONDS", type=_seconds, default=env("--timeout") or TIMEOUT,
        help="UNKNOWN when the check has not ended by then (default: %(default)g)")  # fmt: skip
    add("--agent", metavar="HOST:PORT", type=address, default=env("--agent"),
        help="the local agent's metrics address: report its own measure of the heartbeat's "
        "age (free of clock skew) instead of comparing clocks")  # fmt: skip
    add_security_options(p)
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The options of ``argv``; UsageError if they are not valid."""
    options = parser().parse_with_config(list(argv), "check")
    if options.warning is None and options.critical is None:
        options.warning, options.critical = DEFAULT_WARNING, DEFAULT_CRITICAL
    return options


def _give_up_after(seconds: float) -> None:
    """End the process with UNKNOWN (exit 3) once ``seconds`` have passed, whatever it is
    waiting for (a Redis that accepts but never answers, a slow TLS handshake): the status
    line is written straight to stdout and the process leaves at once."""

    def expire(signum: int, frame: object) -> None:
        line = unknown(f"no result within {seconds:g}s (-t)").line() + "\n"
        os.write(sys.stdout.fileno(), line.encode())
        os._exit(Status.UNKNOWN.exit_code)

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run(argv: Sequence[str]) -> tuple[CheckResult, str | None]:
    """Parse ``argv`` and check; the result and the Redis address it is about (None for a
    usage error, which is UNKNOWN)."""
    try:
        options = parse(argv)
        user, tls = reader_and_tls(options)
    except UsageError as exc:
        return unknown(f"usage error: {exc}"), None
    _give_up_after(options.timeout)
    try:
        result = read_heartbeat(
            options.redis,
            options.warning,
            options.critical,
            timeout=options.timeout,
            user=user,
            tls=tls,
            agent=options.agent,
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result, options.redis


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check on ``argv`` (default: the command line after ``check``); print the
    status line and return the exit code."""
    result, redis = run(sys.argv[1:] if argv is None else argv)
    print(result.line(redis), flush=True)
    return result.status.exit_code
