"""``prodstate watch``: block until a key (or a key matching a pattern) changes in the local
Redis, then print its new value or run a command; for scripts."""

from __future__ import annotations

import time

import click
import redis as redis_errors

from prodstate.cli.exits import ERROR, NOT_APPLIED, fail
from prodstate.cli.options import option, redis_option
from prodstate.cli.security import security, security_options
from prodstate.redis.connect import connect
from prodstate.redis.users import KEYSPACE_CHANNELS
from prodstate.render import command as commands
from prodstate.render.watch import KeyFilter, show


@click.command()
@redis_option("The local Redis to watch.")
@option("--command", help="Run this (with PRODSTATE_KEY set) instead of printing.")
@option("--command-timeout", default=60.0, show_default=True, type=click.FloatRange(0.1, 3600))
@option("--forever", is_flag=True, help="Keep watching after the first change.")
@option(
    "--timeout",
    type=click.FloatRange(0.01),
    help="Exit 1 after S seconds without a change.",
)
@security_options
@click.argument("pattern")
@click.pass_context
def watch(
    ctx: click.Context,
    redis: str,
    command: str | None,
    command_timeout: float,
    forever: bool,
    timeout: float | None,
    pattern: str,
) -> None:
    """Wait until PATTERN (a key, or a Redis glob such as ``service:*``) changes.

    Prints the new value (with the key first when PATTERN is a glob; nothing for a deleted
    key), or runs --command. Exit 0 after a change, 1 at --timeout, 2 if Redis cannot be
    reached or the connection is lost. Keys under ``prodstate:`` are skipped unless
    PATTERN starts with it. Changes made while a command runs are reported once after it.
    """
    secured = security(ctx)
    user = secured.credentials.redis_user("reader")
    keys = KeyFilter(pattern)
    is_glob = any(c in pattern for c in "*?[\\")
    conn = connect(redis, 5.0, user=user, tls=secured.tls)
    pubsub = conn.pubsub()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        pubsub.psubscribe(KEYSPACE_CHANNELS)
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                fail(f"{pattern}: no change in {timeout:g}s", NOT_APPLIED)
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            message = pubsub.get_message(timeout=wait)
            if message is None or message.get("type") != "pmessage":
                continue
            changed = [keys.key_of(str(message.get("channel")))]
            while (more := pubsub.get_message(timeout=0)) is not None:  # coalesce a burst
                if more.get("type") == "pmessage":
                    changed.append(keys.key_of(str(more.get("channel"))))
            for key in dict.fromkeys(k for k in changed if k is not None):
                _report(conn, key, is_glob, command, command_timeout)
                if not forever:
                    return
                if timeout is not None:  # --timeout counts from the last change
                    deadline = time.monotonic() + timeout
    except redis_errors.RedisError as exc:
        fail(f"watching {pattern} in Redis at {redis}: {' '.join(str(exc).split())}", ERROR)
    finally:
        pubsub.close()
        conn.close()


def _report(
    conn: redis_errors.Redis, key: str, is_glob: bool, run: str | None, timeout: float
) -> None:
    if run:
        outcome = commands.run(run, timeout, {"PRODSTATE_KEY": key}, capture=False)
        if not outcome.ok:
            click.echo(f"prodstate: {key} changed; {run!r}: {outcome.describe()}", err=True)
        return
    value = show(conn, key)
    if value is None:
        click.echo(key if is_glob else "", nl=is_glob)
        return
    click.echo(f"{key} {value}" if is_glob else value)
