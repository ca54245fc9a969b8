"""Metrics and /healthz scraped over HTTP from running agents."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster


def scrape(cluster: LocalCluster, name: str) -> dict[tuple[str, tuple], float]:
    """Every sample node ``name``'s agent exports, by (name, sorted labels)."""
    with urllib.request.urlopen(cluster.agents[name].metrics_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def healthz(cluster: LocalCluster, name: str) -> tuple[int, str]:
    """(HTTP status, body) of node ``name``'s /healthz."""
    try:
        with urllib.request.urlopen(cluster.agents[name].metrics_url + "/healthz", timeout=5) as r:
            return r.status, r.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()


def test_agents_export_their_role_link_and_sync_counters(tmp_path):
    with LocalCluster(tmp_path, branches=2, leaves=3) as cluster:
        report = cluster.wait_for_tree(timeout=60)
        root = report.root.node_id
        branch = next(b for b in cluster.names("branch") if b != root)
        cluster.confirmed_write("k", "v")
        cluster.wait_everywhere("k", "v")

        def root_healthy() -> bool:
            return healthz(cluster, root)[0] == 200

        wait_until(root_healthy, timeout=10, what="root /healthz 200")
        m = scrape(cluster, root)
        assert m[("prodstate_role", (("role", "root"),))] == 1
        assert m[("prodstate_role", (("role", "replica"),))] == 0
        assert m[("prodstate_tier", (("tier", "branch"),))] == 1
        assert m[("prodstate_zk_connected", ())] == 1
        assert m[("prodstate_epoch", ())] == report.root.epoch
        assert m[("prodstate_replication_link_up", ())] == 1
        assert 0 <= m[("prodstate_staleness_seconds", ())] < 5
        assert m[("prodstate_full_resyncs_total", ())] >= 1  # it fed the other branch
        assert m[("prodstate_promotions_total", ())] == 0  # its Redis was a master from the start
        assert m[("prodstate_decision_seconds_count", ())] > 0
        assert m[("prodstate_healthy", ())] == 1
        assert m[("prodstate_heartbeat_write_seconds_count", ())] > 0
        assert m[("process_resident_memory_bytes", ())] > 0

        leaf = "leaf1"
        wait_until(lambda: healthz(cluster, leaf)[0] == 200, timeout=10, what="leaf healthy")
        m = scrape(cluster, leaf)
        assert m[("prodstate_role", (("role", "replica"),))] == 1
        assert m[("prodstate_tier", (("tier", "leaf"),))] == 1
        assert m[("prodstate_replication_link_up", ())] == 1
        assert m[("prodstate_replication_offset_bytes", ())] > 0
        assert m[("prodstate_heartbeat_missing", ())] == 0
        assert m[("prodstate_heartbeat_write_seconds_count", ())] == 0  # only the root writes
        following = "following " + cluster.redis[branch].address
        wait_until(lambda: following in healthz(cluster, leaf)[1], timeout=10, what=following)

        # The leaf's only branch dies: the leaf moves to the root, which serves it partially.
        partial_before = scrape(cluster, root)[("prodstate_partial_resyncs_total", ())]
        full_before = scrape(cluster, root)[("prodstate_full_resyncs_total", ())]
        changes_before = m[("prodstate_parent_changes_total", ())]
        cluster.agents[branch].kill()
        cluster.redis[branch].kill()
        cluster.wait_for_tree(timeout=30)

        def moved() -> dict | None:
            now = scrape(cluster, leaf)
            return now if now[("prodstate_parent_changes_total", ())] > changes_before else None

        wait_until(moved, timeout=10, what="the leaf's parent change counted")

        def partial_resyncs_counted() -> dict | None:  # the agent reads them once a second
            now = scrape(cluster, root)
            return (
                now if now[("prodstate_partial_resyncs_total", ())] >= partial_before + 3 else None
            )

        after = wait_until(partial_resyncs_counted, timeout=10, what="3 partial resyncs counted")
        assert after[("prodstate_full_resyncs_total", ())] == full_before

        # The leaf's Redis dies: its /healthz says so.
        cluster.redis[leaf].kill()
        wait_until(
            lambda: healthz(cluster, leaf) == (503, "local Redis unreachable"),
            timeout=10,
            what="leaf /healthz 503",
        )
