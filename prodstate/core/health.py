"""The health of one node, judged from its snapshot and the age of its heartbeat (pure).

``/healthz`` answers with it, and ``prodstate_role`` reports the role.
"""

from __future__ import annotations

from prodstate.core.model import Snapshot, ZkState

#: The roles ``role_of`` names.
ROLES = ("root", "replica", "master-unelected", "down")


def role_of(s: Snapshot) -> str:
    """``root`` (holds the root znode, Redis a master), ``replica``, ``master-unelected``,
    or ``down`` (Redis unreachable or loading)."""
    r = s.redis
    if not r.reachable or r.loading:
        return "down"
    if r.role == "slave":
        return "replica"
    return "root" if r.is_master and s.holds_root else "master-unelected"


def health(s: Snapshot) -> tuple[bool, str]:
    """Whether this node serves fresh data, with a one-line reason (pure). Fresh is the
    agent's own verdict (:mod:`prodstate.core.freshness`): how long ago the heartbeat last
    advanced in the local Redis, on this machine's monotonic clock."""
    if s.zk_state is not ZkState.CONNECTED:
        return False, f"ZooKeeper {s.zk_state}"
    if s.zk_untrusted:
        return False, f"refusing to act on this cluster's znodes: {s.zk_untrusted}"
    r = s.redis
    if not r.reachable:
        return False, "local Redis unreachable"
    if r.loading:
        return False, "local Redis is loading"
    role = role_of(s)
    if role == "master-unelected":
        return False, "local Redis is a master but this node is not the root"
    if role == "replica" and not r.link_up:
        return False, f"replication link to {r.master} is down"
    if role == "root" and r.fenced:
        return False, "root Redis is fenced: not accepting writes"
    if role == "root" and s.root and r.epoch_key_differs(s.root.epoch):
        return False, (
            f"root Redis holds epoch key {r.epoch_key[:20]!r}, not its epoch {s.root.epoch}: "
            "every write is refused"
        )
    staleness = s.freshness.age(s.now)
    if staleness is None:
        return False, "no heartbeat in local Redis"
    if not s.freshness.fresh and role != "root":
        return False, (
            f"stale: {s.freshness.describe(s.now)} (stale after {s.policy.stale_after:g}s, "
            f"fresh after {s.freshness.rise_needed(s.policy)} checks in a row)"
        )
    if role == "root":
        epoch = s.root.epoch if s.root else 0
        return True, f"ok: root serving epoch {epoch}"
    return True, f"ok: replica following {r.master}, {s.freshness.describe(s.now)}"
