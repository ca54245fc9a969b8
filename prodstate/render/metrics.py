"""The renderer's Prometheus metrics (served with ``prodstate render --metrics-port``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class RenderMetrics:
    """Per template: renders, writes, failures, refusals, commands; the age of the data in
    each file; whether keyspace notifications arrive."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.last_render = Gauge(
            "prodstate_render_last_success_timestamp_seconds",
            "Wall-clock time of the last render that succeeded (written or unchanged).",
            ["template"],
            registry=r,
        )
        self.data_age = Gauge(
            "prodstate_render_data_age_seconds",
            "How old the data in the file is: the heartbeat's age when it was rendered, "
            "plus the time since.",
            ["template"],
            registry=r,
        )
        self.renders = Counter(
            "prodstate_render_renders_total", "Renders that succeeded.", ["template"], registry=r
        )
        self.writes = Counter(
            "prodstate_render_writes_total",
            "Files written (their text changed).",
            ["template"],
            registry=r,
        )
        self.failures = Counter(
            "prodstate_render_failures_total",
            "Renders that failed: template error, Redis read error or write error.",
            ["template"],
            registry=r,
        )
        self.refusals = Counter(
            "prodstate_render_refused_total",
            "Renders refused because the local Redis was unsynced, stale or without history "
            "(the last good file kept).",
            registry=r,
        )
        self.commands = Counter(
            "prodstate_render_commands_total",
            "Commands run after a change, by outcome (ok or failed).",
            ["template", "outcome"],
            registry=r,
        )
        self.notifications = Gauge(
            "prodstate_render_notifications_up",
            "1 while subscribed to the local Redis's keyspace notifications.",
            registry=r,
        )
        self._rendered_at: dict[str, tuple[float, float]] = {}

    def rendered(self, template: str, age: float, wrote: bool) -> None:
        self.renders.labels(template).inc()
        if wrote:
            self.writes.labels(template).inc()
        self.last_render.labels(template).set(time.time())
        if template not in self._rendered_at:
            self.data_age.labels(template).set_function(lambda: self._age(template))
        self._rendered_at[template] = (time.monotonic(), age)

    def _age(self, template: str) -> float:
        at, age = self._rendered_at[template]
        return age + time.monotonic() - at

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` from a daemon thread; the bound port (``port`` 0: any)."""
        server, _thread = start_http_server(port, host, registry=self.registry)
        bound: int = server.server_port
        return bound
