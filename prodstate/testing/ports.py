"""Free TCP ports on loopback, chosen outside the kernel's ephemeral range.

A port from ``bind(("", 0))`` comes from the ephemeral range, which is also where
every outgoing connection takes its local port: between picking such a port and
the server binding it, a client connection elsewhere in the test run can grab it.
Ports below the ephemeral range are never handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000


def _candidates() -> range:
    """Ports below the ephemeral range (or a fixed band if the range is unreadable)."""
    try:
        low = int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(_LOWEST, low) if low - _LOWEST >= 1000 else range(20000, 30000)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct ports that were free on ``host`` a moment ago.

    The sockets are held open together so the same port is not returned twice; another
    process may still take one before the caller binds it, which the harness reports as
    a failed start.
    """
    sockets: list[socket.socket] = []
    ports: list[int] = []
    pool = _candidates()
    try:
        for port in random.sample(pool, min(len(pool), 50 * count + 100)):
            if len(ports) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    if len(ports) < count:
        raise OSError(f"found only {len(ports)} of {count} free ports on {host}")
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """Return one port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]
