"""redis-server on a free loopback port, persistence off unless asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import redis

from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess

REDIS_SERVER = os.environ.get("PRODSTATE_REDIS_SERVER", "redis-server")


class RedisServer(ManagedProcess):
    """A private redis-server. ``persistence=True`` saves an RDB on shutdown.

    With persistence off, a master restarts empty, like a machine whose Redis
    lost its data, but a replica keeps the RDB its last full sync wrote and
    loads it; with persistence on, SIGTERM saves the dataset together with the
    replication id and offset, so the restarted server can partial-resync.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "redis",
        port: int | None = None,
        host: str = "127.0.0.1",
        persistence: bool = False,
        config: dict[str, str] | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        """``client_options``: redis-py arguments (credentials, TLS) for :meth:`client`."""
        self.host = host
        self.port = port or free_port(host)
        self.client_options = dict(client_options or {})
        self.persistence = persistence
        workdir = Path(workdir) / name
        settings = {
            "port": str(self.port),
            "bind": host,
            "dir": str(workdir),
            "dbfilename": "dump.rdb",
            "save": '"3600 1"' if persistence else '""',
            "appendonly": "no",
            "daemonize": "no",
            "logfile": '""',
            **(config or {}),
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "redis.conf"
        self.config_path.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
        super().__init__(name, [REDIS_SERVER, str(self.config_path)], workdir, ready=self._is_up)

    @property
    def address(self) -> str:
        """``host:port``, as agents and clients name this server."""
        return f"{self.host}:{self.port}"

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client for this server (decoded strings, short timeouts)."""
        options: dict = {"socket_timeout": 5, "socket_connect_timeout": 2, "decode_responses": True}
        options.update(self.client_options)
        options.update(kwargs)
        return redis.Redis(host=self.host, port=self.port, **options)

    def info(self, section: str | None = None) -> dict:
        """``INFO [section]`` as a dict."""
        with self.client() as conn:
            return conn.info(section) if section else conn.info()

    def in_sync(self) -> bool:
        """True if this replica's link to its master is up and no full sync is under way."""
        info = self.info("replication")
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    def _is_up(self) -> bool:
        try:
            with self.client(socket_timeout=1) as conn:
                return bool(conn.ping()) and conn.info("persistence").get("loading") == 0
        except redis.RedisError:
            return False
