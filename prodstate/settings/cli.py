"""``prodstate config``: settings by namespace, checked against the namespace's schema,
every change recorded (who, when, where, why, old and new value) and reversible.

Exit status: 0 done; 1 refused or not written (the schema, ``--if-version``, no such
namespace, key or version); 2 bad input, or ZooKeeper or Redis unreachable; 3 written
but not confirmed.
"""

from __future__ import annotations

import time
from typing import Any

import click

from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.settings import documents
from prodstate.settings.changes import Write, stamp, value_change
from prodstate.settings.cli_common import (
    changing,
    if_version_option,
    outcomes,
    read_json,
    reading,
    reason_option,
    shown,
    timeout_option,
)
from prodstate.settings.history import Change, diff, value_at
from prodstate.settings.keys import (
    VALUE_DEPTH_MAX,
    VALUE_MAX,
    check_key,
)
from prodstate.settings.records import ABSENT, Namespace, Refused
from prodstate.settings.schema_cli import schema
from prodstate.settings.store import commit, namespaces, read_namespace, read_with_history
from prodstate.statedb.cli_common import echo_json, echo_table, json_option, redis_option
from prodstate.statedb.keys import check_name, fmt_time

#: How long a read waits for the namespace and its history to agree (a change landing).
READ_WAIT = 2.0


@click.group()
def config() -> None:
    """Settings kept in the dataset, by namespace, checked by the namespace's JSON Schema.

    Not the --config option of other commands (a TOML file of their own options).
    """


config.add_command(schema)


def _parse_value(text: str) -> Any:
    return documents.parse(text, "the value", VALUE_MAX, VALUE_DEPTH_MAX)


def _existing(namespace: Namespace | None, name: str) -> Namespace:
    if namespace is None:
        raise Refused(f"there is no namespace {name}")
    return namespace


def _done(write: Write, as_json: bool) -> None:
    change = write.change
    if as_json:
        echo_json(change.as_json())
        return
    what = "unset" if change.new is ABSENT else f"set to {shown(change.new)}"
    rolled = "" if change.rollback_to is None else f", as at version {change.rollback_to}"
    click.echo(f"{change.key} {what}{rolled}: version {change.revision} (was {shown(change.old)})")


@config.command(name="set")
@security_options
@zk_options
@redis_option
@click.argument("namespace")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--file", "path", help="Read the value from this file (-: standard input).")
@click.option("--string", "as_string", is_flag=True, help="VALUE is a plain string, not JSON.")
@reason_option
@if_version_option
@timeout_option
@json_option
def set_value(
    zk: str,
    cluster: str,
    redis: str,
    namespace: str,
    key: str,
    value: str | None,
    path: str | None,
    as_string: bool,
    reason: str,
    if_version: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Set KEY of NAMESPACE to VALUE (JSON: 5, true, "text", [1,2], {"a":1}).

    Refused, and nothing written, if the namespace's schema does not allow it.
    """
    with outcomes(redis):  # bad input is refused before ZooKeeper is reached
        check_name(namespace, "namespace")
        check_key(key)
        if (value is None) == (path is None):
            raise ValueError("give either VALUE or --file")
        if as_string:
            new = read_json(value, path, lambda t: t, VALUE_MAX)
            documents.check(new, "the value", VALUE_MAX, VALUE_DEPTH_MAX)
        else:
            new = read_json(value, path, _parse_value, 4 * VALUE_MAX)
        by = stamp(reason, time.time())
    with changing(zk, cluster, redis, f"setting {namespace}/{key}") as client:

        def plan(current: Namespace | None, _: list[Change]) -> Write:
            return value_change(current, namespace, key, new, by, if_version)

        _done(commit(client, namespace, plan, timeout), as_json)


@config.command()
@security_options
@zk_options
@redis_option
@click.argument("namespace")
@click.argument("key")
@reason_option
@if_version_option
@timeout_option
@json_option
def unset(
    zk: str,
    cluster: str,
    redis: str,
    namespace: str,
    key: str,
    reason: str,
    if_version: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Remove KEY from NAMESPACE (refused if the schema requires it)."""
    with outcomes(redis):
        check_name(namespace, "namespace")
        check_key(key)
        by = stamp(reason, time.time())
    with changing(zk, cluster, redis, f"unsetting {namespace}/{key}") as client:

        def plan(current: Namespace | None, _: list[Change]) -> Write:
            return value_change(current, namespace, key, ABSENT, by, if_version)

        _done(commit(client, namespace, plan, timeout), as_json)


@config.command()
@security_options
@zk_options
@redis_option
@click.argument("namespace")
@click.argument("key")
@click.option("--to", "version", required=True, type=click.IntRange(0), help="The version.")
@reason_option
@if_version_option
@timeout_option
@json_option
def rollback(
    zk: str,
    cluster: str,
    redis: str,
    namespace: str,
    key: str,
    version: int,
    reason: str,
    if_version: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Give KEY the value it had at VERSION of NAMESPACE (unset if it had none), as a new
    change checked by the current schema."""
    with outcomes(redis):
        check_name(namespace, "namespace")
        check_key(key)
        by = stamp(reason, time.time())
    with changing(zk, cluster, redis, f"rolling {namespace}/{key} back") as client:

        def plan(current: Namespace | None, changes: list[Change]) -> Write:
            found = _existing(current, namespace)
            old = value_at(found, changes, key, version)
            if old is ABSENT and key not in found.settings:
                raise Refused(f"{namespace}/{key} was not set at version {version} either")
            return value_change(found, namespace, key, old, by, if_version, version)

        write = commit(client, namespace, plan, timeout, with_history=True)
        _done(write, as_json)


@config.command()
@security_options
@redis_option
@click.argument("namespace")
@click.argument("key", required=False)
@json_option
def get(redis: str, namespace: str, key: str | None, as_json: bool) -> None:
    """Print KEY's value as JSON (exit 1 if not set), or the whole NAMESPACE as one JSON
    object; with --json, with each value's version and who set it, when and why."""
    with reading(redis) as client:
        check_name(namespace, "namespace")
        if key is not None:
            check_key(key)
        found = _existing(read_namespace(client, namespace), namespace)
        if key is not None and key not in found.settings:
            raise Refused(f"{namespace}/{key} is not set")
    if key is not None:
        setting = found.settings[key]
        if as_json:
            echo_json(
                {
                    "key": key,
                    "value": setting.value,
                    "version": setting.version,
                    **vars(setting.stamp),
                }
            )
        else:
            click.echo(shown(setting.value, None))
        return
    if as_json:
        echo_json(_namespace_json(found))
    else:
        echo_json(found.document())


def _namespace_json(found: Namespace) -> dict[str, Any]:
    return {
        "namespace": found.name,
        "version": found.revision,
        "free_form": found.schema.free_form,
        "settings": {
            key: {"value": s.value, "version": s.version, **vars(s.stamp)}
            for key, s in sorted(found.settings.items())
        },
    }


@config.command(name="list")
@security_options
@redis_option
@click.argument("namespace", required=False)
@json_option
def list_settings(redis: str, namespace: str | None, as_json: bool) -> None:
    """Every namespace (its schema, keys and version), or NAMESPACE's keys."""
    with reading(redis) as client:
        if namespace is not None:
            check_name(namespace, "namespace")
            names = [namespace]
        else:
            names = namespaces(client)
        found = [n for n in (read_namespace(client, name) for name in names) if n is not None]
        if namespace is not None:
            _existing(found[0] if found else None, namespace)
    if as_json:
        echo_json([_namespace_json(n) for n in found])
    elif namespace is None:
        rows = [
            [
                n.name,
                "free-form" if n.schema.free_form else "schema",
                str(len(n.settings)),
                str(n.revision),
                fmt_time(max([n.schema.stamp.at, *(s.stamp.at for s in n.settings.values())])),
            ]
            for n in found
        ]
        echo_table(["NAMESPACE", "CHECKED BY", "KEYS", "VERSION", "CHANGED (UTC)"], rows)
    else:
        rows = [
            [s.key, str(s.version), fmt_time(s.stamp.at), s.stamp.who, shown(s.value)]
            for _, s in sorted(found[0].settings.items())
        ]
        echo_table(["KEY", "VERSION", "CHANGED (UTC)", "BY", "VALUE"], rows)


@config.command()
@security_options
@redis_option
@click.argument("namespace")
@click.argument("key", required=False)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1), help="Changes shown."
)
@json_option
def history(redis: str, namespace: str, key: str | None, limit: int, as_json: bool) -> None:
    """NAMESPACE's changes (only KEY's with KEY), newest first: version, when, who, from
    which machine, what changed (old and new value) and why."""
    with reading(redis) as client:
        check_name(namespace, "namespace")
        if key is not None:
            check_key(key)
        found, changes = read_with_history(client, namespace, time.monotonic() + READ_WAIT)
        _existing(found, namespace)
    picked = [c for c in reversed(changes) if key is None or c.key == key][:limit]
    if as_json:
        echo_json([c.as_json() for c in picked])
        return
    rows = [
        [str(c.revision), fmt_time(c.stamp.at), c.stamp.who, c.stamp.host, _what(c), c.stamp.reason]
        for c in picked
    ]
    echo_table(["VERSION", "CHANGED (UTC)", "WHO", "HOST", "CHANGE", "REASON"], rows)


def _what(change: Change) -> str:
    if change.kind == "schema":
        return "schema: free-form" if change.new is None else "schema set"
    rolled = "" if change.rollback_to is None else f" (rollback to {change.rollback_to})"
    return f"{change.kind} {change.key}: {shown(change.old)} -> {shown(change.new)}{rolled}"


@config.command(name="diff")
@security_options
@redis_option
@click.argument("namespace")
@click.option("--from", "start", required=True, type=click.IntRange(0), help="Older version.")
@click.option("--to", "end", type=click.IntRange(0), help="Newer version [the current one].")
@json_option
def diff_command(redis: str, namespace: str, start: int, end: int | None, as_json: bool) -> None:
    """What differs in NAMESPACE between versions --from and --to: each key's value then
    and now (-: not set), and whether the schema changed."""
    with reading(redis) as client:
        check_name(namespace, "namespace")
        found, changes = read_with_history(client, namespace, time.monotonic() + READ_WAIT)
        found = _existing(found, namespace)
        end = found.revision if end is None else end
        differences, schema_changed = diff(found, changes, start, end)
    if as_json:
        echo_json(
            {
                "from": start,
                "to": end,
                "schema_changed": schema_changed,
                "keys": [
                    {
                        "key": d.key,
                        **({} if d.old is ABSENT else {"old": d.old}),
                        **({} if d.new is ABSENT else {"new": d.new}),
                    }
                    for d in differences
                ],
            }
        )
        return
    if schema_changed:
        click.echo("~ (schema)")
    for d in differences:
        mark = "+" if d.old is ABSENT else "-" if d.new is ABSENT else "~"
        click.echo(f"{mark} {d.key}: {shown(d.old, None)} -> {shown(d.new, None)}")
    if not differences and not schema_changed:
        click.echo(f"no difference between versions {start} and {end}")


__all__ = ["config"]
