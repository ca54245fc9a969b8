"""Redis users the agent keeps on its Redis, and the settings that authenticate replication.

The operator's redis.conf (or aclfile) creates the agent's own ``admin`` user and turns
the default user off; the agent creates the others with ``ACL SETUSER`` from its credentials,
the same on every machine (any branch may become root, any node a parent):

* ``replication``: what a replica needs of its parent (``masteruser``/``masterauth``);
* ``branch_replication`` (optional, held by branch machines only): the same rights, used
  by branches. With it, a serving root with other branches turns the ``replication`` user
  off on its Redis and drops the replicas connected as it: a replica at the root is then
  one that holds a branch's secret, so a machine holding only ``replication`` (any leaf)
  cannot pose as a branch and acknowledge writes it does not keep;
* ``writer``: prodstate.Client's writes at the root: data commands run inside the fenced
  scripts, which it may call by digest only (it cannot load, flush or run any other
  script or function), ``WAIT`` and ``ROLE``; no administration;
* ``reader``: local readers, ``prodstate check``, ``render`` and ``watch`` (reads,
  ``INFO`` and subscribing to the keyspace notifications).
"""

from __future__ import annotations

from prodstate.security.credentials import Credentials, Secret

#: The keyspace notifications of database 0, as one pattern (Redis checks a subscribed
#: pattern against the allowed ones literally: the reader subscribes to exactly this).
KEYSPACE_CHANNELS = "__keyspace@0__:*"

#: Permissions of each role the agent creates (after ``reset on`` and its passwords).
RULES = {
    "replication": ("+psync", "+replconf", "+ping"),
    "branch_replication": ("+psync", "+replconf", "+ping"),
    "writer": (
        "~*",
        "&*",
        "+@all",
        "-@admin",
        "-@dangerous",
        "-@scripting",
        "+evalsha",
        "+role",
        "+wait",
    ),
    "reader": (
        "~*",
        "+@read",
        "+@connection",
        "-@dangerous",
        "+info",
        # prodstate render and watch: keyspace notifications, subscribed to by pattern.
        "+psubscribe",
        "+punsubscribe",
        f"&{KEYSPACE_CHANNELS}",
    ),
}


def setuser_args(role: str, secret: Secret, on: bool = True) -> list[str]:
    """``ACL SETUSER`` arguments that make ``secret``'s user exactly what ``role`` needs:
    ``reset`` first, so rules and passwords removed from the credentials go too (``on``
    False: the user exists but cannot authenticate)."""
    passwords = [f">{p}" for p in (secret.password, *secret.other_passwords)]
    return [secret.user, "reset", "on" if on else "off", *passwords, *RULES[role]]


def leaf_replication_user(credentials: Credentials) -> Secret | None:
    """The ``replication`` user a serving root turns off, if branches have their own
    identity (None: there is one replication identity for all, and nothing to turn off)."""
    if credentials.redis_user("branch_replication") is None:
        return None
    return credentials.redis_user("replication")


def managed_users(credentials: Credentials) -> dict[str, Secret]:
    """The users this agent creates, by role."""
    return {role: s for role, s in credentials.redis.items() if role in RULES}


def replication_settings(credentials: Credentials, branch: bool = False) -> dict[str, str]:
    """``masteruser``/``masterauth`` for the replication identity (empty without one): a
    branch's own identity if it has one. Secret: applied, never logged."""
    secret = credentials.redis_user("branch_replication") if branch else None
    secret = secret or credentials.redis_user("replication")
    if secret is None:
        return {}
    return {"masteruser": secret.user, "masterauth": secret.password}
