"""A redis-py client with the agent's short timeouts, for clients and tools (the agent
itself uses :class:`prodstate.redis.link.Link`)."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from prodstate.core.model import parse_address
from prodstate.security.credentials import Secret
from prodstate.security.tls import TlsFiles


def connect(
    address: str,
    timeout: float = 1.0,
    *,
    user: Secret | None = None,
    tls: TlsFiles | None = None,
) -> redis.Redis:
    """A redis-py client for ``host:port`` with short timeouts, never retrying by itself;
    as ``user`` (AUTH) and over TLS when given."""
    host, port = parse_address(address)
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        username=user.user if user else None,
        password=user.password if user else None,
        **(tls.redis_kwargs() if tls else {}),
    )
