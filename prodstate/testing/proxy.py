"""A TCP proxy on loopback that a test can cut or slow, to partition or delay one process.

``cut()`` is a black hole, like a network partition: connections stay open but
nothing crosses in either direction, and new connections are accepted and held
without reaching the server. ``reject()`` is a noisy cut, like a firewall that
answers with resets: every open connection is closed with a TCP reset on both
sides (the peers see ECONNRESET, not EOF), and every new one is reset at once.
``heal()`` undoes either and lets traffic flow again; ``reset()`` closes every
connection once, with a plain close, and accepts new ones (a crash of the path
rather than a partition). ``cut(source=IP)`` and ``reject(source=IP)`` do the
same to the connections coming from one source address only, and ``delay()``
holds the bytes going one way for a random time around a mean, in order, like
``tc netem delay`` on the sender's interface.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

from prodstate.core.model import format_address, parse_address

_CHUNK = 65536
#: SO_LINGER on, zero seconds: close() then sends a reset instead of a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)
#: Directions of delay(): bytes the client sends, or bytes the server sends back.
TO_SERVER, TO_CLIENT = "to_server", "to_client"


@dataclass(frozen=True)
class Delay:
    """Hold bytes ``mean`` +- ``jitter`` seconds (uniform), never reordering them."""

    mean: float
    jitter: float = 0.0

    def sample(self) -> float:
        return max(0.0, random.uniform(self.mean - self.jitter, self.mean + self.jitter))


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` until cut, rejected, healed, reset or stopped."""

    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = parse_address(target)
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.address = format_address(host, self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._clients: set[socket.socket] = set()  # the accepted side of each pair
        self._source: dict[socket.socket, str] = {}  # both sides -> the client's address
        self._pending: list[tuple[socket.socket, str]] = []
        self._queues: dict[socket.socket, deque[tuple[float, bytes]]] = {}  # by receiver
        self._lock = threading.Lock()
        self._cut = False
        self._cut_sources: set[str] = set()
        self._rejected = False
        self._rejected_sources: set[str] = set()
        self._delays: dict[tuple[str, str | None], Delay] = {}
        self._running = False
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._thread = threading.Thread(target=self._loop, name=f"proxy-{self.address}")
        self._thread.daemon = True

    @property
    def is_cut(self) -> bool:
        """True while the proxy forwards nothing (cut or rejected for every source)."""
        return self._cut or self._rejected

    @property
    def connections(self) -> int:
        """Client connections currently open through the proxy (held ones included)."""
        with self._lock:
            return len(self._peers) // 2 + len(self._pending)

    def start(self) -> TcpProxy:
        """Start forwarding in a background thread."""
        self._running = True
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, "wakeup")
        self._thread.start()
        return self

    def cut(self, source: str | None = None) -> None:
        """Stop forwarding in both directions and hold new connections (a partition): every
        connection, or only those from client address ``source``."""
        if source is None:
            self._cut = True
        else:
            self._cut_sources.add(source)
        self._poke()

    def reject(self, source: str | None = None) -> None:
        """Reset every open connection (both sides) and every new one at once, until healed: all
        connections, or only those from client address ``source``."""
        if source is None:
            self._rejected = True
        else:
            self._rejected_sources.add(source)
        self._poke()

    def heal(self, source: str | None = None) -> None:
        """End cut() and reject(): forward again (connections held while cut included), for
        everything, or for ``source``."""
        if source is None:
            self._cut = self._rejected = False
            self._cut_sources.clear()
            self._rejected_sources.clear()
        else:
            self._cut_sources.discard(source)
            self._rejected_sources.discard(source)
        self._poke()

    def delay(
        self,
        mean: float,
        jitter: float = 0.0,
        direction: str = TO_CLIENT,
        source: str | None = None,
    ) -> None:
        """Hold the bytes going ``direction`` for ``mean`` +- ``jitter`` seconds, on every
        connection or on those from client address ``source``."""
        if direction not in (TO_SERVER, TO_CLIENT):
            raise ValueError(f"direction must be {TO_SERVER!r} or {TO_CLIENT!r}")
        self._delays[(direction, source)] = Delay(mean, jitter)
        self._poke()

    def undelay(self) -> None:
        """Forward without delay again (bytes already held still arrive in order)."""
        self._delays.clear()
        self._poke()

    def reset(self) -> None:
        """Close every connection through the proxy now; new ones are still accepted."""
        self._poke(b"r")

    def stop(self) -> None:
        """Close everything and end the thread."""
        if not self._running:
            return
        self._running = False
        self._poke()
        self._thread.join(timeout=5)
        self._close_all()
        for sock in (self._listener, self._wakeup_r, self._wakeup_w):
            sock.close()
        self._selector.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the forwarding thread -------------------------------------------------------------

    def _poke(self, what: bytes = b"x") -> None:
        with contextlib.suppress(OSError):
            self._wakeup_w.send(what)

    def _loop(self) -> None:
        while self._running:
            self._sync_registrations()
            for key, _ in self._selector.select(timeout=self._next_due()):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wakeup":
                    with contextlib.suppress(OSError):
                        if b"r" in self._wakeup_r.recv(1024):
                            self._close_all()
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]
            self._send_due()

    def _is_cut(self, source: str) -> bool:
        return self._cut or source in self._cut_sources

    def _is_rejected(self, source: str) -> bool:
        return self._rejected or source in self._rejected_sources

    def _delay_for(self, receiver: socket.socket) -> Delay | None:
        direction = TO_CLIENT if receiver in self._clients else TO_SERVER
        source = self._source.get(receiver)
        return self._delays.get((direction, source)) or self._delays.get((direction, None))

    def _accept(self) -> None:
        try:
            client, peer = self._listener.accept()
        except BlockingIOError:
            return
        if self._is_rejected(peer[0]):
            _close(client, reset=True)
            return
        with self._lock:
            self._pending.append((client, peer[0]))

    def _reset_rejected(self) -> None:
        """Reset every connection, held or forwarding, whose source is rejected."""
        if not (self._rejected or self._rejected_sources):
            return
        with self._lock:
            held = [c for c, source in self._pending if self._is_rejected(source)]
            self._pending = [(c, s) for c, s in self._pending if c not in held]
            pairs = [c for c in self._clients if self._is_rejected(self._source.get(c, ""))]
        for client in held:
            _close(client, reset=True)
        for client in pairs:
            self._close_pair(client, reset=True)

    def _connect_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        held = []
        for client, source in pending:
            if self._is_cut(source):
                held.append((client, source))
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setblocking(False)
            with self._lock:
                self._peers[client] = upstream
                self._peers[upstream] = client
                self._clients.add(client)
                self._source[client] = self._source[upstream] = source
        with self._lock:
            self._pending.extend(held)

    def _sync_registrations(self) -> None:
        """Watch every connection that is forwarding; none that is cut; reset rejected ones."""
        self._reset_rejected()
        self._connect_pending()
        with self._lock:
            socks = list(self._peers)
        for sock in socks:
            registered = sock in self._selector.get_map()
            cut = self._is_cut(self._source.get(sock, ""))
            if cut and registered:
                self._selector.unregister(sock)
            elif not cut and not registered:
                self._selector.register(sock, selectors.EVENT_READ, "data")

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        source = self._source.get(sock, "")
        if self._is_cut(source) or self._is_rejected(source):
            return  # cut or rejected since the select: the next loop unregisters or resets it
        try:
            data = sock.recv(_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._close_pair(sock)
            return
        delay = self._delay_for(peer)
        queue = self._queues.get(peer)
        if delay is None and not queue:
            self._send(peer, data)
            return
        due = time.monotonic() + (delay.sample() if delay else 0.0)
        queue = self._queues.setdefault(peer, deque())
        if queue:
            due = max(due, queue[-1][0])  # in order, like netem without reordering
        queue.append((due, data))

    def _next_due(self) -> float:
        dues = [q[0][0] for q in self._queues.values() if q]
        return 0.5 if not dues else max(0.0, min(0.5, min(dues) - time.monotonic()))

    def _send_due(self) -> None:
        now = time.monotonic()
        for receiver, queue in list(self._queues.items()):
            if self._is_cut(self._source.get(receiver, "")):
                continue
            while queue and queue[0][0] <= now and receiver in self._peers:
                self._send(receiver, queue.popleft()[1])
            if not queue or receiver not in self._peers:
                self._queues.pop(receiver, None)

    def _send(self, receiver: socket.socket, data: bytes) -> None:
        try:
            receiver.settimeout(2)
            receiver.sendall(data)
            receiver.setblocking(False)
        except OSError:
            self._close_pair(receiver)

    def _close_pair(self, sock: socket.socket, reset: bool = False) -> None:
        with self._lock:
            peer = self._peers.pop(sock, None)
            if peer is not None:
                self._peers.pop(peer, None)
            for s in (sock, peer):
                self._clients.discard(s)  # type: ignore[arg-type]
                self._source.pop(s, None)  # type: ignore[arg-type]
                self._queues.pop(s, None)  # type: ignore[arg-type]
        for s in (sock, peer):
            if s is None:
                continue
            if s in self._selector.get_map():
                self._selector.unregister(s)
            _close(s, reset)

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._peers) + [c for c, _ in self._pending]
            self._peers.clear()
            self._pending = []
            self._clients.clear()
            self._source.clear()
            self._queues.clear()
        for sock in socks:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()


def _close(sock: socket.socket, reset: bool = False) -> None:
    """Close ``sock``; with ``reset``, by a TCP reset (the peer's next call: ECONNRESET)."""
    if reset:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()
