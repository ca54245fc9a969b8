"""``prodstate config schema set|get``: what a namespace's settings may hold."""

from __future__ import annotations

import time
from typing import Any

import click

from prodstate.cli.options import zk_options
from prodstate.cli.security import security_options
from prodstate.settings import documents
from prodstate.settings.changes import Write, schema_change, stamp
from prodstate.settings.cli_common import (
    changing,
    outcomes,
    read_json,
    reading,
    reason_option,
    timeout_option,
)
from prodstate.settings.history import Change
from prodstate.settings.keys import SCHEMA_DEPTH_MAX, SCHEMA_MAX
from prodstate.settings.records import Namespace, Refused
from prodstate.settings.store import commit, read_namespace
from prodstate.statedb.cli_common import echo_json, json_option, redis_option
from prodstate.statedb.keys import check_name, fmt_time


@click.group()
def schema() -> None:
    """The JSON Schema of a namespace: the settings as one object, key to value."""


def _parse_schema(text: str) -> Any:
    return documents.parse(text, "the schema", SCHEMA_MAX, SCHEMA_DEPTH_MAX)


@schema.command(name="set")
@security_options
@zk_options
@redis_option
@click.argument("namespace")
@click.argument("path", metavar="FILE", required=False)
@click.option("--free-form", is_flag=True, help="No schema: any JSON value within the bounds.")
@reason_option
@timeout_option
def set_schema(
    zk: str,
    cluster: str,
    redis: str,
    namespace: str,
    path: str | None,
    free_form: bool,
    reason: str,
    timeout: float,
) -> None:
    """Check NAMESPACE's settings with the JSON Schema in FILE (-: standard input), or
    declare it --free-form; creates the namespace. Refused if the current settings break
    the schema."""
    with outcomes(redis):
        check_name(namespace, "namespace")
        if free_form == (path is not None):
            raise ValueError("give either FILE or --free-form")
        new = None if path is None else read_json(None, path, _parse_schema, 4 * SCHEMA_MAX)
        if path is not None and new is None:
            raise ValueError(f"{path} holds null, not a schema (for none, --free-form)")
        by = stamp(reason, time.time())
        if new is not None:  # refused before ZooKeeper is reached if not valid
            schema_change(None, namespace, new, by)
    with changing(zk, cluster, redis, f"setting the schema of {namespace}") as client:

        def plan(current: Namespace | None, _: list[Change]) -> Write:
            return schema_change(current, namespace, new, by)

        write = commit(client, namespace, plan, timeout)
    what = "free-form" if new is None else "checked by the schema"
    click.echo(f"{namespace} is {what}: version {write.change.revision}")


@schema.command(name="get")
@security_options
@redis_option
@click.argument("namespace")
@json_option
def get_schema(redis: str, namespace: str, as_json: bool) -> None:
    """Print NAMESPACE's schema (``null``: free-form); with --json, who set it, when, why."""
    with reading(redis) as client:
        check_name(namespace, "namespace")
        found = read_namespace(client, namespace)
        if found is None:
            raise Refused(f"there is no namespace {namespace}")
    record = found.schema
    if as_json:
        echo_json({"schema": record.schema, "version": record.version, **vars(record.stamp)})
        return
    echo_json(record.schema)
    note = "free-form" if record.free_form else "schema"
    click.echo(
        f"# {note} set at version {record.version}, {fmt_time(record.stamp.at)} UTC, "
        f"by {record.stamp.who}: {record.stamp.reason}",
        err=True,
    )
