"""The maintenance znodes: the agents' cached read, and the commands' writes (``prodstate
pause``, ``resume`` and ``switchover``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from prodstate.core.maintenance import Drain, Pause, Switchover
from prodstate.core.model import DataError
from prodstate.zk.cache import DataZnode
from prodstate.zk.errors import StoreUnavailable
from prodstate.zk.paths import DRAIN_PREFIX, PAUSE, SWITCHOVER, Layout

log = logging.getLogger(__name__)


def load_znode(
    call: Callable[..., Any], client: KazooClient, path: str, watch: Callable[..., None]
) -> DataZnode | None:
    """Read a maintenance znode through the store's bounded ``call``, leaving a watch that
    fires when it is set, changed or removed; None if there is none."""
    try:
        raw, stat = call(client.get_async, path, watch)
    except NoNodeError:
        if call(client.exists_async, path, watch) is None:
            return None
        raise StoreUnavailable(f"{path} came and went: reading again") from None
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


def parse_switchover(znode: DataZnode | None) -> Switchover | None:
    """The switchover a znode holds; None if there is none, or it is malformed (logged)."""
    if znode is None:
        return None
    try:
        return Switchover.from_json(znode.raw)
    except DataError as exc:
        log.warning("ignoring a malformed switchover znode", extra={"error": str(exc)})
        return None


def read_switchover(zk: KazooClient, cluster: str) -> Switchover | None:
    """The requested switchover, if any (DataError if it is malformed)."""
    try:
        raw, _ = zk.get(Layout(cluster).switchover)
    except NoNodeError:
        return None
    return Switchover.from_json(raw)


def request_switchover(zk: KazooClient, cluster: str, request: Switchover) -> None:
    """Write a switchover request over any earlier one."""
    path = Layout(cluster).switchover
    try:
        zk.create(path, request.to_json(), makepath=True)
    except NodeExistsError:
        zk.set(path, request.to_json())


def clear_switchover(zk: KazooClient, cluster: str, request_id: str) -> None:
    """Remove the switchover request ``request_id`` (not a newer one)."""
    path = Layout(cluster).switchover
    try:
        raw, stat = zk.get(path)
        current = Switchover.from_json(raw)
        if current.id == request_id:
            zk.delete(path, version=stat.version)
    except (NoNodeError, DataError):
        return


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
        zk.create(layout.pause, pause.to_json(), makepath=True)
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


def parse_drain(name: str, znode: DataZnode | None) -> Drain | None:
    """The drain a znode ``drained/<name>`` holds; None if gone or malformed (logged)."""
    if znode is None:
        return None
    try:
        return Drain.from_json(name, znode.raw)
    except DataError as exc:
        log.warning("ignoring a malformed drain znode", extra={"error": str(exc)})
        return None


def maintenance_view(
    children: list[str], data: Callable[[str], DataZnode | None]
) -> dict[str, Any]:
    """The View fields (``pause``, ``switchover``, ``drains``) from the children of the
    maintenance folder, reading each one's data with ``data``."""
    drains = []
    for child in sorted(children):
        if child.startswith(DRAIN_PREFIX):
            drain = parse_drain(child[len(DRAIN_PREFIX) :], data(child))
            if drain is not None:
                drains.append(drain)
    return {
        "pause": parse_pause(data(PAUSE)) if PAUSE in children else None,
        "switchover": parse_switchover(data(SWITCHOVER)) if SWITCHOVER in children else None,
        "drains": tuple(drains),
    }


def read_drains(zk: KazooClient, cluster: str) -> dict[str, Drain]:
    """The drained branches by node id (malformed drain znodes left out)."""
    layout = Layout(cluster)
    try:
        children = zk.get_children(layout.maintenance)
    except NoNodeError:
        return {}
    found = {}
    for child in children:
        if not child.startswith(DRAIN_PREFIX):
            continue
        node = child[len(DRAIN_PREFIX) :]
        try:
            found[node] = Drain.from_json(node, zk.get(f"{layout.maintenance}/{child}")[0])
        except (NoNodeError, DataError):
            continue
    return found


def set_drain(zk: KazooClient, cluster: str, drain: Drain) -> None:
    """Drain a branch (replacing an earlier drain of it)."""
    path = Layout(cluster).drain(drain.node_id)
    try:
        zk.create(path, drain.to_json(), makepath=True)
    except NodeExistsError:
        zk.set(path, drain.to_json())


def clear_drain(zk: KazooClient, cluster: str, node_id: str) -> bool:
    """Undrain a branch; False if it was not drained."""
    try:
        zk.delete(Layout(cluster).drain(node_id))
    except NoNodeError:
        return False
    return True
