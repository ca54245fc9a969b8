"""Free TCP ports on loopback, chosen outside the kernel's ephemeral range.

A port from ``bind(("", 0))`` comes from the ephemeral range, which is also where
every outgoing connection takes its local port: between picking such a port and
the server binding it, a client connection elsewhere in the test run can grab it.
Ports below the ephemeral range are never handed out that way.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000
#: Ports this process has handed out: a server built but not yet started holds none, so
#: without this two servers of one cluster could be given the same port.
_handed_out: set[int] = set()
_lock = threading.Lock()


def _candidates() -> range:
    """Ports below the ephemeral range (or a fixed band if the range is unreadable), and
    of those this worker's share when pytest-xdist runs the tests in several processes:
    two workers then never pick the same port between picking and binding it."""
    try:
        low = int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    band = range(_LOWEST, low) if low - _LOWEST >= 1000 else range(20000, 30000)
    return _share(band, os.environ.get("PYTEST_XDIST_WORKER", ""),
                  os.environ.get("PYTEST_XDIST_WORKER_COUNT", ""))  # fmt: skip


def _share(band: range, worker: str, count: str) -> range:
    """Worker ``gwN``'s slice of ``band`` out of ``count`` (all of it outside xdist)."""
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit()):
        return band
    n, total = int(worker[2:]), max(int(count), 1)
    size = len(band) // total
    return range(band.start + n * size, band.start + (n + 1) * size) if n < total else band


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` ports that were free on ``host`` a moment ago, never one this
    process has been given before; another process may still take one before the caller
    binds it, which the harness reports as a failed start."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    pool = _candidates()
    with _lock:
        try:
            ports = _pick(pool, count, host, sockets)
        finally:
            for sock in sockets:
                sock.close()
        _handed_out.update(ports)
    if len(ports) < count:
        raise OSError(f"found only {len(ports)} of {count} free ports on {host}")
    return ports


def _pick(pool: range, count: int, host: str, sockets: list[socket.socket]) -> list[int]:
    ports: list[int] = []
    for port in random.sample(pool, min(len(pool), 50 * count + 100)):
        if len(ports) == count:
            break
        if port in _handed_out:
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
        ports.append(port)
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """Return one port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]
