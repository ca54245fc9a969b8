"""The agent's Prometheus metrics and ``/healthz`` endpoint.

Interface for the agent loop (one ``AgentMetrics`` per agent)::

    metrics = AgentMetrics(node_id, cluster, str(tier))
    metrics.serve(port)                       # /metrics and /healthz, daemon thread
    ...                                       # each tick:
    started = time.monotonic()
    decision = decide(snapshot); act(decision)
    metrics.observe(snapshot, decision, time.monotonic() - started, stats=read_stats(conn))
    ...                                       # the heartbeat thread, each write:
    metrics.heartbeat_written(round_trip)
    metrics.close()

Pass ``acted=False`` when the action was skipped or failed, so that
``prodstate_promotions_total`` counts only promotions carried out.

``/healthz`` answers with the verdict of ``health()`` at the last ``observe()``, or 503 if
no observation is more recent than ``max_staleness`` seconds (the loop is stuck);
``prodstate_healthy`` is that answer, read at each scrape.
``/freshness`` answers with the agent's freshness measure as JSON (what ``prodstate check
--agent`` reads): ``heartbeat_age`` is the seconds since the root's heartbeat last
advanced in the local Redis, on this machine's monotonic clock; ``history_known`` is
whether the local Redis holds the tree's history (its replication id is in the lineage,
as the agent judges every Redis before it may serve others), what ``prodstate render``
needs before it renders from it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from prodstate import __version__
from prodstate.core.actions import Decision, Promote
from prodstate.core.freshness import DEFAULT_POLICY, Freshness, FreshnessPolicy
from prodstate.core.health import ROLES, health, role_of
from prodstate.core.model import Snapshot, Tier, ZkState
from prodstate.redis.link import Link, RedisError

log = logging.getLogger("prodstate.agent.metrics")

#: Seconds the idle HTTP server sleeps between checks that it should stop.
HTTP_POLL = 5.0

DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class RedisStats:
    """Syncs the local Redis has served to its replicas since it started (``INFO stats``)."""

    sync_full: int
    sync_partial_ok: int


def read_stats(conn: Link) -> RedisStats | None:
    """``INFO stats`` as RedisStats; None if Redis does not answer or the reply is malformed."""
    try:
        info = conn.info("stats")
        return RedisStats(int(info["sync_full"]), int(info["sync_partial_ok"]))
    except (RedisError, OSError, KeyError, TypeError, ValueError):
        return None


class _SyncCollector(Collector):
    """Redis's own sync counters, exported as counters from the last observed values."""

    def __init__(self) -> None:
        self.stats: RedisStats | None = None

    def describe(self) -> Iterator[Metric]:
        yield from self._families(RedisStats(0, 0))

    def collect(self) -> Iterator[Metric]:
        if self.stats is not None:
            yield from self._families(self.stats)

    @staticmethod
    def _families(stats: RedisStats) -> Iterator[Metric]:
        served = "served by the local Redis to its replicas since it started."
        full, partial = "prodstate_full_resyncs", "prodstate_partial_resyncs"
        yield CounterMetricFamily(full, f"Full resyncs {served}", value=stats.sync_full)
        yield CounterMetricFamily(partial, f"Partial resyncs {served}", value=stats.sync_partial_ok)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class AgentMetrics:
    """The metrics of one agent, with its process's, in its own registry unless one is given
    (not the global one, which already holds the process collectors)."""

    def __init__(
        self,
        node_id: str,
        cluster: str,
        tier: str,
        registry: CollectorRegistry | None = None,
        max_staleness: float = 10.0,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_staleness = max_staleness
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"prodstate_{name}", doc, labels, registry=reg)

        info = {"node_id": node_id, "cluster": cluster, "version": __version__}
        Info("prodstate", "This agent.", registry=reg).info(info)
        self.role = gauge("role", "1 for the current role.", "role")
        tier_gauge = gauge("tier", "1 for this agent's tier.", "tier")
        for t in Tier:
            tier_gauge.labels(str(t)).set(1 if str(t) == str(tier) else 0)
        self.staleness = gauge(
            "staleness_seconds",
            "Seconds since the root's heartbeat last advanced in the local Redis (this "
            "machine's monotonic clock); with no heartbeat read yet, since the agent started.",
        )
        self.heartbeat_missing = gauge(
            "heartbeat_missing",
            "1 until the agent has read a heartbeat from its local Redis.",
        )
        self.heartbeat_missing.set(1)
        self.fresh = gauge("fresh", "1 while the agent judges its local copy fresh.")
        self.paused = gauge(
            "paused", "1 while the cluster is paused for maintenance (no failover, no moves)."
        )
        self.pause_expires = gauge(
            "pause_expiry_timestamp_seconds",
            "When the maintenance pause expires (Unix time; NaN: not paused, or never).",
        )
        gauge("healthy", "1 while /healthz answers 200.").set_function(
            lambda: 1 if self.healthz()[0] else 0
        )
        self.zk_connected = gauge("zk_connected", "1 if ZooKeeper is connected.")
        self.zk_untrusted = gauge(
            "zk_untrusted", "1 while this cluster's znodes have ACLs the agents cannot set."
        )
        self.link_up = gauge(
            "replication_link_up", "1 if the replication link is up (root: accepting writes)."
        )
        self.offset = gauge(
            "replication_offset_bytes", "Replication offset of the local Redis, in bytes."
        )
        self.epoch = gauge("epoch", "Epoch of the current (or last known) root.")
        self.parent_changes = Counter(
            "prodstate_parent_changes", "Changes of the local Redis's master.", registry=reg
        )
        self.promotions = Counter(
            "prodstate_promotions", "Promotions carried out by this agent.", registry=reg
        )
        self.decision_seconds = Histogram(
            "prodstate_decision_seconds",
            "Time to decide and act, per tick.",
            buckets=DECISION_BUCKETS,
            registry=reg,
        )
        self.heartbeat_write_seconds = Histogram(
            "prodstate_heartbeat_write_seconds",
            "Round trip of the root's heartbeat write to its Redis (root only).",
            buckets=WRITE_BUCKETS,
            registry=reg,
        )
        self._syncs = _SyncCollector()
        reg.register(self._syncs)
        for name in ROLES:
            self.role.labels(name).set(0)
        for gauge in (self.offset, self.pause_expires):
            gauge.set(math.nan)
        self._master: str | None = None
        self._first_observed: float | None = None
        self._pause = ""
        self._freshness: Freshness | None = None
        self._history_known = False
        self._policy = DEFAULT_POLICY
        self._health: tuple[bool, str] = (False, "starting: nothing observed yet")
        self._observed_at: float | None = None
        self._server: ThreadingHTTPServer | None = None

    def observe(
        self,
        snapshot: Snapshot,
        decision: Decision,
        seconds: float,
        stats: RedisStats | None,
        acted: bool = True,
    ) -> None:
        """Record one tick."""
        s, r = snapshot, snapshot.redis
        role = role_of(s)
        for name in ROLES:
            self.role.labels(name).set(1 if name == role else 0)
        self._observe_freshness(s.freshness, s.now, s.policy)
        self._history_known = bool(
            r.reachable and s.lineage_readable and s.lineage.knows(r) and not r.loading
        )
        paused = s.pause if s.paused else None
        self.paused.set(1 if paused else 0)
        expires = paused.expires if paused and paused.expires is not None else math.nan
        self.pause_expires.set(expires)
        self._pause = paused.describe(s.wall_clock) if paused else ""
        self.zk_connected.set(1 if s.zk_state is ZkState.CONNECTED else 0)
        self.zk_untrusted.set(1 if s.zk_untrusted else 0)
        up = r.link_up if role == "replica" else role == "root" and not r.fenced
        self.link_up.set(1 if up else 0)
        self.offset.set(math.nan if role == "down" else r.offset)
        self.epoch.set(s.root.epoch if s.root is not None else s.lineage.epoch)
        if role != "down":
            if self._master is not None and r.master != self._master:
                self.parent_changes.inc()
            self._master = r.master
        if acted and isinstance(decision.action, Promote):
            self.promotions.inc()
        self.decision_seconds.observe(seconds)
        if stats is not None:
            self._syncs.stats = stats
        self._health = health(s)
        self._observed_at = time.monotonic()

    def observe_rest(self, freshness: Freshness, now: float) -> None:
        """Record a resting tick (:mod:`prodstate.core.rest`): only the heartbeat was read,
        and the verdict held, so only the heartbeat's age changes."""
        self._observe_freshness(freshness, now, self._policy)
        self._observed_at = time.monotonic()

    def _observe_freshness(self, freshness: Freshness, now: float, policy: FreshnessPolicy) -> None:
        if self._first_observed is None:
            self._first_observed = now
        staleness = freshness.age(now)
        self.heartbeat_missing.set(1 if staleness is None else 0)
        self.staleness.set(now - self._first_observed if staleness is None else staleness)
        self.fresh.set(1 if freshness.fresh else 0)
        self._freshness, self._policy = freshness, policy

    def heartbeat_written(self, seconds: float) -> None:
        """Record one heartbeat write's round trip (the root's heartbeat thread)."""
        self.heartbeat_write_seconds.observe(seconds)

    def healthz(self) -> tuple[bool, str]:
        """The last health verdict, unless the loop has not observed anything for too long."""
        observed_at = self._observed_at
        if observed_at is not None:
            age = time.monotonic() - observed_at
            if age > self.max_staleness:
                return False, f"agent loop stuck: last observation {age:.1f}s ago"
        return self._health

    def freshness(self) -> dict[str, object]:
        """The agent's freshness measure now (the body of ``/freshness``)."""
        now = time.monotonic()
        f = self._freshness
        age = f.age(now) if f is not None else None
        stuck = self._observed_at is None or now - self._observed_at > self.max_staleness
        return {
            "fresh": bool(f is not None and f.fresh and not stuck),
            "heartbeat_age": None if age is None else round(age, 3),
            "advancing": f is not None and f.changed_at is not None,
            "stale_after": self._policy.stale_after,
            "loop_stuck": stuck,
            "paused": self._pause or None,
            "history_known": self._history_known and not stuck,
        }

    def serve(self, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
        """Serve ``/metrics`` and ``/healthz`` from a daemon thread; see ``port``."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    status, ctype = 200, CONTENT_TYPE_LATEST
                    body = generate_latest(metrics.registry)
                elif path == "/healthz":
                    ok, reason = metrics.healthz()
                    status, ctype, body = (200 if ok else 503), "text/plain", reason.encode()
                    body += b"\n"
                elif path == "/freshness":
                    status, ctype = 200, "application/json"
                    body = json.dumps(metrics.freshness()).encode() + b"\n"
                else:
                    status, ctype, body = 404, "text/plain", b"not found: try /metrics\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        server = (_Server6 if ":" in host else _Server)((host, port), Handler)
        # A long poll: each wake-up of an idle agent costs; close() wakes it itself.
        serve = functools.partial(server.serve_forever, poll_interval=HTTP_POLL)
        threading.Thread(target=serve, name="metrics-http", daemon=True).start()
        self._server = server
        return server

    @property
    def port(self) -> int | None:
        """The bound port of the HTTP server (useful with ``serve(0)``), or None."""
        return None if self._server is None else self._server.server_address[1]

    def close(self) -> None:
        """Stop the HTTP server, if serving."""
        server, self._server = self._server, None
        if server is not None:
            stopping = threading.Thread(target=server.shutdown, daemon=True)
            stopping.start()
            host, port = server.server_address[:2]
            deadline = time.monotonic() + HTTP_POLL + 1
            while stopping.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(OSError):  # a connection ends the poll at once
                    socket.create_connection((host, port), timeout=1).close()
                stopping.join(0.05)
            server.server_close()
