"""The harness itself, proven against the real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import redis
from kazoo.client import KazooState
from redis.backoff import NoBackoff
from redis.retry import Retry

from integration.conftest import SESSION
from prodstate.testing import RedisServer, ZooKeeperEnsemble, expire_session, wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ProcessError

ROOT = Path(__file__).resolve().parent.parent


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ensemble_keeps_serving_after_one_server_is_killed(zk_ensemble, kazoo_factory):
    client = kazoo_factory(zk_ensemble.hosts)
    client.create("/before", b"1")
    leader = zk_ensemble.leader()
    leader.kill()
    assert not leader.running

    survivors = [s for s in zk_ensemble if s.running]
    new_leader = zk_ensemble.leader()
    assert new_leader in survivors
    wait_until(lambda: client.connected, timeout=20, what="client reconnected")
    client.create("/after", b"2")

    fresh = kazoo_factory(",".join(s.hosts for s in survivors))
    assert fresh.get("/before")[0] == b"1"
    fresh.sync("/after")
    assert fresh.get("/after")[0] == b"2"
    assert len(zk_ensemble.serving()) == 2


def test_ensemble_member_restarts_and_rejoins(tmp_path):
    ensemble = ZooKeeperEnsemble(tmp_path, size=3).start()
    try:
        follower = next(s for s in ensemble if s.mode() == "follower")
        follower.restart()
        assert follower.mode() == "follower"
        assert len(ensemble.serving()) == 3
    finally:
        ensemble.stop()


def test_replica_follows_master_and_partial_resyncs_after_link_break(redis_factory):
    master = redis_factory("master", config={"repl-diskless-sync-delay": "0"})
    replica = redis_factory("replica")
    m, r = master.client(), replica.client()
    m.set("k", "v1")
    r.replicaof(master.host, master.port)
    wait_until(lambda: r.get("k") == "v1", what="replica to copy the dataset")
    assert m.info("stats")["sync_full"] == 1

    # Break the link while the replica is frozen, write meanwhile, then let it reconnect.
    replica.pause()
    m.client_kill_filter(_type="replica")
    for i in range(100):
        m.set(f"during{i}", i)
    replica.resume()

    wait_until(lambda: r.get("during99") == "99", what="replica to catch up")
    stats = m.info("stats")
    assert stats["sync_full"] == 1, "the link break must not cost a full resync"
    assert stats["sync_partial_ok"] == 1
    assert r.info("replication")["master_link_status"] == "up"


def test_paused_redis_does_not_answer_until_resumed(redis_server):
    conn = redis_server.client(socket_timeout=0.3)
    redis_server.pause()
    with pytest.raises(redis.TimeoutError):
        conn.ping()
    redis_server.resume()
    assert wait_until(lambda: conn.ping(), ignore=(redis.RedisError,), what="ping after SIGCONT")


def test_restart_keeps_data_only_with_persistence(redis_factory):
    volatile = redis_factory("volatile")
    durable = redis_factory("durable", persistence=True)
    for server in (volatile, durable):
        server.client().set("k", "v")
        server.restart()
    assert volatile.client().get("k") is None
    assert durable.client().get("k") == "v"


def test_killed_server_can_be_started_again_on_the_same_port(redis_server):
    port = redis_server.port
    redis_server.kill()
    assert redis_server.returncode() == -signal.SIGKILL
    redis_server.start()
    assert redis_server.port == port
    assert redis_server.client().ping()


def test_failed_start_reports_the_log(tmp_path):
    broken = RedisServer(tmp_path, config={"no-such-directive": "1"})
    with pytest.raises(ProcessError, match="no-such-directive"):
        broken.start()


def test_server_side_session_expiry_deletes_the_ephemeral_node(zookeeper, kazoo_factory):
    victim = kazoo_factory(zookeeper.hosts, timeout=4)
    observer = kazoo_factory(zookeeper.hosts)
    states: list[str] = []
    lost = threading.Event()

    def listener(state: str) -> None:
        states.append(state)
        if state == KazooState.LOST:
            lost.set()

    victim.add_listener(listener)
    victim.create("/members/victim", b"x", ephemeral=True, makepath=True)
    assert observer.exists("/members/victim")

    expire_session(victim, zookeeper.hosts)

    wait_until(lambda: observer.exists("/members/victim") is None, what="ephemeral node deleted")
    assert lost.wait(timeout=15), f"victim never saw LOST, states: {states}"


def test_no_server_outlives_a_killed_test_process(tmp_path):
    """A SIGKILLed owner cannot run its clean-up: the parent-death signal must."""
    assert os.path.exists("/usr/bin/setpriv"), "bootstrap installs util-linux's setpriv"
    script = textwrap.dedent(
        f"""
        import signal, sys
        from prodstate.testing import RedisServer, ZooKeeperServer
        r = RedisServer({str(tmp_path)!r}).start()
        z = ZooKeeperServer({str(tmp_path)!r}).start()
        print(r.pid, z.pid, flush=True)
        signal.pause()
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    finally:
        owner.kill()
        owner.wait()
    for pid in pids:
        wait_until(lambda pid=pid: not pid_alive(pid), what=f"pid {pid} to die with its owner")


def load_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytester suite loading the harness plugin from this tree (its subprocess runs
    from a temporary folder, so the tree goes on its path)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["integration.harness_plugin"]')


def test_failing_test_prints_server_log_tails(pytester, monkeypatch):
    load_plugin(pytester, monkeypatch)
    pytester.makepyfile(
        """
        from prodstate.testing import RedisServer

        def test_fails(tmp_path):
            server = RedisServer(tmp_path, name="loud-redis").start()
            try:
                assert False, "boom"
            finally:
                server.stop()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*server logs (call)*",
            "*----- loud-redis (*",
            "*Ready to accept*",
            "=> test_failing_test_prints_server_log_tails.py::test_fails failed: *boom*",
        ]
    )


def test_leftover_process_fails_the_test(pytester, monkeypatch):
    load_plugin(pytester, monkeypatch)
    pytester.makepyfile(
        """
        from prodstate.testing import RedisServer

        def test_leaks(tmp_path):
            RedisServer(tmp_path).start()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*processes left running*"])


def test_cluster_starts_agents_in_registered_batches_and_stops_everything(tmp_path):
    cluster = LocalCluster(
        tmp_path,
        branches=2,
        leaves=3,
        agent_batch=2,
        agent_tick=0.3,
        redis_config={"notify-keyspace-events": "E$"},
    )
    with cluster:
        # start() returned only once the last batch had registered, so every agent has.
        zk = cluster.zk()
        base = f"/prodstate/{cluster.cluster}/members"
        assert sorted(zk.get_children(f"{base}/branch")) == ["branch1", "branch2"]
        assert sorted(zk.get_children(f"{base}/leaf")) == ["leaf1", "leaf2", "leaf3"]
        assert "--tick 0.3" in " ".join(cluster.agents["leaf1"].argv)
        with cluster.redis["leaf2"].client() as conn:
            flags = conn.config_get("notify-keyspace-events")["notify-keyspace-events"]
            assert flags == "AKE"  # the harness's E$, and the K and A every agent adds
        pids = [p.pid for p in [*cluster.agents.values(), *cluster.redis.values()]]
    assert not [pid for pid in pids if pid_alive(pid)]


def test_cluster_start_reports_an_agent_that_exits_before_registering(tmp_path):
    cluster = LocalCluster(tmp_path, branches=1, leaves=0, agent_batch=1, agent_args=["--bogus"])
    with pytest.raises(ProcessError, match="agent-branch1 exited"):
        cluster.__enter__()


def parent_of(cluster: LocalCluster, name: str) -> str:
    """The node whose proxy node ``name``'s Redis replicates from."""
    info = cluster.redis[name].info("replication")
    address = f"{info['master_host']}:{info['master_port']}"
    return next(n for n in cluster.redis if cluster.advertised(n) == address)


def link_status(cluster: LocalCluster, name: str) -> str:
    return cluster.redis[name].info("replication")["master_link_status"]


def test_cut_link_silent_or_noisy_parts_one_leaf_from_its_parent_only(tmp_path):
    with LocalCluster(
        tmp_path, branches=2, leaves=1, redis_proxies=True, session_timeout=SESSION
    ) as cluster:
        cluster.wait_for_tree(timeout=60)
        leaf, parent = "leaf1", parent_of(cluster, "leaf1")
        others = [n for n in cluster.redis if n != leaf]

        cluster.cut_link(leaf, parent)
        cluster.confirmed_write("silent", "1")
        for name in others:
            wait_until(lambda n=name: cluster.redis[n].client().get("silent") == "1")
        assert cluster.redis[leaf].client().get("silent") is None
        assert link_status(cluster, leaf) == "up", "a silent cut leaves the link looking up"
        cluster.heal_link(leaf, parent)
        cluster.wait_everywhere("silent", "1")

        cluster.cut_link(leaf, parent, noisy=True)
        wait_until(lambda: link_status(cluster, leaf) == "down", timeout=5, what="link down")
        cluster.heal_link(leaf, parent)
        cluster.wait_for_tree(timeout=30)
        cluster.confirmed_write("noisy", "2")
        cluster.wait_everywhere("noisy", "2")

        cluster.flap_link(leaf, parent_of(cluster, leaf), down=0.2, up=0.2, times=2, noisy=True)
        cluster.wait_for_tree(timeout=30)
        cluster.confirmed_write("flapped", "3")
        cluster.wait_everywhere("flapped", "3")


def test_hang_redis_freezes_the_server_but_not_its_agent(tmp_path):
    with LocalCluster(tmp_path, branches=1, leaves=1, session_timeout=SESSION) as cluster:
        cluster.wait_for_tree(timeout=60)
        cluster.hang_redis("leaf1")
        no_retry = Retry(NoBackoff(), 0)  # redis-py retries timeouts 3 times by default
        with cluster.redis["leaf1"].client(socket_timeout=0.3, retry=no_retry) as conn:
            with pytest.raises(redis.TimeoutError):
                conn.ping()
            assert cluster.agents["leaf1"].running
            cluster.resume_redis("leaf1")
            wait_until(conn.ping, ignore=(redis.RedisError,), what="ping after resume_redis")
        cluster.wait_for_tree(timeout=30)


def test_link_cuts_need_redis_proxies(tmp_path):
    cluster = LocalCluster(tmp_path, branches=1, leaves=1)
    with pytest.raises(ValueError, match="redis_proxies"):
        cluster.cut_link("leaf1", "branch1")
    with pytest.raises(ValueError, match="redis_proxies"):
        cluster.heal_link("leaf1", "branch1")
    with pytest.raises(ValueError, match="redis_proxies"):
        cluster.flap_link("leaf1", "branch1", down=0.1, up=0.1, times=1)
