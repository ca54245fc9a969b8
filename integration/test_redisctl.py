"""RedisControl against real redis-servers: what the agent's Redis commands leave behind."""

from __future__ import annotations

from pathlib import Path

import redis

from prodstate.redisctl import RedisControl
from prodstate.testing import RedisServer, wait_until
from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess
from prodstate.testing.redis_server import REDIS_SERVER


def _synced(replica: RedisServer) -> bool:
    info = replica.info("replication")
    return info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == 0


def test_a_restarted_replica_resumes_with_a_partial_resync(tmp_path: Path):
    """REPLICAOF is written into redis.conf, so the replica restarted from its saved
    dataset asks its master for what it missed instead of a full copy."""
    master = RedisServer(tmp_path, name="master").start()
    replica = RedisServer(tmp_path, name="replica", persistence=True).start()
    try:
        control = RedisControl(replica.address)
        control.replicate(master.address)
        control.close()
        assert f"replicaof {master.host} {master.port}" in replica.config_path.read_text()
        with master.client() as conn:
            conn.mset({f"k{i}": str(i) for i in range(1000)})
        wait_until(lambda: _synced(replica) and replica.client().dbsize() == 1000, timeout=20)
        before = master.info("stats")
        replica.stop()  # SIGTERM: saves the dataset with its replication id and offset
        with master.client() as conn:
            conn.set("while-down", "1")
        replica.start()
        wait_until(lambda: _synced(replica), timeout=20, what="the replica back in sync")
        after = master.info("stats")
        assert after["sync_full"] == before["sync_full"]
        assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
        assert replica.client().get("while-down") == "1"
    finally:
        replica.stop()
        master.stop()


def test_without_a_config_file_the_rewrite_is_refused_not_fatal(tmp_path: Path):
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    control = RedisControl(f"127.0.0.1:{port}")
    server = ManagedProcess("redis-noconf", argv, tmp_path, ready=lambda: _answers(control))
    server.start()
    try:
        assert control.persist_config() is False
        control.promote()  # still works: the rewrite is best effort
        assert control.state().role == "master"
    finally:
        control.close()
        server.stop()


def _answers(control: RedisControl) -> bool:
    try:
        return bool(control.conn.ping())
    except redis.RedisError:
        return False
