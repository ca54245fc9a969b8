"""Thin control of one Redis: read its replication state, change its role and fence."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from prodstate.model import (
    FENCE_MIN_REPLICAS,
    UNREACHABLE,
    RedisState,
    format_address,
    parse_address,
)

HEARTBEAT_KEY = "prodstate:time"
EPOCH_KEY = "prodstate:epoch"


def connect(address: str, timeout: float = 1.0) -> redis.Redis:
    """A redis-py client for ``host:port`` with short timeouts, never retrying by itself."""
    host, port = parse_address(address)
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def read_state(conn: redis.Redis) -> RedisState:
    """``INFO`` and ``CONFIG GET`` as a RedisState; UNREACHABLE if Redis does not answer."""
    try:
        pipe = conn.pipeline(transaction=False)
        pipe.info("server")
        pipe.info("replication")
        pipe.info("persistence")
        pipe.config_get("min-replicas-to-write")
        server, repl, persistence, config = pipe.execute()
    except redis.BusyLoadingError:
        return RedisState(reachable=True, loading=True)
    except (redis.RedisError, OSError):
        return UNREACHABLE
    role = repl.get("role", "")
    master = ""
    if role == "slave":
        master = format_address(str(repl.get("master_host", "")), int(repl.get("master_port", 0)))
    return RedisState(
        reachable=True,
        role=role,
        run_id=server.get("run_id", ""),
        replid=repl.get("master_replid", ""),
        replid2=repl.get("master_replid2", ""),
        offset=int(repl.get("master_repl_offset", 0)),
        master=master,
        link_up=repl.get("master_link_status") == "up",
        sync_in_progress=bool(repl.get("master_sync_in_progress", 0)),
        connected_replicas=int(repl.get("connected_slaves", 0)),
        min_replicas_to_write=int(config.get("min-replicas-to-write", 0)),
        loading=bool(persistence.get("loading", 0)),
        replicas=_replicas(repl),
    )


def _replicas(repl: dict) -> tuple[str, ...]:
    """``slaveN`` entries of INFO replication as announced ``host:port`` addresses."""
    found = []
    for key, value in repl.items():
        if key.startswith("slave") and isinstance(value, dict) and "ip" in value:
            found.append(format_address(str(value["ip"]), int(value.get("port", 0))))
    return tuple(sorted(found))


class RedisControl:
    """The local Redis an agent manages (or a peer's, for reads and fencing)."""

    def __init__(self, address: str, timeout: float = 1.0) -> None:
        self.address = address
        self.conn = connect(address, timeout)

    def state(self) -> RedisState:
        """Current state, or UNREACHABLE."""
        return read_state(self.conn)

    def configure(self, settings: dict[str, str]) -> None:
        """``CONFIG SET`` each setting the tree needs (only those that differ)."""
        current = self.conn.config_get("*")
        for key, value in settings.items():
            if str(current.get(key)) != str(value):
                self.conn.config_set(key, value)

    def replicate(self, address: str) -> None:
        """``REPLICAOF`` address."""
        host, port = parse_address(address)
        self.conn.replicaof(host, port)

    def fence(self) -> None:
        """Refuse every write from now on (reads and replication go on)."""
        self.conn.config_set("min-replicas-to-write", FENCE_MIN_REPLICAS)

    def promote(self) -> None:
        """Fence, then ``REPLICAOF NO ONE``: a master that refuses writes until served."""
        self.fence()
        self.conn.replicaof("NO", "ONE")

    def serve(self, min_replicas: int, epoch: int) -> None:
        """Accept writes acknowledged by ``min_replicas`` replicas; record the epoch first."""
        self.conn.config_set("min-replicas-to-write", 0)
        self.conn.set(EPOCH_KEY, epoch)
        self.conn.config_set("min-replicas-to-write", min_replicas)

    def drop_replicas(self) -> None:
        """Close every replica link (aborts full syncs that have not started sending)."""
        self.conn.client_kill_filter(_type="replica")

    def heartbeat(self, now: float) -> bool:
        """Write the heartbeat key (no TTL); False if Redis refused it (e.g. fenced)."""
        try:
            self.conn.set(HEARTBEAT_KEY, f"{now:.6f}")
        except redis.ResponseError:
            return False
        return True

    def close(self) -> None:
        """Close the connection pool."""
        self.conn.close()
