"""ZooKeeper ACLs for prodstate's znodes: the agents' digest identity ALL, everyone READ.

Only an agent holding the credentials can register, stand for election, claim the root
or write the epoch; anyone may read (clients, ``status``, ``check``).
"""

from __future__ import annotations

from kazoo.security import (
    ACL,
    ANYONE_ID_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
)

from prodstate.security.credentials import Credentials

WORLD_READ = ACL(Permissions.READ, ANYONE_ID_UNSAFE)


def auth_data(credentials: Credentials) -> list[tuple[str, str]]:
    """kazoo ``auth_data`` for the agents' identity (empty without credentials)."""
    zk = credentials.zookeeper
    return [("digest", f"{zk.user}:{zk.password}")] if zk else []


def prodstate_acl(credentials: Credentials) -> list[ACL] | None:
    """The ACL of every prodstate znode; None (ZooKeeper's open default) without credentials."""
    zk = credentials.zookeeper
    if zk is None:
        return None
    acl = [make_digest_acl(zk.user, zk.password, all=True)]
    acl += [ACL(Permissions.ALL, Id("digest", digest)) for digest in credentials.acl_digests]
    return [*acl, WORLD_READ]


def creates_beyond(previous: list[ACL], wanted: list[ACL]) -> bool:
    """True if ``previous`` let anyone create children that ``wanted`` does not let: the
    folder was open (world, any authenticated user, an address range), and what is in it
    may have been planted. Another digest identity is not "anyone": that is how an
    identity rotation looks."""
    creators = {(a.id.scheme, a.id.id) for a in wanted if a.perms & Permissions.CREATE}
    return any(
        a.perms & Permissions.CREATE
        and a.id.scheme != "digest"
        and (a.id.scheme, a.id.id) not in creators
        for a in previous
    )


def same_acl(current: list[ACL], wanted: list[ACL]) -> bool:
    """True if two ACL lists grant the same (order does not matter)."""
    return {(a.perms, a.id.scheme, a.id.id) for a in current} == {
        (a.perms, a.id.scheme, a.id.id) for a in wanted
    }


def acl_text(acl: list[ACL]) -> str:
    """``digest:user:ALL,world:anyone:READ``: identities and rights, never a secret."""
    parts = []
    for entry in acl:
        who = entry.id.id.split(":")[0] if entry.id.scheme == "digest" else entry.id.id
        parts.append(f"{entry.id.scheme}:{who}:{'+'.join(entry.acl_list)}")
    return ",".join(parts)
