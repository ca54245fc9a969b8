"""The plain kazoo client that commands and tools open, and their one-off reads.

Commands report ZooKeeper failures themselves in one line, so their kazoo client logs to
a logger that goes nowhere (kazoo logs every failed connection attempt).
"""

from __future__ import annotations

import logging

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from prodstate.core.model import DataError, Lineage, Member, RootRecord, Tier
from prodstate.security.credentials import NONE, Credentials
from prodstate.security.tls import TlsFiles
from prodstate.zk.acl import auth_data, prodstate_acl
from prodstate.zk.paths import Layout

#: Errors of ZooKeeper requests (connection lost, timed out, refused).
ZK_ERRORS = (KazooException, KazooTimeoutError, OSError)

quiet_log = logging.getLogger("prodstate.zk.quiet")
quiet_log.addHandler(logging.NullHandler())
quiet_log.propagate = False


def quiet_client(
    hosts: str,
    timeout: float = 10.0,
    credentials: Credentials = NONE,
    tls: TlsFiles | None = None,
    reconnect_max_delay: float | None = None,
) -> KazooClient:
    """A kazoo client (not started) whose own logging is silenced; ValueError for bad
    ``hosts``. With a ``[zookeeper]`` identity in ``credentials`` it authenticates as the
    agents do and creates every znode with their ACL (:func:`prodstate.zk.acl.prodstate_acl`);
    with ``tls``, over TLS. ``reconnect_max_delay``: the longest wait between attempts to
    connect (kazoo's default backs off to an hour)."""
    retry = None
    if reconnect_max_delay is not None:
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": reconnect_max_delay}
    return KazooClient(
        hosts=hosts,
        timeout=timeout,
        logger=quiet_log,
        auth_data=auth_data(credentials) or None,
        default_acl=prodstate_acl(credentials),
        connection_retry=retry,
        **(tls.kazoo_kwargs() if tls else {}),
    )


def read_root(zk: KazooClient, cluster: str) -> RootRecord | None:
    """The current root record, or None (DataError if the root znode does not parse)."""
    try:
        raw, stat = zk.get(Layout(cluster).root)
    except NoNodeError:
        return None
    return RootRecord.from_json(raw, stat.ephemeralOwner)


def read_epoch(zk: KazooClient, cluster: str) -> int:
    """The epoch in the epoch znode; DataError if it does not parse, NoNodeError if gone."""
    raw, _ = zk.get(Layout(cluster).epoch)
    return Lineage.from_json(raw).epoch


def read_members(zk: KazooClient, cluster: str, tier: Tier | str) -> dict[str, Member]:
    """The well-formed members registered in one tier, by node id."""
    layout = Layout(cluster)
    members = {}
    try:
        children = zk.get_children(layout.members(tier))
    except NoNodeError:
        return {}
    for child in children:
        try:
            members[child] = Member.from_znode(child, tier, zk.get(layout.member(tier, child))[0])
        except (NoNodeError, DataError):
            continue
    return members
