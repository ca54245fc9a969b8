"""A ``prodstate agent`` process beside one harness Redis."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess
from prodstate.testing.redis_server import RedisServer


class AgentProcess(ManagedProcess):
    """``python -m prodstate agent`` for one node, started through the real command line.

    Each agent serves its metrics and ``/healthz`` on a free loopback port (``metrics_url``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        node_id: str,
        tier: str,
        zk_hosts: str,
        cluster: str,
        redis: RedisServer,
        session_timeout: float = 2.0,
        tick: float = 0.1,
        jitter: float = 0.2,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.node_id = node_id
        self.tier = tier
        self.redis = redis
        self.metrics_port = free_port()
        argv = [
            sys.executable,
            "-m",
            "prodstate",
            "agent",
            "--zk",
            zk_hosts,
            "--cluster",
            cluster,
            "--tier",
            tier,
            "--node-id",
            node_id,
            "--redis",
            redis.address,
            "--session-timeout",
            str(session_timeout),
            "--tick",
            str(tick),
            "--jitter",
            str(jitter),
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-host",
            "127.0.0.1",
            *extra_args,
        ]
        super().__init__(f"agent-{node_id}", argv, Path(workdir) / "agents")

    @property
    def metrics_url(self) -> str:
        """Base URL of this agent's HTTP endpoint: append ``/metrics`` or ``/healthz``."""
        return f"http://127.0.0.1:{self.metrics_port}"
