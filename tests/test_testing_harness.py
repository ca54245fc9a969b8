"""Unit tests of the harness pieces that need no server."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from prodstate.testing import RedisServer, ZooKeeperEnsemble, free_port, free_ports, wait_until
from prodstate.testing.cluster import in_batches
from prodstate.testing.zk_server import zookeeper_classpath


def test_wait_until_returns_the_first_truthy_value():
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", timeout=5) == "done"


def test_wait_until_names_the_condition_and_last_error_on_timeout():
    def flaky() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(TimeoutError, match=r"the moon.*nobody home"):
        wait_until(flaky, timeout=0.1, what="the moon", ignore=(OSError,))


def test_wait_until_does_not_swallow_unexpected_errors():
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, timeout=1)


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in ports[:3]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_is_handed_out_once_per_process():
    ports = [free_port() for _ in range(300)] + free_ports(100)
    assert len(set(ports)) == 400


def test_free_ports_are_below_the_ephemeral_range():
    # Outgoing connections take their local ports from that range: they must not steal ours.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < low for port in free_ports(50))


def test_redis_config_has_persistence_off_by_default(tmp_path):
    volatile = RedisServer(tmp_path, name="a")
    durable = RedisServer(tmp_path, name="b", persistence=True, config={"maxmemory": "10mb"})
    assert 'save ""' in volatile.config_path.read_text()
    text = durable.config_path.read_text()
    assert 'save "3600 1"' in text and "maxmemory 10mb" in text
    assert f"port {durable.port}" in text and "bind 127.0.0.1" in text


def test_ensemble_config_names_every_peer(tmp_path, monkeypatch):
    monkeypatch.setenv("PRODSTATE_ZOOKEEPER_CLASSPATH", "/nowhere/zk.jar")
    ensemble = ZooKeeperEnsemble(tmp_path, size=3, tick_time=150)
    for index, server in enumerate(ensemble, start=1):
        text = server.config_path.read_text()
        assert "tickTime=150" in text
        assert sum(line.startswith("server.") for line in text.splitlines()) == 3
        assert (server.config_path.parent / "data" / "myid").read_text().strip() == str(index)
        assert "/nowhere/zk.jar" in server.argv
    assert len({s.client_port for s in ensemble}) == 3


def test_ensemble_config_marks_observers_and_takes_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("PRODSTATE_ZOOKEEPER_CLASSPATH", "/nowhere/zk.jar")
    ensemble = ZooKeeperEnsemble(
        tmp_path,
        size=3,
        observers=2,
        heap_mb=1024,
        settings={"globalOutstandingLimit": 5000, "maxClientCnxns": 7},
        jvm_options=["-XX:+UseG1GC"],
    )
    assert [s.observer for s in ensemble] == [False, False, False, True, True]
    assert ensemble.voters == ensemble.servers[:3] and ensemble.observers == ensemble.servers[3:]
    assert ensemble.hosts_of(ensemble.observers).split(",") == [
        s.hosts for s in ensemble.servers[3:]
    ]
    for server in ensemble:
        lines = server.config_path.read_text().splitlines()
        peers = [line for line in lines if line.startswith("server.")]
        assert [p.endswith(":observer") for p in peers] == [False, False, False, True, True]
        assert ("peerType=observer" in lines) is server.observer
        assert "globalOutstandingLimit=5000" in lines
        assert "maxClientCnxns=7" in lines and "maxClientCnxns=0" not in lines
        assert "-Xmx1024m" in server.argv and "-XX:+UseG1GC" in server.argv
        assert "-XX:+UseSerialGC" not in server.argv


def test_zookeeper_classpath_explains_a_missing_install(tmp_path, monkeypatch):
    monkeypatch.delenv("PRODSTATE_ZOOKEEPER_CLASSPATH", raising=False)
    monkeypatch.setenv("PRODSTATE_ZOOKEEPER_JARS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="install Debian's zookeeper"):
        zookeeper_classpath()


def test_in_batches_cuts_in_order_and_keeps_the_remainder():
    assert in_batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert in_batches([1, 2, 3], None) == [[1, 2, 3]]
    assert in_batches([], 3) == [] and in_batches([], None) == []


def test_in_batches_refuses_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        in_batches([1], 0)
