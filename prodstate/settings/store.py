"""Settings read from the local copy and changed through the root.

A change is planned on the namespace as read locally, then written as one fenced batch
that the root applies only if the namespace is still at the revision read (and, with
``--if-version``, the key still at that version). If the namespace moved on (another
writer, or a local copy a few milliseconds behind), the plan is made again on a newer
read, so the old value recorded and the schema check always see what the write replaces.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from prodstate.client import Client, WriteConflict, WriteFailed
from prodstate.settings.changes import VersionConflict, Write
from prodstate.settings.history import Change, matches, parse_entries
from prodstate.settings.keys import NAMESPACES, REVISION, history_key, namespace_key
from prodstate.settings.records import Namespace, Refused

#: A plan: the write that makes a change, from the namespace and (when asked) its history.
Plan = Callable[[Namespace | None, list[Change]], Write]


def namespaces(client: Client) -> list[str]:
    """The names of every namespace, sorted."""
    return sorted(client.read("SMEMBERS", NAMESPACES))


def read_namespace(client: Client, name: str) -> Namespace | None:
    """Namespace ``name`` from the local copy (None: it does not exist); ValueError if a
    record is malformed."""
    return Namespace.parse(name, client.read("HGETALL", namespace_key(name)))


def read_history(client: Client, name: str) -> list[Change]:
    """Namespace ``name``'s history, oldest first; ValueError if an entry is malformed."""
    return parse_entries(client.read("XRANGE", history_key(name), "-", "+"))


def read_last_change(client: Client, name: str) -> Change | None:
    """Namespace ``name``'s latest change (None: no history kept); ValueError if malformed."""
    found = parse_entries(client.read("XREVRANGE", history_key(name), "+", "-", "COUNT", 1))
    return found[0] if found else None


def read_with_history(
    client: Client, name: str, deadline: float
) -> tuple[Namespace | None, list[Change]]:
    """The namespace and its history as of one revision (read again while a change lands
    between the two reads); Refused if they still disagree at ``deadline``."""
    while True:
        namespace = read_namespace(client, name)
        changes = read_history(client, name)
        if namespace is None or matches(namespace, changes):
            return namespace, changes
        if not _await_revision(client, name, namespace.revision, deadline):
            last = changes[-1].revision if changes else "none"
            raise Refused(
                f"the history of {name} (last version {last}) does not match its settings "
                f"(version {namespace.revision})"
            )


def commit(
    client: Client, name: str, plan: Plan, timeout: float, with_history: bool = False
) -> Write:
    """Plan a change on the latest local read and write it, until the root takes it or
    ``timeout`` seconds pass. VersionConflict if ``--if-version`` does not hold at the root;
    Refused or ValueError from the plan; WriteFailed, WriteUncertain from the write."""
    deadline = time.monotonic() + timeout
    while True:
        if with_history:
            namespace, changes = read_with_history(client, name, deadline)
        else:
            namespace, changes = read_namespace(client, name), []
        try:
            write = plan(namespace, changes)
        except Refused:
            # Judged on the local copy: final only if the root holds the same revision.
            if _current_at_root(client, name, namespace, deadline):
                raise
            if not _await_revision(client, name, _revision(namespace), deadline):
                raise WriteFailed(_BEHIND.format(name=name)) from None
            continue
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            client.write_batch(write.commands, timeout=remaining, expect=write.expect)
        except WriteConflict as exc:
            if exc.condition == write.if_version:
                change = write.change
                held = _held(str(exc))
                raise VersionConflict(
                    f"{name}/{change.key} is at version {held} at the root, not the one "
                    f"--if-version names: someone changed it (see prodstate config "
                    f"history {name} {change.key})"
                ) from None
            if not _await_revision(client, name, _revision(namespace), deadline):
                raise WriteFailed(_BEHIND.format(name=name)) from None
            continue
        return write


_BEHIND = (
    "not applied: {name} changed at the root, and the local copy did not show the change "
    "before the deadline"
)


def _revision(namespace: Namespace | None) -> int:
    return -1 if namespace is None else namespace.revision


def _current_at_root(
    client: Client, name: str, namespace: Namespace | None, deadline: float
) -> bool:
    """True if the root holds namespace ``name`` at the revision read (``namespace``),
    checked by a fenced batch that writes nothing."""
    key = namespace_key(name)
    revision = None if namespace is None else str(namespace.revision)
    remaining = max(deadline - time.monotonic(), 0.1)
    try:
        client.write_batch(
            [("HGET", key, REVISION)], timeout=remaining, expect=[(key, REVISION, revision)]
        )
    except WriteConflict:
        return False
    return True


def _await_revision(client: Client, name: str, seen: int, deadline: float) -> bool:
    """Wait until the local copy shows namespace ``name`` at another revision than ``seen``
    (-1: not existing); False at ``deadline``."""
    pause = 0.005
    while True:
        raw = client.read("HGET", namespace_key(name), REVISION)
        if (raw if raw is None else str(raw)) != (None if seen == -1 else str(seen)):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.1)


def _held(conflict: str) -> str:
    """The value a CONFLICT error says the root holds (``0`` for absent: not set)."""
    found = re.search(r" is (.*), expected ", conflict)
    held = found.group(1) if found else "?"
    return "0 (not set)" if held == "(absent)" else held
