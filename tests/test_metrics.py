"""The agent's metrics, health verdicts and HTTP endpoint (loopback only)."""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from prodstate import __version__
from prodstate.agent import metrics
from prodstate.agent.metrics import (
    AgentMetrics,
    RedisStats,
    health,
    read_stats,
    role_of,
)
from prodstate.core.actions import Decision, Promote, Replicate, Wait
from prodstate.core.freshness import Freshness
from prodstate.core.model import FENCE_MIN_REPLICAS, UNREACHABLE, RedisState, Tier, ZkState
from prodstate.redis.link import ReplyError
from tests.snapshot_builder import (
    ME,
    NOW,
    ROOT_ADDR,
    SESSION,
    addr,
    aged,
    master,
    replica,
    root_snap,
    snap,
)

WALL = 1_700_000_000.0
WAIT = Decision(Wait(), "nothing to do")


@pytest.fixture
def m() -> AgentMetrics:
    return AgentMetrics(ME, "prod", "branch")


def observe(m: AgentMetrics, s, decision=WAIT, age=0.5, stats=None, **kw) -> None:
    s = replace(s, freshness=aged(age) if age is not None else Freshness())
    m.observe(s, decision, 0.003, stats, **kw)


def value(m: AgentMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_identity_and_tier(m: AgentMetrics) -> None:
    info = dict(node_id=ME, cluster="prod", version=__version__)
    assert value(m, "prodstate_info", **info) == 1
    assert value(m, "prodstate_tier", tier="branch") == 1
    assert value(m, "prodstate_tier", tier="leaf") == 0
    assert value(m, "prodstate_staleness_seconds") == 0  # no NaN: an alert compares it
    assert value(m, "prodstate_heartbeat_missing") == 1
    assert value(m, "prodstate_full_resyncs_total") is None  # nothing read from Redis yet


def test_process_metrics_on_the_agents_registry(m: AgentMetrics) -> None:
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "process_cpu_seconds_total") > 0
    assert value(m, "python_info", **python_info()) == 1


def python_info() -> dict[str, str]:
    import platform

    major, minor, patch = platform.python_version_tuple()
    return dict(
        implementation=platform.python_implementation(),
        major=major,
        minor=minor,
        patchlevel=patch,
        version=platform.python_version(),
    )


def test_staleness_without_a_heartbeat_counts_from_the_first_observation(m: AgentMetrics) -> None:
    """A Redis that never received a heartbeat is at least as old as the agent's watch of
    it: the gauge grows, so a staleness alert fires, and heartbeat_missing says why."""
    for elapsed in (0.0, 30.0, 95.5):
        m.observe(snap(now=NOW + elapsed, freshness=Freshness()), WAIT, 0.003, None)
        assert value(m, "prodstate_staleness_seconds") == elapsed
        assert value(m, "prodstate_heartbeat_missing") == 1
    observe(m, snap(), age=0.5)
    assert value(m, "prodstate_staleness_seconds") == pytest.approx(0.5)
    assert value(m, "prodstate_heartbeat_missing") == 0


def test_healthy_is_the_healthz_answer_at_scrape_time(m: AgentMetrics, monkeypatch) -> None:
    assert value(m, "prodstate_healthy") == 0  # starting
    observe(m, snap())
    assert value(m, "prodstate_healthy") == 1
    later = metrics.time.monotonic() + 11
    monkeypatch.setattr(metrics.time, "monotonic", lambda: later)
    assert value(m, "prodstate_healthy") == 0  # the loop is stuck: no observe() since


def test_heartbeat_write_round_trips(m: AgentMetrics) -> None:
    assert value(m, "prodstate_heartbeat_write_seconds_count") == 0
    m.heartbeat_written(0.0007)
    m.heartbeat_written(0.02)
    assert value(m, "prodstate_heartbeat_write_seconds_count") == 2
    assert value(m, "prodstate_heartbeat_write_seconds_bucket", le="0.001") == 1
    assert value(m, "prodstate_heartbeat_write_seconds_sum") == pytest.approx(0.0207)


def test_replica(m: AgentMetrics) -> None:
    observe(m, snap(redis=replica(offset=1234)))
    assert value(m, "prodstate_role", role="replica") == 1
    assert sum(value(m, "prodstate_role", role=r) for r in metrics.ROLES) == 1
    assert value(m, "prodstate_zk_connected") == 1
    assert value(m, "prodstate_replication_link_up") == 1
    assert value(m, "prodstate_replication_offset_bytes") == 1234
    assert value(m, "prodstate_epoch") == 3
    assert value(m, "prodstate_staleness_seconds") == pytest.approx(0.5)
    assert value(m, "prodstate_decision_seconds_count") == 1
    assert value(m, "prodstate_decision_seconds_sum") == pytest.approx(0.003)
    assert value(m, "prodstate_decision_seconds_bucket", le="0.005") == 1


def test_root_and_other_roles(m: AgentMetrics) -> None:
    observe(m, root_snap())
    assert value(m, "prodstate_role", role="root") == 1
    assert value(m, "prodstate_replication_link_up") == 1
    assert value(m, "prodstate_epoch") == 4
    observe(m, root_snap(redis=master(min_replicas_to_write=FENCE_MIN_REPLICAS)))
    assert value(m, "prodstate_replication_link_up") == 0  # a fenced root is not serving
    observe(m, snap(redis=master()))
    assert value(m, "prodstate_role", role="master-unelected") == 1
    assert value(m, "prodstate_role", role="root") == 0
    observe(m, snap(redis=UNREACHABLE, zk_state=ZkState.SUSPENDED), age=None)
    assert value(m, "prodstate_role", role="down") == 1
    assert value(m, "prodstate_zk_connected") == 0
    assert value(m, "prodstate_replication_link_up") == 0
    assert math.isnan(value(m, "prodstate_replication_offset_bytes"))
    assert value(m, "prodstate_staleness_seconds") == 0  # all at NOW: since the first tick
    assert value(m, "prodstate_heartbeat_missing") == 1


def test_role_of() -> None:
    assert role_of(snap(redis=RedisState(reachable=True, loading=True))) == "down"
    old_session = root_snap(session_id=SESSION + 1)  # root znode of this node's previous session
    assert role_of(old_session) == "master-unelected"
    assert role_of(root_snap(redis=replica())) == "replica"  # elected, not yet promoted


def test_parent_changes(m: AgentMetrics) -> None:
    a, b = addr("b2"), addr("b3")
    masters = [replica(a), replica(a), replica(b), UNREACHABLE, replica(b), master(), replica(a)]
    counts = []
    for r in masters:
        observe(m, snap(redis=r))
        counts.append(value(m, "prodstate_parent_changes_total"))
    # an unreachable Redis is no observation of its master; becoming a master is a change
    assert counts == [0, 0, 1, 1, 1, 2, 3]


def test_promotions(m: AgentMetrics) -> None:
    promote = Decision(Promote(), "root with epoch 4: promoting")
    observe(m, snap(), Decision(Replicate(ROOT_ADDR), "follow"))
    observe(m, snap(), promote, acted=False)
    assert value(m, "prodstate_promotions_total") == 0
    observe(m, snap(), promote)
    observe(m, snap(), promote)
    assert value(m, "prodstate_promotions_total") == 2


def test_resync_counters_keep_last_values(m: AgentMetrics) -> None:
    observe(m, snap(), stats=RedisStats(sync_full=2, sync_partial_ok=5))
    observe(m, snap(), stats=None)
    assert value(m, "prodstate_full_resyncs_total") == 2
    assert value(m, "prodstate_partial_resyncs_total") == 5


@pytest.mark.parametrize(
    ("s", "staleness", "ok", "reason"),
    [
        (snap(), 0.5, True, f"ok: replica following {ROOT_ADDR}, heartbeat advanced 0.5s ago"),
        (root_snap(), 0.1, True, "ok: root serving epoch 4"),
        (snap(zk_state=ZkState.LOST), 0.5, False, "ZooKeeper lost"),
        (snap(redis=UNREACHABLE), 0.5, False, "local Redis unreachable"),
        (snap(redis=RedisState(True, loading=True)), 0.5, False, "local Redis is loading"),
        (snap(redis=replica(link_up=False)), 0.5, False, f"link to {ROOT_ADDR} is down"),
        (snap(redis=master()), 0.5, False, "not the root"),
        (root_snap(redis=master(min_replicas_to_write=FENCE_MIN_REPLICAS)), 0, False, "fenced"),
        (snap(), None, False, "no heartbeat"),
        (snap(), 12.0, False, "stale: heartbeat advanced 12.0s ago (stale after 3s"),
    ],
)
def test_health(s, staleness, ok, reason) -> None:
    freshness = Freshness() if staleness is None else aged(staleness)
    verdict, text = health(replace(s, freshness=freshness))
    assert verdict is ok
    assert reason in text


def test_health_follows_the_verdict_not_the_age_alone() -> None:
    """Hysteresis: a copy 4 s old is still fresh until ``fall`` checks say otherwise, and
    one 1 s old is stale until ``rise`` checks say it is fresh again."""
    assert health(snap(freshness=aged(4.0, fresh=True)))[0] is True
    assert health(snap(freshness=aged(1.0, fresh=False)))[0] is False
    leaf = snap(tier=Tier.LEAF, redis=replica(addr("b2")), freshness=aged(1.0))
    assert health(leaf)[0] is True


def test_freshness_endpoint_body(m: AgentMetrics) -> None:
    assert m.freshness()["fresh"] is False  # nothing observed yet
    # On the agent's monotonic clock (the snapshots' NOW may lie ahead of a machine's uptime).
    t = time.monotonic()
    seen = Freshness("1.0", t - 100, t - 0.5, True, checked_at=t, judged=True)
    m.observe(replace(snap(), freshness=seen), WAIT, 0.003, None)
    body = m.freshness()
    assert body["fresh"] is True and body["advancing"] is True
    assert body["heartbeat_age"] >= 0.5 and body["stale_after"] == 3.0
    assert body["history_known"] is True  # its replication id is the lineage's


def test_freshness_says_when_the_redis_does_not_hold_the_trees_history(m: AgentMetrics) -> None:
    s = snap()
    assert s.lineage.knows(s.redis)
    restarted_empty = replace(s.redis, replid="f" * 40, replid2="0" * 40)
    m.observe(replace(s, redis=restarted_empty), WAIT, 0.003, None)
    assert m.freshness()["history_known"] is False
    m.observe(replace(s, redis=UNREACHABLE), WAIT, 0.003, None)
    assert m.freshness()["history_known"] is False


def test_healthz_goes_bad_when_the_loop_stops(m: AgentMetrics, monkeypatch) -> None:
    assert m.healthz() == (False, "starting: nothing observed yet")
    observe(m, snap())
    assert m.healthz()[0] is True
    later = metrics.time.monotonic() + 11
    monkeypatch.setattr(metrics.time, "monotonic", lambda: later)
    ok, reason = m.healthz()
    assert not ok
    assert "stuck" in reason


class FakeConn:
    def __init__(self, stats=None, heartbeat=None, error: Exception | None = None) -> None:
        self.stats, self.heartbeat, self.error = stats, heartbeat, error

    def info(self, section: str):
        assert section == "stats"
        if self.error:
            raise self.error
        return self.stats

    def get(self, key: str):
        assert key == "prodstate:time"
        if self.error:
            raise self.error
        return self.heartbeat


def test_read_stats() -> None:
    info = {"sync_full": 3, "sync_partial_ok": 7, "sync_partial_err": 1}
    assert read_stats(FakeConn(stats=info)) == RedisStats(3, 7)
    assert read_stats(FakeConn(stats={"sync_full": 3})) is None
    assert read_stats(FakeConn(stats={"sync_full": "x", "sync_partial_ok": 1})) is None
    assert read_stats(FakeConn(error=ReplyError("ERR unknown section"))) is None
    assert read_stats(FakeConn(error=ConnectionRefusedError("refused"))) is None
    assert read_stats(FakeConn(error=OSError("reset"))) is None


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_http_endpoint(m: AgentMetrics) -> None:
    m.serve(0, host="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{m.port}"
        assert m.port
        status, body = fetch(f"{base}/healthz")
        assert (status, body) == (503, "starting: nothing observed yet\n")
        observe(m, snap(), stats=RedisStats(1, 2))
        status, body = fetch(f"{base}/healthz")
        assert status == 200
        assert body.startswith("ok: replica following")
        status, body = fetch(f"{base}/metrics")
        assert status == 200
        assert 'prodstate_role{role="replica"} 1.0' in body
        assert "prodstate_partial_resyncs_total 2.0" in body
        assert "prodstate_full_resyncs_total 1.0" in body
        types = dict(line.split()[2:] for line in body.splitlines() if line.startswith("# TYPE"))
        types = {name.removesuffix("_total"): kind for name, kind in types.items()}
        assert types["prodstate_full_resyncs"] == "counter"  # not "unknown" or "gauge"
        observe(m, replace(snap(), zk_state=ZkState.SUSPENDED))
        assert fetch(f"{base}/healthz") == (503, "ZooKeeper suspended\n")
        assert fetch(f"{base}/nope")[0] == 404
    finally:
        m.close()
    assert m.port is None


def test_the_serving_root_is_healthy_while_its_own_heartbeat_reads_old() -> None:
    assert health(root_snap(freshness=aged(10, fresh=False)))[0] is True
