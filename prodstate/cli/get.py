"""``prodstate get KEY``: GET from the local Redis, optionally refusing a stale copy.

Scripts call it on every machine, so it parses with :mod:`prodstate.cli.argv` and reads
with :mod:`prodstate.redis.resp` (neither click nor redis-py). Exit status as the other
data commands (:mod:`prodstate.cli.exits`): 0 the value printed; 1 no such key, or Redis
refused the read (e.g. ``WRONGTYPE``); 2 usage error, Redis unreachable, or the copy older
than ``--max-staleness``. Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

from prodstate.cli.argv import (
    Parser,
    UsageError,
    add_security_options,
    address,
    env,
    reader_and_tls,
)
from prodstate.core import heartbeat
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.redis.resp import Connection, ProtocolError, ReplyError

#: Socket timeout (connect and each reply) in seconds, as the client's local reads.
TIMEOUT = 2.0
# The exit codes of prodstate.cli.exits, which imports click.
NOT_APPLIED, ERROR = 1, 2


class Failure(Exception):
    """The read failed: one line for stderr and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number >= 0")
    return value


def parser() -> argparse.ArgumentParser:
    """The option parser; defaults come from ``PRODSTATE_<OPTION>`` variables."""
    p = Parser(prog="prodstate get", description="GET KEY from the local Redis.")
    add = p.add_argument
    add("key", metavar="KEY")
    add("--redis", metavar="HOST:PORT", type=address, default=env("--redis") or "localhost:6379",
        help="the local Redis to read from (default: %(default)s)")  # fmt: skip
    add("--max-staleness", metavar="S", type=_seconds, default=env("--max-staleness"),
        help="refuse data older than S seconds")  # fmt: skip
    add_security_options(p)
    return p


def read(options: argparse.Namespace, clock: Any = time.time) -> bytes:
    """The value of ``options.key`` at ``options.redis``; Failure otherwise."""
    user, tls = reader_and_tls(options)
    where = options.redis
    try:
        with Connection(where, TIMEOUT, user=user, tls=tls) as conn:
            if options.max_staleness is None:
                value = conn.call("GET", options.key)
            else:
                conn.send(("GET", HEARTBEAT_KEY), ("GET", options.key))
                beat, value = conn.reply(), conn.reply()
                _fresh_enough(beat, clock(), options.max_staleness, where)
    except ReplyError as exc:
        if exc.code in ("NOAUTH", "WRONGPASS", "LOADING"):
            raise Failure(f"cannot read from Redis at {where}: {exc}", ERROR) from None
        raise Failure(f"{where} refused the read: {exc}", NOT_APPLIED) from None
    except (OSError, ProtocolError) as exc:
        raise Failure(f"cannot read from Redis at {where}: {exc}", ERROR) from None
    if value is None:
        raise Failure(f"{options.key}: no such key", NOT_APPLIED)
    if not isinstance(value, bytes):
        raise Failure(f"{where} answered GET with {value!r}", ERROR)
    return value


def _fresh_enough(beat: Any, now: float, limit: float, where: str) -> None:
    age = heartbeat.age(beat if isinstance(beat, bytes) else None, now)
    if age is None or age > limit:
        shown = "no heartbeat" if age is None else f"{age:.1f}s old"
        raise Failure(f"{where}: local copy is {shown} (limit {limit:g}s)", ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prodstate get`` on ``argv`` (default: the command line after ``get``): print
    the value and return the exit code."""
    try:
        options = parser().parse_with_config(list(sys.argv[1:] if argv is None else argv), "get")
        value = read(options)
    except UsageError as exc:
        print(f"prodstate: get: {exc} (prodstate get -h for help)", file=sys.stderr)
        return ERROR
    except Failure as exc:
        print(f"prodstate: {exc}", file=sys.stderr)
        return exc.code
    sys.stdout.buffer.write(value + b"\n")
    sys.stdout.flush()
    return 0
