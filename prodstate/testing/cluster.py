"""A whole prodstate cluster on one machine: ZooKeeper and one Redis per node."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prodstate.testing.redis_server import RedisServer
from prodstate.testing.zk_server import ZooKeeperEnsemble, ZooKeeperServer


class LocalCluster:
    """ZooKeeper (standalone or an ensemble) plus Redis servers for branches and leaves."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        branches: int = 3,
        leaves: int = 6,
        zk_size: int = 1,
        tick_time: int = 200,
    ) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="prodstate-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zookeeper: ZooKeeperServer | ZooKeeperEnsemble
        if zk_size == 1:
            self.zookeeper = ZooKeeperServer(self.workdir, tick_time=tick_time)
        else:
            self.zookeeper = ZooKeeperEnsemble(self.workdir, size=zk_size, tick_time=tick_time)
        self.redis: dict[str, RedisServer] = {}
        for i in range(branches):
            self.redis[f"branch{i + 1}"] = RedisServer(self.workdir, name=f"redis-branch{i + 1}")
        for i in range(leaves):
            self.redis[f"leaf{i + 1}"] = RedisServer(self.workdir, name=f"redis-leaf{i + 1}")

    @property
    def zk_hosts(self) -> str:
        """ZooKeeper connection string."""
        return self.zookeeper.hosts

    def start(self) -> LocalCluster:
        """Start ZooKeeper and every Redis, each waited for until ready."""
        for server in self.redis.values():
            server.start(wait=False)
        self.zookeeper.start()
        for server in self.redis.values():
            server.wait_ready()
        return self

    def stop(self) -> None:
        """Stop everything this cluster started."""
        for server in self.redis.values():
            server.stop()
        self.zookeeper.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
