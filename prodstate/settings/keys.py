"""The ``settings:`` keys, the bounds of what they hold, and checks of names."""

from __future__ import annotations

from prodstate.statedb.keys import check_name

PREFIX = "settings:"
#: set: the namespaces that exist.
NAMESPACES = "settings:namespaces"
#: Fields of a namespace's hash: its revision, schema record, and per key its record and
#: version (the version alone, for the compare-and-set of ``--if-version``).
REVISION = "revision"
SCHEMA = "schema"
VALUE = "value:"
VERSION = "version:"

#: Longest value, as compact JSON (UTF-8 bytes), and deepest nesting of arrays and objects.
VALUE_MAX = 4_096
VALUE_DEPTH_MAX = 16
#: Longest schema (compact JSON, UTF-8 bytes) and deepest nesting.
SCHEMA_MAX = 8_192
SCHEMA_DEPTH_MAX = 32
#: Most keys in one namespace.
KEYS_MAX = 256
#: Changes kept in a namespace's history (exactly: the oldest go first).
HISTORY_MAX = 200
#: Longest reason of a change, and "who" (``user@host``).
REASON_MAX = 500
WHO_MAX = 128


def namespace_key(namespace: str) -> str:
    """hash: the namespace's revision, schema record and settings."""
    return f"{PREFIX}ns:{check_name(namespace, 'namespace')}"


def history_key(namespace: str) -> str:
    """stream: the namespace's changes, the last HISTORY_MAX of them."""
    return f"{PREFIX}history:{check_name(namespace, 'namespace')}"


def check_key(key: str) -> str:
    """``key`` if it is a valid setting name; ValueError saying why not."""
    return check_name(key, "setting")
