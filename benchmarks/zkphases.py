"""The measured phases of ``zk_sessions.py``: the connection storm, the steady state, a branch
lost, the root lost, the whole ensemble restarted. Each returns its figures as a dict."""

from __future__ import annotations

import itertools
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchkit import log, percentile
from zkfleet import BranchCluster, Fleet, ZnodeTimes, follow_znode
from zkmonitor import Monitor, expired_sessions, jvm_cpu, jvm_rss_mb, sessions

from prodstate.core.model import DataError, RootRecord, Tier
from prodstate.core.rendezvous import choose_parent
from prodstate.testing.zk_server import ZooKeeperServer
from prodstate.zk.paths import Layout

#: Counters of ``zkwire.Counts.snapshot`` that are not requests.
NOT_REQUESTS = ("ping", "connect", "failed_connect", "drop", "expired")


@dataclass
class Run:
    """Everything a phase works with."""

    cluster: BranchCluster
    servers: list[ZooKeeperServer]
    fleet: Fleet
    monitor: Monitor
    timeout: float
    session_timeout: float

    @property
    def n(self) -> int:
        return len(self.fleet.ids)


def requests_of(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k not in NOT_REQUESTS)


def summed(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for leaf in counts.values():
        for key, value in leaf.items():
            total[key] = total.get(key, 0) + value
    return total


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def spread(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of a non-empty list."""
    return {"p50": statistics.median(values), "p99": percentile(values, 99), "max": max(values)}


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return found


def storm(run: Run) -> dict[str, Any]:
    """Every leaf starts at once: connect, check the paths, register, read, choose."""
    expired0, cpu0 = expired_sessions(run.servers), jvm_cpu(run.servers)
    run.monitor.reset_latency()
    run.monitor.window()
    t0 = time.monotonic()
    run.fleet.ask("start")
    n = run.n
    connected, lag1 = run.fleet.wait(lambda p: p["connected"] >= n, run.timeout, "connections")
    registered, lag2 = run.fleet.wait(lambda p: p["registered"] >= n, run.timeout, "members")
    chose, lag3 = run.fleet.wait(lambda p: p["chose"] >= n, run.timeout, "every leaf's parent")
    fresh, lag4 = run.fleet.wait(lambda p: p["fresh"] >= n, run.timeout, "every leaf fresh")
    time.sleep(1.0)  # the re-read after the last registration
    window = run.monitor.window()
    counts = run.fleet.merged("counts")
    times = run.fleet.merged("times")
    total = summed(counts)
    return {
        "all_connected_s": connected - t0,
        "all_registered_s": registered - t0,
        "all_chose_s": chose - t0,
        "all_fresh_s": fresh - t0,
        "chose": spread([t[2] - t0 for t in times.values() if t[2] is not None]),
        "requests_per_leaf": requests_of(total) / n,
        "by_kind_per_leaf": {k: v / n for k, v in total.items() if k not in NOT_REQUESTS},
        "failed_connects": total.get("failed_connect", 0),
        "drops": total.get("drop", 0),
        "client_expired": total.get("expired", 0),
        "server_expired": expired_sessions(run.servers) - expired0,
        "packets": window.packets(),
        "peak_packets_per_s": window.peak_rate(),
        "peak_outstanding": window.peak("zk_outstanding_requests"),
        "max_latency_ms": window.peak("zk_max_latency"),
        "peak_connections": window.peak("zk_num_alive_connections"),
        "zk_cpu_s": jvm_cpu(run.servers) - cpu0,
        "worker_lag_s": max(lag1, lag2, lag3, lag4),
    }


def branch_requests(run: Run, names: list[str]) -> dict[int, int]:
    """lcxid of the named branches' sessions (``cons`` on every server)."""
    ids = {run.cluster.session_of(name) for name in names}
    return {sid: lcxid for sid, lcxid in sessions(run.servers).items() if sid in ids}


def live_branches(run: Run) -> list[str]:
    return [n for n, a in run.cluster.agents.items() if a.running]


def steady(run: Run, seconds: float) -> dict[str, Any]:
    """Nothing happens for ``seconds``: what the fleet costs ZooKeeper at rest."""
    branches = live_branches(run)
    expired0, cpu0 = expired_sessions(run.servers), jvm_cpu(run.servers)
    each0 = [jvm_cpu([s]) for s in run.servers]
    counts0, lcxid0 = summed(run.fleet.merged("counts")), branch_requests(run, branches)
    run.fleet.progress()  # the loops' lag counts from now
    run.monitor.reset_latency()
    run.monitor.window()
    t0 = time.monotonic()
    time.sleep(seconds)  # the measured interval itself
    dt = time.monotonic() - t0
    window = run.monitor.window()
    cpu = jvm_cpu(run.servers) - cpu0
    each = [(jvm_cpu([s]) - c) / dt for s, c in zip(run.servers, each0, strict=True)]
    counts = delta(summed(run.fleet.merged("counts")), counts0)
    lag = run.fleet.progress()["lag"]
    lcxid1 = branch_requests(run, branches)
    root = run.cluster.root_record()
    root_session = run.cluster.session_of(root.node_id) if root else 0
    per_branch = [lcxid1[s] - lcxid0[s] for s in lcxid1 if s in lcxid0 and s != root_session]
    rss = jvm_rss_mb(run.servers)
    return {
        "seconds": dt,
        "leaf_requests_per_s": requests_of(counts) / dt,
        "leaf_pings_per_s": counts.get("ping", 0) / dt,
        "per_leaf_per_min": {k: v / run.n / dt * 60 for k, v in counts.items()},
        "branch_requests_per_min": statistics.mean(per_branch) / dt * 60 if per_branch else 0,
        "root_requests_per_min": (
            (lcxid1.get(root_session, 0) - lcxid0.get(root_session, 0)) / dt * 60
        ),
        "packets_per_s": window.packets() / dt,
        "peak_packets_per_s": window.peak_rate(),
        "max_latency_ms": window.peak("zk_max_latency"),
        "watches": window.last("zk_watch_count"),
        "znodes": window.last("zk_znode_count") / max(1, len(run.servers)),
        "connections": window.last("zk_num_alive_connections"),
        "rss_mb": rss,
        "per_server": [
            f"{c:.0f}/{p / dt:.0f}/{core:.2f}"
            for c, p, core in zip(
                window.per_server("zk_num_alive_connections"),
                window.packets_per_server(),
                each,
                strict=True,
            )
        ],
        "zk_cores": cpu / dt,
        "worker_lag_s": lag,
        "drops": counts.get("drop", 0),
        "client_expired": counts.get("expired", 0),
        "server_expired": expired_sessions(run.servers) - expired0,
    }


def _requests_after(
    traces: dict[str, list[tuple[float, str, str]]], t0: float, leaves: Any
) -> tuple[list[int], int]:
    """Per leaf, requests from ``t0`` on that were not a periodic full re-read; and how
    many full re-read requests fell in the window meanwhile."""
    own, full = [], 0
    for leaf in leaves:
        mine = [tag for t, _, tag in traces.get(leaf, []) if t >= t0]
        own.append(sum(1 for tag in mine if tag != "full"))
        full += sum(1 for tag in mine if tag == "full")
    return own, full


def _first(
    decisions: list[tuple[float, str, str, tuple[str, ...]]], test: Callable[..., bool]
) -> float | None:
    return next((d[0] for d in decisions if test(*d)), None)


def branch_loss(run: Run, crash: bool) -> dict[str, Any]:
    """The non-root branch with most leaves dies: with ``crash`` its machine (agent and Redis
    SIGKILLed: its leaves' copies go stale at once), else only its agent (its Redis keeps
    serving). Its member znode goes when its session expires, and every leaf's watch on it
    fires; requests are counted from the kill."""
    cluster = run.cluster
    root = cluster.root_record()
    assert root is not None
    parents = run.fleet.merged("parents")
    candidates = [b for b in live_branches(run) if b != root.node_id]
    under = {b: sum(p == cluster.advertised(b) for p in parents.values()) for b in candidates}
    victim = max(candidates, key=lambda b: under[b])
    gone_address = cluster.advertised(victim)
    affected = [leaf for leaf, p in parents.items() if p == gone_address]
    remaining = [b for b in candidates if b != victim]
    times = follow_znode(cluster.zk(), Layout(cluster.cluster).member(Tier.BRANCH, victim))
    run.fleet.ask("trace", True)
    run.monitor.window()
    log(f"branch loss: {'crashing' if crash else 'killing the agent of'} {victim} "
        f"({len(affected)} leaves)")  # fmt: skip
    cpu0 = run.fleet.progress()["cpu"]  # the loops' lag counts from now
    t_kill = time.monotonic()
    if crash:
        cluster.crash(victim)
        run.fleet.ask("cut", gone_address, t_kill)
    else:
        cluster.agents[victim].kill()
    wait_for(lambda: times.deleted, 3 * run.session_timeout + 10, f"{victim}'s member to go")
    t_gone = times.deleted[0]
    rehomed: dict[str, float] = {}
    saw: dict[str, float] = {}

    def settled() -> bool:
        for leaf, decisions in run.fleet.merged("decisions", t_kill).items():
            seen = _first(decisions, lambda t, p, r, b: t >= t_gone and victim not in b)
            if seen is not None:
                saw.setdefault(leaf, seen)
            if leaf in affected and leaf not in rehomed:
                at = _first(decisions, lambda t, p, r, b: p not in ("", gone_address))
                if at is not None:
                    rehomed[leaf] = at
        return len(saw) == run.n and len(rehomed) == len(affected)

    wait_for(settled, run.timeout, "every leaf to re-read the branches", every=0.5)
    progress = run.fleet.progress()
    lag, cpu = progress["lag"], progress["cpu"] - cpu0
    time.sleep(3.0)  # requests still under way: a moved leaf registers fresh again
    traces = run.fleet.merged("trace", False)
    window = run.monitor.window()
    now_parents = run.fleet.merged("parents")
    expected = {
        leaf: cluster.advertised(choose_parent(leaf, remaining) or root.node_id)
        for leaf in affected
    }
    wrong = sum(1 for leaf in affected if now_parents[leaf] != expected[leaf])
    wrong += sum(
        1 for leaf in parents if leaf not in affected and now_parents[leaf] != parents[leaf]
    )
    own, _ = _requests_after(traces, t_kill, affected)
    everyone, full_all = _requests_after(traces, t_kill, run.fleet.ids)
    return {
        "victim": victim,
        "affected": len(affected),
        "expiry_s": t_gone - t_kill,
        "rehome": spread([t - t_gone for t in rehomed.values()]) if rehomed else {},
        "rehome_from_kill": spread([t - t_kill for t in rehomed.values()]) if rehomed else {},
        "all_read_s": max(saw.values()) - t_gone,
        "requests_per_affected_leaf": statistics.mean(own) if own else 0.0,
        "max_requests_of_an_affected_leaf": max(own, default=0),
        "requests_all_leaves": sum(everyone),
        "full_reread_requests_meanwhile": full_all,
        "packets": window.packets(),
        "peak_packets_per_s": window.peak_rate(),
        "max_latency_ms": window.peak("zk_max_latency"),
        "wrong": wrong,
        "worker_lag_s": lag,
        "worker_cpu_s": cpu,
    }


def last_run_start(flags: list[bool]) -> int:
    """Where the final run of True values in ``flags`` begins (``len(flags)`` if none)."""
    start = len(flags)
    while start > 0 and flags[start - 1]:
        start -= 1
    return start


def _published(times: ZnodeTimes, old: str) -> float | None:
    """When a root other than ``old`` first showed a published replication id."""
    for at, raw in times.changed:
        try:
            record = RootRecord.from_json(raw)
        except DataError:
            continue
        if record.node_id != old and record.replid:
            return at
    return None


def root_failover(run: Run) -> dict[str, Any]:
    """The root crashes: its session expires, a branch claims the root and publishes its
    replication id, and every leaf re-reads (the new root's own leaves move off it)."""
    cluster = run.cluster
    root = cluster.root_record()
    assert root is not None
    old = root.node_id
    survivors = [b for b in live_branches(run) if b != old]
    parents = run.fleet.merged("parents")
    lcxid0 = branch_requests(run, survivors)  # taken before the kill, like the leaves' traces
    times = follow_znode(cluster.zk(), Layout(cluster.cluster).root)
    run.fleet.ask("trace", True)
    run.monitor.window()
    log(f"root failover: crashing the root {old}")
    t_kill = time.monotonic()
    cluster.crash(old)
    run.fleet.ask("cut", cluster.advertised(old), t_kill)
    run.fleet.ask("source", t_kill)
    wait_for(lambda: times.deleted, 3 * run.session_timeout + 10, "the root znode to go")
    t_gone = times.deleted[0]
    t_published = wait_for(lambda: _published(times, old), run.timeout, "a new root")
    run.fleet.ask("source", None)  # the new root writes the heartbeat
    t_claimed = times.created[0] if times.created else t_published
    new = cluster.root_record()
    assert new is not None and new.node_id != old
    branches = [b for b in survivors if b != new.node_id]
    expected = {
        leaf: cluster.advertised(choose_parent(leaf, branches) or new.node_id)
        for leaf in run.fleet.ids
    }
    rehomed: dict[str, float] = {}
    moves: dict[str, int] = {}

    def settled() -> bool:
        """Every leaf's last decision: under the new root, on its rendezvous branch (it may
        have gone elsewhere first, while that branch was still stale)."""
        for leaf, decisions in run.fleet.merged("decisions", t_kill).items():
            path = [parents[leaf]] + [p for _, p, _, _ in decisions]
            moves[leaf] = sum(1 for a, b in itertools.pairwise(path) if a != b)
            home = [d[2] == new.node_id and d[1] == expected[leaf] for d in decisions]
            if home and home[-1]:
                rehomed[leaf] = decisions[last_run_start(home)][0]
            else:
                rehomed.pop(leaf, None)
        return len(rehomed) == run.n

    try:
        wait_for(settled, run.timeout, "every leaf on its branch under the new root", every=0.5)
    except TimeoutError as exc:
        log(f"root failover: {exc}")
    time.sleep(3.0)  # requests still under way: every leaf registers fresh again
    t_end = time.monotonic()
    traces = run.fleet.merged("trace", False)
    window = run.monitor.window()
    lcxid1 = branch_requests(run, survivors)
    now_parents = run.fleet.merged("parents")
    wrong = sum(1 for leaf, p in now_parents.items() if p != expected[leaf])
    moved = sum(1 for leaf, p in now_parents.items() if p != parents[leaf])
    everyone, full = _requests_after(traces, t_kill, run.fleet.ids)
    return {
        "old_root": old,
        "new_root": new.node_id,
        "expiry_s": t_gone - t_kill,
        "claimed_s": t_claimed - t_gone,
        "published_s": t_published - t_gone,
        "rehome": spread([t - t_gone for t in rehomed.values()]) if rehomed else {},
        "moved": moved,
        "moves": sum(moves.values()),
        "moved_twice": sum(1 for m in moves.values() if m > 1),
        "requests_per_leaf": statistics.mean(everyone),
        "max_requests_of_a_leaf": max(everyone),
        "full_reread_requests_meanwhile": full,
        "branch_requests": sum(lcxid1[s] - lcxid0.get(s, 0) for s in lcxid1),
        "window_s": t_end - t_kill,
        "packets": window.packets(),
        "max_latency_ms": window.peak("zk_max_latency"),
        "wrong": wrong,
    }


def ensemble_restart(run: Run) -> dict[str, Any]:
    """Every server stopped (SIGTERM) and started again on its data: the sessions must all
    come back, none expired, and every leaf read again."""
    branches = live_branches(run)
    owners = {b: run.cluster.session_of(b) for b in branches}
    root = run.cluster.root_record()
    expired0 = expired_sessions(run.servers)
    counts0 = summed(run.fleet.merged("counts"))
    run.fleet.ask("trace", True)
    log("ensemble restart: stopping every server")
    t_stop = time.monotonic()
    for server in run.servers:
        server.signal(signal.SIGTERM)  # all asked at once: they go down together
    for server in run.servers:
        server.stop()
    t_down = time.monotonic()
    for server in run.servers:
        server.start(wait=False)
    for server in run.servers:
        server.wait_ready(timeout=120)
    t_up = time.monotonic()
    run.monitor.reset_latency()
    run.monitor.window()
    n = run.n
    reconnected, lag = run.fleet.wait(lambda p: p["connected"] >= n, run.timeout, "reconnection")
    back = [t[4] - t_up for t in run.fleet.merged("times").values() if t[4] is not None]
    read: dict[str, float] = {}

    def settled() -> bool:
        for leaf, decisions in run.fleet.merged("decisions", t_up).items():
            if decisions and leaf not in read:
                read[leaf] = decisions[0][0]
        return len(read) == n

    wait_for(settled, run.timeout, "every leaf to read again", every=0.5)
    time.sleep(2.0)
    traces = run.fleet.merged("trace", False)
    window = run.monitor.window()
    counts = delta(summed(run.fleet.merged("counts")), counts0)
    everyone, _ = _requests_after(traces, t_stop, run.fleet.ids)
    after = run.cluster.root_record()
    return {
        "stop_s": t_down - t_stop,
        "quorum_back_s": t_up - t_stop,
        "all_reconnected_s": reconnected - t_up,
        "back": spread(back),
        "read": spread([t - t_up for t in read.values()]),
        "requests_per_leaf": statistics.mean(everyone),
        "failed_connects_per_leaf": counts.get("failed_connect", 0) / n,
        "drops_per_leaf": counts.get("drop", 0) / n,
        "client_expired": counts.get("expired", 0),
        "server_expired": expired_sessions(run.servers) - expired0,
        "branch_sessions_lost": sum(
            1 for b, sid in owners.items() if run.cluster.session_of(b) != sid
        ),
        "root_kept": root is not None and after == root,
        "packets": window.packets(),
        "peak_packets_per_s": window.peak_rate(),
        "peak_outstanding": window.peak("zk_outstanding_requests"),
        "max_latency_ms": window.peak("zk_max_latency"),
        "worker_lag_s": lag,
    }
