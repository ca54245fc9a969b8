"""The shipped alert rules and dashboard on a real Prometheus scraping real agents: every
dashboard query answers, nothing fires on a healthy tree, and a root killed while the
cluster is paused (so nobody replaces it) raises ProdstateNoRoot, ProdstateAgentDown and
ProdstateStaleData with the rules' own ``for:`` durations (about 2 minutes: marked slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.prometheus import PrometheusServer

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "prodstate-rules.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "prodstate.json"

pytestmark = pytest.mark.slow


def dashboard_queries(cluster: str) -> dict[str, str]:
    """Each dashboard query by panel and legend, its Grafana variables replaced."""
    queries = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$cluster", cluster)
            queries[f"{panel['title']}: {target['legendFormat']}"] = expr.replace(
                "$__rate_interval", "1m"
            )
    return queries


def value(prometheus: PrometheusServer, expr: str) -> float:
    (series,) = prometheus.query(expr)
    return float(series["value"][1])


def test_alerts_fire_on_real_agents(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, branches=2, leaves=2) as cluster:
        cluster.wait_for_tree(timeout=60)
        targets = [urllib.parse.urlparse(a.metrics_url).netloc for a in cluster.agents.values()]
        prometheus = PrometheusServer(tmp_path, targets, rule_files=[RULES]).start()
        try:
            up = 'count(up{job="prodstate"} == 1)'
            wait_until(lambda: prometheus.query(up), timeout=30, what="first scrapes")
            wait_until(lambda: value(prometheus, up) == 4, timeout=30, what="4 agents scraped")
            wait_until(
                lambda: value(prometheus, "count(prodstate_healthy == 1)") == 4,
                timeout=30,
                what="4 healthy agents scraped",
            )
            queries = dashboard_queries("dev")
            p99 = queries["Root write round trip: p99"]
            wait_until(  # a rate needs two scrapes of the root with writes between them
                lambda: value(prometheus, p99) > 0,
                timeout=30,
                what="the root's write round trip on the dashboard",
                ignore=(ValueError,),
            )
            answers = {name: prometheus.query(q) for name, q in queries.items()}
            assert float(answers["Serving roots: "][0]["value"][1]) == 1
            assert float(answers["Agents reporting: "][0]["value"][1]) == 4
            assert float(answers["Root write round trip: p99"][0]["value"][1]) > 0
            assert prometheus.firing() == []

            root = cluster.root_name()
            assert root is not None
            argv = [sys.executable, "-m", "prodstate", "pause", "--zk", cluster.zk_hosts]
            argv += ["--cluster", cluster.cluster, "--reason", "alert test"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            wait_until(
                lambda: value(prometheus, "min(prodstate_paused)") == 1,
                timeout=30,
                what="every agent scraped paused",
            )
            cluster.agents[root].kill()
            cluster.redis[root].kill()
            killed = time.monotonic()

            def fired(alert: str) -> set[str]:
                return {
                    labels.get("instance") or labels["cluster"]
                    for labels in prometheus.firing()
                    if labels["alertname"] == alert
                }

            wait_until(lambda: fired("ProdstateNoRoot") == {"dev"}, timeout=90, what="no root")
            assert time.monotonic() - killed >= 30  # its `for:`
            root_target = urllib.parse.urlparse(cluster.agents[root].metrics_url).netloc
            wait_until(
                lambda: fired("ProdstateAgentDown") == {root_target}, timeout=60, what="down"
            )
            leaves = {
                urllib.parse.urlparse(cluster.agents[n].metrics_url).netloc
                for n in cluster.names("leaf")
            }
            wait_until(lambda: leaves <= fired("ProdstateStaleData"), timeout=60, what="stale")
            assert time.monotonic() - killed >= 89  # 30 s old, then its 1 m `for:`
            assert fired("ProdstateMultipleRoots") == set()
        finally:
            prometheus.stop()
