"""What the ``prodstate config`` commands share: failures mapped to exit codes, the
connections, reading JSON from the command line or a file, and showing values."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis

from prodstate.cli import exits
from prodstate.client import (
    Client,
    ProdstateError,
    WriteFailed,
    WriteRejected,
    WriteUncertain,
)
from prodstate.settings.records import ABSENT, Refused, UnknownNamespace
from prodstate.statedb.cli_common import reader, writer, zookeeper
from prodstate.statedb.keys import clip

#: Widest value shown in a table (``--json`` shows them whole).
SHOWN_MAX = 60


@contextmanager
def outcomes(address: str) -> Iterator[None]:
    """Turn what a settings command may raise into one line and its exit status: bad input
    2, refused or not applied 1, maybe applied 3; ``address`` is the local Redis."""
    try:
        yield
    except (Refused, UnknownNamespace) as exc:
        exits.fail(exits.describe(exc), exits.NOT_APPLIED)
    except ValueError as exc:
        exits.fail(exits.describe(exc), exits.ERROR)
    except WriteRejected as exc:
        exits.fail(f"rejected, not written: {exits.describe(exc)}", exits.NOT_APPLIED)
    except WriteUncertain as exc:
        exits.fail(f"NOT CONFIRMED, may have been written: {exits.describe(exc)}", exits.UNCERTAIN)
    except WriteFailed as exc:
        exits.fail(f"not written: {exits.describe(exc)}", exits.NOT_APPLIED)
    except redis.RedisError as exc:
        exits.fail(f"cannot read from Redis at {address}: {exits.describe(exc)}", exits.ERROR)
    except ProdstateError as exc:
        exits.fail(exits.describe(exc), exits.ERROR)


@contextmanager
def changing(zk: str, cluster: str, local: str, doing: str) -> Iterator[Client]:
    """A client that reads the local Redis ``local`` and writes through the root, with the
    failures of :func:`outcomes`."""
    with (
        zookeeper(zk, doing) as session,
        writer(session, cluster, local) as client,
        outcomes(local),
    ):
        yield client


@contextmanager
def reading(local: str) -> Iterator[Client]:
    """A read-only client of the local Redis, with the failures of :func:`outcomes`."""
    with reader(local) as client, outcomes(local):
        yield client


def read_json(text: str | None, path: str | None, parse: Callable[[str], Any], limit: int) -> Any:
    """``parse`` of ``text``, or of the file at ``path`` (``-``: standard input) if at most
    ``limit`` bytes; ValueError naming the file otherwise."""
    if path is None:
        return parse(text or "")
    try:
        with click.open_file(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is more than {limit} bytes long")
    try:
        return parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None


def shown(value: Any, limit: int | None = SHOWN_MAX) -> str:
    """A value as compact JSON (``-`` when not set), cut to ``limit`` characters."""
    if value is ABSENT:
        return "-"
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if limit is None else clip(text, limit)


def reason_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--reason: why the change is made (recorded in the history)."""
    return click.option(
        "--reason", required=True, help="Why: recorded with the change (one line)."
    )(command)


def timeout_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--timeout: how long a change may take, failover included."""
    return click.option(
        "--timeout",
        default=10.0,
        show_default=True,
        type=click.FloatRange(0.1, 3600),
        help="Give up after this many seconds (failover included).",
    )(command)


def if_version_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--if-version: the compare-and-set."""
    return click.option(
        "--if-version",
        type=click.IntRange(0),
        help="Only if KEY is still at this version (0: not set); checked by the root.",
    )(command)
