"""RedisControl against real redis-servers: what the agent's Redis commands leave behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodstate.redis.control import HandOverFailed, RedisControl
from prodstate.redis.link import RedisError
from prodstate.testing import RedisServer, wait_until
from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess
from prodstate.testing.proxy import TcpProxy
from prodstate.testing.redis_server import REDIS_SERVER


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
        wait_until(lambda: replica.in_sync() and replica.client().dbsize() == 1000, timeout=20)
        before = master.info("stats")
        replica.stop()  # SIGTERM: saves the dataset with its replication id and offset
        with master.client() as conn:
            conn.set("while-down", "1")
        replica.start()
        wait_until(lambda: replica.in_sync(), timeout=20, what="the replica back in sync")
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
        return control.link.call("PING") == "PONG"
    except (RedisError, OSError):
        return False


@pytest.mark.parametrize("wait", [False, True])
def test_a_replica_moving_to_a_lagging_sibling_resumes_only_if_it_waits_for_it(
    tmp_path: Path, wait: bool
):
    """Redis answers a PSYNC ahead of its own offset with a full resync: a leaf moving
    to a sibling that lags must wait for the sibling to catch up."""
    fast = {"repl-diskless-sync-delay": "0"}
    master, leaf, parent = (
        RedisServer(tmp_path, name=n, config=fast).start() for n in ("master", "leaf", "parent")
    )
    controls = {s: RedisControl(s.address) for s in (leaf, parent)}
    try:
        with TcpProxy(master.address) as proxy:
            controls[parent].replicate(proxy.address)
            controls[leaf].replicate(master.address)
            with master.client() as conn:
                conn.set("warm", "1")
            wait_until(lambda: leaf.in_sync() and parent.in_sync(), timeout=20)
            wait_until(lambda: _offset(leaf) == _offset(parent) == _offset(master), timeout=20)
            proxy.delay(1.0)  # what the master sends reaches the parent a second late
            with master.client() as conn:
                conn.mset({f"k{i}": str(i) for i in range(100)})
            wait_until(lambda: _offset(leaf) == _offset(master), timeout=20)
            before = parent.info("stats")["sync_full"]
            assert _offset(parent) < _offset(leaf), "the parent does not lag: nothing tested"
            if wait:
                assert controls[leaf].wait_caught_up(controls[parent], timeout=10)
            controls[leaf].replicate(parent.address)
            wait_until(lambda: leaf.in_sync() and leaf.client().dbsize() == 101, timeout=20)
            assert parent.info("stats")["sync_full"] - before == (0 if wait else 1)
    finally:
        for control in controls.values():
            control.close()
        for server in (master, leaf, parent):
            server.stop()


def _offset(server: RedisServer) -> int:
    return server.info("replication")["master_repl_offset"]


def test_a_rewritten_config_keeps_its_private_mode(tmp_path: Path):
    """CONFIG REWRITE writes a new redis.conf with Redis's own default mode (0644 here), and
    the file holds masterauth: the agent puts the mode back."""
    master = RedisServer(tmp_path, name="master").start()
    replica = RedisServer(tmp_path, name="replica", config={"masterauth": "s3cret"})
    replica.config_path.chmod(0o600)
    replica.start()
    try:
        with RedisControl(replica.address) as control:
            control.replicate(master.address)
        text = replica.config_path.read_text()
        assert f"replicaof {master.host} {master.port}" in text and "s3cret" in text
        assert replica.config_path.stat().st_mode & 0o777 == 0o600
    finally:
        replica.stop()
        master.stop()


def test_a_mode_the_agent_cannot_put_back_is_a_warning_not_a_failed_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """An agent that does not own redis.conf cannot chmod it after the rewrite: the move
    stands (it is not retried every tick) and the agent says the file may be readable."""
    master = RedisServer(tmp_path, name="master").start()
    replica = RedisServer(tmp_path, name="replica", config={"masterauth": "s3cret"})
    replica.config_path.chmod(0o600)
    replica.start()

    def refused(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("prodstate.redis.control.os.chmod", refused)
    try:
        with RedisControl(replica.address) as control:
            control.replicate(master.address)
        assert replica.info("replication")["master_port"] == master.port
        assert f"replicaof {master.host} {master.port}" in replica.config_path.read_text()
        assert any("may be readable by others" in r.getMessage() for r in caplog.records)
    finally:
        replica.stop()
        master.stop()


def test_a_config_in_a_folder_others_can_write_is_not_rewritten(tmp_path: Path):
    master = RedisServer(tmp_path, name="master").start()
    replica = RedisServer(tmp_path, name="replica")
    replica.config_path.parent.chmod(0o777)
    replica.start()
    try:
        with RedisControl(replica.address) as control:
            control.replicate(master.address)  # REPLICAOF itself is done
            assert control.persist_config() is False
        assert "replicaof" not in replica.config_path.read_text()
        assert replica.info("replication")["role"] == "slave"
    finally:
        replica.stop()
        master.stop()


def _online(master: RedisServer) -> int:
    """How many replicas ``master`` counts online."""
    info = master.info("replication")
    return sum(
        1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
        and v.get("state") == "online"
    )  # fmt: skip


def test_a_hand_over_makes_the_replica_master_and_every_resync_is_partial(tmp_path: Path):
    """The fenced master, handing over right after a write, waits for the target to
    acknowledge it, and ``FAILOVER`` turns it into the target's replica; its other replica
    follows on, then moves to the new master, and nobody needs a full copy."""
    old, new, other = (RedisServer(tmp_path, name=n).start() for n in ("old", "new", "other"))
    controls = [RedisControl(s.address) for s in (old, new, other)]
    c_old, c_new, c_other = controls
    try:
        c_new.replicate(old.address)
        c_other.replicate(old.address)
        with old.client() as conn:
            conn.mset({f"k{i}": str(i) for i in range(1000)})
        wait_until(lambda: all(r.in_sync() and r.client().dbsize() == 1000 for r in (new, other)))
        # The master counts a replica online once it has acknowledged (within a second).
        wait_until(lambda: _online(old) == 2, what="the master to count both replicas online")
        with old.client() as conn:
            conn.set("last", "write")
        c_old.fence()
        c_old.hand_over(c_new)
        assert c_old.state().master == new.address and c_new.state().is_master
        assert f"replicaof {new.host} {new.port}" in old.config_path.read_text()
        wait_until(lambda: old.in_sync(), what="the old master following the new one")
        c_other.replicate(new.address)
        wait_until(lambda: other.in_sync(), what="the other replica on the new master")
        stats = new.info("stats")
        assert stats["sync_full"] == 0 and stats["sync_partial_ok"] == 2
        assert new.client().get("last") == "write"
        c_old.hand_over(c_new)  # already handed over: nothing to do
    finally:
        for control in controls:
            control.close()
        for server in (other, new, old):
            server.stop()


def test_an_adopted_redis_announces_its_advertised_address_from_its_first_handshake(
    tmp_path: Path,
):
    """A new root re-points the previous root's Redis (restarted, not yet configured by
    its own agent) as AdoptPrevious does: fence, announce, REPLICAOF. The first handshake
    already carries the advertised address (here a proxy's), so the announce settings
    never change while a handshake is in flight (see RedisControl.announce)."""
    root, previous = (RedisServer(tmp_path, name=n).start() for n in ("root", "previous"))
    with TcpProxy(previous.address) as advertised:
        peer = RedisControl(advertised.address)
        try:
            peer.fence()
            peer.announce(advertised.address)
            peer.replicate(root.address)
            wait_until(lambda: previous.in_sync(), what="the adopted Redis in sync")
            listed = root.info("replication")["slave0"]
            assert (listed["ip"], str(listed["port"])) == tuple(advertised.address.split(":"))
            assert previous.port != int(listed["port"])
        finally:
            peer.close()
            previous.stop()
            root.stop()


def test_a_hand_over_to_a_stranger_is_refused_and_the_master_stays(tmp_path: Path):
    master, stranger = (RedisServer(tmp_path, name=n).start() for n in ("master", "stranger"))
    c_master, c_stranger = RedisControl(master.address), RedisControl(stranger.address)
    try:
        with pytest.raises(HandOverFailed, match="FAILOVER refused"):
            c_master.hand_over(c_stranger, timeout=0.2)
        assert c_master.state().is_master
        with master.client() as conn:  # not paused: a write goes through at once
            assert conn.set("after", "1", ex=5) is True
    finally:
        c_master.close()
        c_stranger.close()
        stranger.stop()
        master.stop()
