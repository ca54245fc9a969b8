"""Real-server test harness: ZooKeeper, redis-server and prodstate processes.

Reused by the test suites, the benchmarks and ``prodstate dev``, the way
``kazoo.testing`` ships kazoo's own harness.
"""

from prodstate.testing.ports import free_port, free_ports
from prodstate.testing.process import ManagedProcess, live_processes, stop_all
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import (
    ZooKeeperEnsemble,
    ZooKeeperServer,
    expire_session,
)

__all__ = [
    "ManagedProcess",
    "RedisServer",
    "ZooKeeperEnsemble",
    "ZooKeeperServer",
    "expire_session",
    "free_port",
    "free_ports",
    "live_processes",
    "stop_all",
    "wait_until",
]
