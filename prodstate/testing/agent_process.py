"""A ``prodstate agent`` process beside one harness Redis."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from prodstate.testing.process import ManagedProcess
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until


class AgentProcess(ManagedProcess):
    """``python -m prodstate agent`` for one node, started through the real command line.

    Each agent serves its metrics and ``/healthz`` on a loopback port the kernel picks
    (``--metrics-port 0``, so no other process can take it first); ``metrics_url`` reads
    it from the agent's log.
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
        cold_start_wait: float = 0.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.node_id = node_id
        self.tier = tier
        self.redis = redis
        #: Where the agent keeps its ZooKeeper session for a restart (``--state-dir``).
        self.state_dir = Path(workdir) / "agents" / f"{node_id}.state"
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
            "--cold-start-wait",  # off by default: test clusters start ~5 s sooner
            str(cold_start_wait),
            "--metrics-port",
            "0",
            "--metrics-host",
            "127.0.0.1",
            "--state-dir",
            str(self.state_dir),
            *extra_args,
        ]
        # Only its command line: not the machine's /etc/prodstate/prodstate.toml.
        env = {"PRODSTATE_CONFIG": os.devnull}
        super().__init__(f"agent-{node_id}", argv, Path(workdir) / "agents", env=env)

    def forget_session(self) -> None:
        """Remove the saved session (while stopped): the next start opens a new one, as
        an agent whose state directory was lost."""
        for saved in self.state_dir.glob("*.session"):
            saved.unlink()

    @property
    def metrics_url(self) -> str:
        """Base URL of this agent's HTTP endpoint (append ``/metrics`` or ``/healthz``);
        waits for the running agent to log the address it bound."""
        return "http://" + wait_until(self._metrics_address, timeout=15, what="metrics address")

    def _metrics_address(self) -> str | None:
        """The address in the latest "serving /metrics" log line, if any."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return None
        found = _METRICS_ADDRESS.findall(text[text.rfind("--- start ") :])
        return found[-1] if found else None


_METRICS_ADDRESS = re.compile(r"metrics_address=(\S+)")
