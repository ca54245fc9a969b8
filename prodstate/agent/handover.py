"""A root agent that is stopping hands the root over first: it asks for a switchover to
the best branch (the furthest along among the fresh ones that follow it), which its own
loop then carries out (:mod:`prodstate.core.switchover`)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from kazoo.client import KazooClient

from prodstate.core.maintenance import Switchover
from prodstate.core.model import RedisState, Snapshot
from prodstate.zk.client import ZK_ERRORS
from prodstate.zk.maintenance import request_switchover

log = logging.getLogger(__name__)

#: A stopping root waits this many session timeouts for the hand-over, then exits anyway.
HANDOVER_TIMEOUT_SESSIONS = 2


class NotYet(Exception):
    """No branch can take the root yet, but one may soon (its agent is still judging)."""


def handover_request(
    zk: KazooClient,
    cluster: str,
    s: Snapshot,
    read_peer: Callable[[str], RedisState],
    session_timeout: float,
) -> Switchover | None:
    """Ask for a switchover away from this serving root (logged), reading each fresh
    branch's Redis with ``read_peer``; None, and logged why, when no branch can take it
    or the request cannot be written; NotYet while a branch that may take it is still
    judging its copy."""
    assert s.root is not None
    who = {"node_id": s.node_id, "tier": str(s.tier)}
    candidates = [m for m in s.branches if m.node_id != s.node_id and m.available and m.fresh]
    offsets = {}
    for m in candidates:
        state = read_peer(m.address)
        if state.reachable and state.master == s.address and state.link_up:
            offsets[m.node_id] = state.offset
    if not offsets:
        judging = [m.node_id for m in s.branches if m.node_id != s.node_id and m.judging]
        if judging:
            raise NotYet(f"waiting for {', '.join(sorted(judging))} to judge its copy fresh")
        log.warning(
            "stopping: no fresh branch follows this root to hand it to; exiting as root "
            "(the tree fails over once this session expires)",
            extra=who,
        )
        return None
    target = max(sorted(offsets), key=lambda n: offsets[n])
    now = time.time()
    timeout = HANDOVER_TIMEOUT_SESSIONS * session_timeout
    request = Switchover(
        uuid.uuid4().hex, s.node_id, s.root.epoch, target, f"agent-stop@{s.node_id}", now,
        now + timeout,
    )  # fmt: skip
    try:
        request_switchover(zk, cluster, request)
    except ZK_ERRORS as exc:
        log.warning(
            "stopping: cannot ask for a hand-over; exiting as root",
            extra={**who, "error": repr(exc)},
        )
        return None
    log.info(
        "stopping: handing the root over first",
        extra={**who, "target": target, "offset": offsets[target], "switchover": request.id},
    )
    return request
