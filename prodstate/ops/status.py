"""Read the live tree for ``prodstate status``: ZooKeeper's znodes, then every node's Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.core.heartbeat import parse_heartbeat
from prodstate.core.maintenance import Pause
from prodstate.core.model import DataError, Lineage, Member, RedisState, RootRecord, Tier
from prodstate.core.tree import TreeStatus, build_status
from prodstate.redis.control import read_state
from prodstate.redis.link import Link
from prodstate.zk.maintenance import read_drains
from prodstate.zk.paths import Layout

#: At most this many Redis reads run at once.
MAX_WORKERS = 32


def _read_node(
    address: str, timeout: float, options: dict[str, Any]
) -> tuple[RedisState, float | None]:
    """One Redis's state and the age of its heartbeat when read (None if it has none)."""
    with Link(address, timeout=timeout, **options) as link:
        state = read_state(link)  # its pipeline reads the heartbeat too
    if not state.reachable or state.loading:
        return state, None
    heartbeat = parse_heartbeat(state.heartbeat)
    return state, (time.time() - heartbeat if heartbeat is not None else None)


def _zk_reader(zk: KazooClient, timeout: float) -> Callable[..., Any]:
    """``call("get", path)``: a kazoo request that waits at most ``timeout`` seconds."""

    def call(method: str, *args: Any) -> Any:
        return getattr(zk, f"{method}_async")(*args).get(timeout=timeout)

    return call


def collect_status(
    zk: KazooClient,
    cluster: str,
    timeout: float = 0.5,
    stale_after: float | None = 10.0,
    zk_timeout: float = 5.0,
    redis_options: dict[str, Any] | None = None,
) -> TreeStatus:
    """Read the znodes of ``cluster``, then every member's Redis in parallel.

    Malformed znodes and unreachable Redis servers are reported as problems;
    ZooKeeper failures (kazoo exceptions, request timeouts) propagate.
    """
    layout = Layout(cluster)
    call = _zk_reader(zk, zk_timeout)
    call("sync", layout.base)
    problems: list[str] = []
    root = None
    try:
        raw, stat = call("get", layout.root)
        if not stat.ephemeralOwner:
            raise DataError("it is not ephemeral: no session holds it (planted?)")
        root = RootRecord.from_json(raw, stat.ephemeralOwner)
    except NoNodeError:
        pass
    except DataError as exc:
        problems.append(f"malformed root znode: {exc}")
    lineage = Lineage()
    try:
        lineage = Lineage.from_json(call("get", layout.epoch)[0])
    except NoNodeError:
        pass
    except DataError as exc:
        problems.append(f"malformed epoch znode: {exc}")
    pause = None
    try:
        pause = Pause.from_json(call("get", layout.pause)[0])
    except NoNodeError:
        pass
    except DataError as exc:
        problems.append(f"malformed pause znode (the agents ignore it): {exc}")
    members: dict[str, dict[str, Member]] = {}
    for tier in Tier:
        members[tier] = {}
        try:
            children = call("get_children", layout.members(tier))
        except NoNodeError:
            continue
        for child in sorted(children):
            try:
                raw, stat = call("get", layout.member(tier, child))
                if not stat.ephemeralOwner:
                    raise DataError("it is not ephemeral: no agent's session holds it")
                members[tier][child] = Member.from_znode(child, tier, raw)
            except NoNodeError:
                continue  # went away while we looked
            except DataError as exc:
                problems.append(f"malformed member znode {tier}/{child}: {exc}")
    targets = {m.node_id: m.address for by_id in members.values() for m in by_id.values()}
    if root is not None:
        targets.setdefault(root.node_id, root.address)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(targets)))) as pool:
        futures = {
            n: pool.submit(_read_node, a, timeout, redis_options or {}) for n, a in targets.items()
        }
        results = {n: f.result() for n, f in futures.items()}
    now = time.time()
    states = {n: state for n, (state, _) in results.items()}
    # Ages were measured as each node was read; restate them as heartbeats against one "now".
    heartbeats = {n: now - age if age is not None else None for n, (_, age) in results.items()}
    drained = frozenset(read_drains(zk, cluster))
    return build_status(
        root, lineage, members, states, heartbeats, now, stale_after, problems, pause, drained
    )
