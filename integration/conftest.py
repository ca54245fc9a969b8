"""Fixtures that start real ZooKeeper and redis-server processes on loopback.

Every process is stopped when its fixture ends; a failing test prints the
tails of the server logs (see integration.harness_plugin).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from integration.harness_plugin import (  # noqa: F401  (hooks and fixture for pytest)
    no_leftover_processes,
    pytest_runtest_makereport,
    pytest_runtest_setup,
)
from prodstate.testing import RedisServer, ZooKeeperEnsemble, ZooKeeperServer
from prodstate.testing.cluster import LocalCluster

#: ZooKeeper tick in tests: sessions may then be negotiated between 0.4 and 4 s.
TICK_MS = 200
#: Agents' ZooKeeper session timeout in cluster tests, seconds.
SESSION = 2.0


@pytest.fixture
def zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A standalone ZooKeeper with a short tick."""
    server = ZooKeeperServer(tmp_path, tick_time=TICK_MS).start()
    yield server
    server.stop()


@pytest.fixture
def zk_ensemble(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """A 3-node ZooKeeper ensemble with a short tick."""
    ensemble = ZooKeeperEnsemble(tmp_path, size=3, tick_time=TICK_MS).start()
    yield ensemble
    ensemble.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers: ``redis_factory("name", persistence=False, config={...})``."""
    servers: list[RedisServer] = []

    def make(name: str = "redis", **kwargs: object) -> RedisServer:
        server = RedisServer(tmp_path, name=name, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()  # type: ignore[return-value]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """One redis-server, persistence off."""
    return redis_factory("redis")


@pytest.fixture
def kazoo_factory() -> Iterator[Callable[..., KazooClient]]:
    """Connected kazoo clients, closed when the test ends: ``kazoo_factory(hosts, **kw)``."""
    clients: list[KazooClient] = []

    def make(hosts: str, **kwargs: object) -> KazooClient:
        client = KazooClient(hosts=hosts, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        client.start(timeout=15)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """1 ZooKeeper, 3 branches, 12 leaves, each with its agent; the tree already formed."""
    with LocalCluster(tmp_path, branches=3, leaves=12, session_timeout=SESSION) as c:
        c.wait_settled(timeout=90)
        yield c
