"""Free TCP ports on loopback."""

from __future__ import annotations

import socket


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct ports that were free on ``host`` a moment ago.

    The sockets are held open together so the kernel cannot hand out the same
    port twice; another process may still take one before the caller binds it,
    which the harness reports as a failed start.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """Return one port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]
