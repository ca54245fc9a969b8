"""What an agent is told: ``prodstate agent``'s options, with their defaults, as one record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prodstate.core.freshness import DEFAULT_POLICY, FreshnessPolicy
from prodstate.core.model import Tier, parse_address
from prodstate.security.credentials import NONE as NO_CREDENTIALS
from prodstate.security.credentials import Credentials
from prodstate.security.tls import TlsFiles

#: The agent's default replication backlog (``--backlog-size``).
DEFAULT_BACKLOG = "64mb"


def replication_settings(backlog_size: str = DEFAULT_BACKLOG) -> dict[str, str]:
    """How every Redis of the tree replicates (a part of :meth:`AgentConfig.redis_settings`;
    benchmarks wire plain Redis trees with it): a backlog that never expires, and full
    syncs streamed from memory."""
    return {
        "repl-backlog-size": backlog_size,
        "repl-backlog-ttl": "0",
        "repl-diskless-sync": "yes",
    }


@dataclass(frozen=True)
class AgentConfig:
    """Everything an agent needs; see ``prodstate agent --help``."""

    zk: str
    cluster: str
    tier: Tier
    node_id: str
    redis: str
    advertise: str
    session_timeout: float = 10.0
    tick: float = 0.2
    #: Seconds between decisions while the agent rests (see :mod:`prodstate.core.rest`):
    #: a healthy replica then reads only its heartbeat and role once per heartbeat
    #: interval. 0: never rests.
    rest_interval: float = 5.0
    jitter: float = 0.5
    #: Seconds between full re-reads of ZooKeeper (a safety net: watches drive the reads
    #: between them); None: 60 on every tier (see ``full_read_interval``).
    refresh_interval: float | None = None
    backlog_size: str = DEFAULT_BACKLOG
    #: Seconds an empty leaf waits for a syncing branch before loading from the root.
    cold_start_wait: float = 30.0
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    #: Seconds between reads of the local Redis's sync counters and heartbeat, for metrics.
    metrics_interval: float = 1.0
    #: The heartbeat period and the freshness thresholds.
    freshness: FreshnessPolicy = DEFAULT_POLICY
    credentials: Credentials = field(default=NO_CREDENTIALS, repr=False)
    tls: TlsFiles | None = None
    zk_tls: TlsFiles | None = None
    #: Where the agent keeps its ZooKeeper session for a restart (None: it does not, and
    #: every restart starts a new session).
    state_dir: str | None = "/var/lib/prodstate"

    @property
    def full_read_interval(self) -> float:
        """``refresh_interval``, or 60 s.

        A full re-read is 14 requests against ZooKeeper per agent (with 10 branches):
        ~14,000/s at 10,000 leaves every 10 s. Watches already report every change (kazoo
        drops them only with the connection, and the agent then reads everything again), so
        the full re-read is only a safety net, once a minute on every tier; the root's
        confirmation of its own znode (``confirm_interval``) is what it pays most.
        """
        if self.refresh_interval is not None:
            return self.refresh_interval
        return 60.0

    @property
    def confirm_interval(self) -> float:
        """Seconds between a serving root's reads of its own root znode (at least a tick):
        a sixth of the session timeout. A root also fences at once when kazoo reports the
        connection SUSPENDED (at most two thirds of the session timeout after the last
        answer); the read bounds it sooner on a connection that hangs, well before the
        session can expire and another root be elected."""
        return max(self.tick, self.session_timeout / 6)

    def redis_settings(self) -> dict[str, str]:
        """Redis settings the tree needs, applied with CONFIG SET at start.

        The replica-announce pair makes a master list this Redis by its advertised
        address, which is how clients tell branches' acknowledgements from leaves'.
        """
        host, port = parse_address(self.advertise)
        settings = {
            **replication_settings(self.backlog_size),
            "replica-announce-ip": host,
            "replica-announce-port": str(port),
            # Keyspace notifications for every change, replicated ones too: what
            # ``prodstate render`` and ``watch`` react to (added to the operator's flags).
            "notify-keyspace-events": "KA",
        }
        if self.tls is not None:
            settings["tls-replication"] = "yes"
        return settings

    def redis_options(self) -> dict[str, Any]:
        """How the agent connects to any Redis: as its admin user, over TLS if configured."""
        return {"user": self.credentials.redis_user("admin"), "tls": self.tls}
