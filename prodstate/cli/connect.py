"""What every command that talks to ZooKeeper shares: the command's identity and TLS files
(loaded once), and a started kazoo client that fails in one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from prodstate.cli.exits import ERROR, NOT_APPLIED, describe, fail
from prodstate.cli.security import Security, security
from prodstate.zk.client import ZK_ERRORS, quiet_client

_SECURITY = "prodstate.cli.security"


def secured() -> Security:
    """The ``--credentials-file`` and ``--tls-*`` files of the running command, loaded once
    (a usage error, exit 2, if they are unusable; see :mod:`prodstate.cli.security`)."""
    ctx = click.get_current_context()
    if _SECURITY not in ctx.meta:
        ctx.meta[_SECURITY] = security(ctx)
    found: Security = ctx.meta[_SECURITY]
    return found


@contextmanager
def zookeeper(hosts: str, doing: str, timeout: float = 5.0) -> Iterator[KazooClient]:
    """A started kazoo client, authenticated with the command's ``[zookeeper]`` identity if
    it has one (its znodes then get prodstate's ACL); exit 2 with a message naming ``doing``
    (e.g. ``"taking lock web"``) when ZooKeeper cannot be reached or fails, 1 when it
    refuses for lack of rights."""
    found = secured()
    credentials = found.credentials
    try:
        zk = quiet_client(hosts, timeout, credentials, found.zk_tls)
    except ValueError as exc:
        fail(f"bad --zk {hosts!r}: {describe(exc)}", ERROR)
    try:
        zk.start(timeout=timeout)
    except ZK_ERRORS:
        zk.close()
        fail(f"{doing}: cannot connect to ZooKeeper at {hosts}", ERROR)
    try:
        yield zk
    except NoAuthError:
        if credentials.zookeeper is None:
            why = "prodstate's znodes need the agents' identity ([zookeeper] of --credentials-file)"
        else:
            why = f"the identity {credentials.zookeeper.user!r} has no rights on prodstate's znodes"
        fail(f"{doing}: ZooKeeper at {hosts} refused it (NoAuthError): {why}", NOT_APPLIED)
    except ZK_ERRORS as exc:
        fail(f"{doing}: ZooKeeper at {hosts} failed: {describe(exc)}", ERROR)
    finally:
        zk.stop()
        zk.close()
