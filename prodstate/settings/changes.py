"""A change of settings as one fenced write: the commands that update the namespace's
hash and append to its history together, and the conditions the root checks first (the
namespace unchanged since it was read; with ``--if-version``, the key still at that
version). The values are checked against the bounds and the schema before any write."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Any

from prodstate.settings import documents
from prodstate.settings.history import Change
from prodstate.settings.keys import (
    HISTORY_MAX,
    KEYS_MAX,
    NAMESPACES,
    REASON_MAX,
    REVISION,
    SCHEMA,
    SCHEMA_DEPTH_MAX,
    SCHEMA_MAX,
    VALUE,
    VALUE_DEPTH_MAX,
    VALUE_MAX,
    VERSION,
    WHO_MAX,
    check_key,
    history_key,
    namespace_key,
)
from prodstate.settings.records import ABSENT, Namespace, Refused, Stamp
from prodstate.settings.schema import check_schema, violation
from prodstate.statedb.keys import check_name, check_text, dumps


class VersionConflict(Refused):
    """``--if-version`` did not hold at the root: the key changed meanwhile."""


Condition = tuple[str, str, str | None]


@dataclass(frozen=True)
class Write:
    """A change's fenced write: ``commands`` applied only if every one of ``expect``
    holds; ``if_version`` is the index in ``expect`` of the ``--if-version`` condition."""

    change: Change
    commands: list[tuple[Any, ...]]
    expect: list[Condition]
    if_version: int | None = None


def this_host() -> str:
    """This machine's short name."""
    return socket.gethostname().split(".")[0]


def stamp(reason: str, at: float, who: str | None = None, host: str | None = None) -> Stamp:
    """Who (``user@host`` by default), where, when and why, checked; ValueError if the
    reason is empty, more than one line or too long."""
    host = host or this_host()
    if who is None:
        try:
            who = f"{getpass.getuser()}@{host}"
        except (KeyError, OSError):
            who = f"unknown@{host}"
    check_text(reason, "the reason (--reason)", REASON_MAX)
    return Stamp(check_text(who, "who", WHO_MAX), check_text(host, "the host", WHO_MAX), at, reason)


def value_change(
    namespace: Namespace | None,
    name: str,
    key: str,
    new: Any,
    by: Stamp,
    if_version: int | None = None,
    rollback_to: int | None = None,
) -> Write:
    """Set ``key`` of namespace ``name`` (as read: ``namespace``) to ``new``, or unset it
    (``new`` ABSENT). ValueError for bad input; Refused by the rules."""
    check_key(key)
    if new is not ABSENT:
        documents.check(new, "the value", VALUE_MAX, VALUE_DEPTH_MAX)
    if if_version is not None and if_version < 0:
        raise ValueError("--if-version must be 0 (not set) or a version")
    if namespace is None:
        raise Refused(
            f"there is no namespace {name}: give it a schema first "
            "(prodstate config schema set, or --free-form)"
        )
    current = namespace.settings.get(key)
    if new is ABSENT and current is None:
        raise Refused(f"{name}/{key} is not set")
    if current is None and new is not ABSENT and len(namespace.settings) >= KEYS_MAX:
        raise Refused(f"{name} holds {KEYS_MAX} keys: at most {KEYS_MAX}")
    document = namespace.document()
    if new is ABSENT:
        document.pop(key, None)
    else:
        document[key] = new
    if not namespace.schema.free_form:
        why = violation(namespace.schema.schema, document)
        if why is not None:
            raise Refused(f"refused by the schema of {name}, nothing written: {why}")
    revision = namespace.revision + 1
    old = ABSENT if current is None else current.value
    kind = "unset" if new is ABSENT else "set"
    change = Change(revision, kind, key, old, new, by, rollback_to)
    hash_key = namespace_key(name)
    if new is ABSENT:
        commands = [
            ("HSET", hash_key, REVISION, revision),
            ("HDEL", hash_key, VALUE + key, VERSION + key),
        ]
    else:
        record = dumps({"value": new, "version": revision, **vars(by)})
        commands = [
            ("HSET", hash_key, REVISION, revision, VALUE + key, record, VERSION + key, revision)
        ]
    commands.append(_history(name, change))
    expect: list[Condition] = []
    index = None
    if if_version is not None:
        index = 0
        expect.append((hash_key, VERSION + key, str(if_version) if if_version else None))
    expect.append((hash_key, REVISION, str(namespace.revision)))
    return Write(change, commands, expect, index)


def schema_change(namespace: Namespace | None, name: str, schema: Any, by: Stamp) -> Write:
    """Give namespace ``name`` (as read: ``namespace``; None: it does not exist yet) the
    JSON Schema ``schema``, or make it free-form (``schema`` None). ValueError for a schema
    that is not valid JSON Schema or too large; Refused if the current settings break it."""
    check_name(name, "namespace")
    if schema is not None:
        documents.check(schema, "the schema", SCHEMA_MAX, SCHEMA_DEPTH_MAX)
        check_schema(schema)
        if namespace is not None:
            why = violation(schema, namespace.document())
            if why is not None:
                raise Refused(
                    f"the settings of {name} break the new schema, nothing written: {why}"
                )
    revision = (namespace.revision if namespace else 0) + 1
    old = ABSENT if namespace is None else namespace.schema.schema
    change = Change(revision, "schema", "", old, schema, by)
    hash_key = namespace_key(name)
    record = dumps({"schema": schema, "version": revision, **vars(by)})
    commands: list[tuple[Any, ...]] = [("HSET", hash_key, REVISION, revision, SCHEMA, record)]
    if namespace is None:
        commands.append(("SADD", NAMESPACES, name))
    commands.append(_history(name, change))
    current = None if namespace is None else str(namespace.revision)
    return Write(change, commands, [(hash_key, REVISION, current)])


def _history(name: str, change: Change) -> tuple[Any, ...]:
    """XADD of ``change`` to the namespace's history, trimmed to exactly HISTORY_MAX."""
    words: list[Any] = ["XADD", history_key(name), "MAXLEN", HISTORY_MAX, "*"]
    for field, value in change.fields().items():
        words += [field, value]
    return tuple(words)
