"""The maintenance znodes: the agents' cached read, and the commands' writes (``prodstate
pause`` and ``resume``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from prodstate.core.maintenance import Pause
from prodstate.core.model import DataError
from prodstate.zk.cache import DataZnode
from prodstate.zk.errors import StoreUnavailable
from prodstate.zk.paths import Layout

log = logging.getLogger(__name__)


def load_pause(
    call: Callable[..., Any], client: KazooClient, path: str, watch: Callable[..., None]
) -> DataZnode | None:
    """Read the pause znode through the store's bounded ``call``, leaving a watch that fires
    when it is set, changed or removed; None if there is none."""
    try:
        raw, stat = call(client.get_async, path, watch)
    except NoNodeError:
        if call(client.exists_async, path, watch) is None:
            return None
        raise StoreUnavailable("the pause znode came and went: reading again") from None
    return DataZnode(raw, stat.ephemeralOwner, stat.version)


def parse_pause(znode: DataZnode | None) -> Pause | None:
    """The pause a znode holds; None if there is none, or it is malformed (logged)."""
    if znode is None:
        return None
    try:
        return Pause.from_json(znode.raw)
    except DataError as exc:
        log.warning("ignoring a malformed pause znode", extra={"error": str(exc)})
        return None


def read_pause(zk: KazooClient, cluster: str) -> Pause | None:
    """The cluster's pause, if one is set (DataError if it is malformed)."""
    try:
        raw, _ = zk.get(Layout(cluster).pause)
    except NoNodeError:
        return None
    return Pause.from_json(raw)


def set_pause(zk: KazooClient, cluster: str, pause: Pause) -> None:
    """Set (or replace) the cluster's pause; NoNodeError if the cluster does not exist."""
    layout = Layout(cluster)
    if zk.exists(layout.base) is None:
        raise NoNodeError(layout.base)
    try:
        zk.create(layout.pause, pause.to_json())
    except NodeExistsError:
        zk.set(layout.pause, pause.to_json())


def clear_pause(zk: KazooClient, cluster: str) -> tuple[bool, Pause | None]:
    """Remove the cluster's pause: whether there was one, and what it said (None if it
    was malformed)."""
    path = Layout(cluster).pause
    try:
        raw, stat = zk.get(path)
        zk.delete(path, version=stat.version)
    except NoNodeError:
        return False, None
    try:
        return True, Pause.from_json(raw)
    except DataError:
        return True, None
