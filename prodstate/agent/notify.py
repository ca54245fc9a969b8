"""systemd's readiness protocol (``Type=notify``), without libsystemd.

The agent tells the service manager ``READY=1`` once it is a member of the tree (registered
in ZooKeeper, its Redis reachable) and ``STOPPING=1`` when asked to stop. Outside systemd
(no ``$NOTIFY_SOCKET``) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from prodstate.core.model import Snapshot, ZkState

log = logging.getLogger("prodstate.agent.notify")


def notify_address(environ: Mapping[str, str]) -> str | None:
    """The socket address in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for Linux's abstract
    namespace, which becomes a leading NUL byte); None when it is unset or empty.
    ValueError for a kind of address this function cannot send to (systemd's ``vsock:``)."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    raise ValueError(f"unsupported NOTIFY_SOCKET address {address!r}")


def sd_notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (newline-separated ``KEY=value`` assignments, e.g. ``"READY=1"``) to
    the service manager as one datagram. False if there is none to tell; OSError or
    ValueError if the datagram cannot be sent."""
    address = notify_address(environ)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True


def is_member(s: Snapshot) -> bool:
    """Whether the agent is in the tree: registered in ZooKeeper with its Redis reachable."""
    return s.registered is not None and s.zk_state is ZkState.CONNECTED and s.redis.reachable


class ServiceNotifier:
    """What the agent tells systemd: ready once (the first snapshot that shows it a member
    of the tree), then stopping. A failed send is logged, never fatal."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environ = environ
        self.ready = False
        self.stopping = False

    def observe(self, s: Snapshot | None) -> None:
        """After a tick: ``READY=1`` the first time the snapshot shows a member."""
        if self.ready or self.stopping or s is None or not is_member(s):
            return
        self.ready = True
        role = "the root" if s.holds_root else f"a {s.tier}"
        self._send(f"READY=1\nSTATUS=in the tree as {role}")

    def stop(self) -> None:
        """On SIGTERM: ``STOPPING=1`` (a serving root hands over before it exits)."""
        if self.stopping:
            return
        self.stopping = True
        self._send("STOPPING=1\nSTATUS=stopping")

    def _send(self, state: str) -> None:
        try:
            sent = sd_notify(state, self.environ)
        except (OSError, ValueError) as exc:
            log.warning(
                "cannot notify systemd", extra={"state": state.split("\n")[0], "error": str(exc)}
            )
            return
        if sent:
            log.info("notified systemd", extra={"state": state.split("\n")[0]})
