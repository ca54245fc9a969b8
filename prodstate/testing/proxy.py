"""A TCP proxy on loopback that a test can cut, to partition one process from a server.

``cut()`` is a black hole, like a network partition: connections stay open but
nothing crosses in either direction, and new connections are accepted and held
without reaching the server. ``heal()`` lets traffic flow again; ``reset()``
closes every connection at once (a crash of the path rather than a partition).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from prodstate.model import format_address, parse_address

_CHUNK = 65536


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` until cut, healed, reset or stopped."""

    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = parse_address(target)
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.address = format_address(host, self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._pending: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        self._running = False
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._thread = threading.Thread(target=self._loop, name=f"proxy-{self.address}")
        self._thread.daemon = True

    @property
    def is_cut(self) -> bool:
        """True while the proxy forwards nothing."""
        return self._cut

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

    def cut(self) -> None:
        """Stop forwarding in both directions; hold new connections (a partition)."""
        self._cut = True
        self._poke()

    def heal(self) -> None:
        """Forward again, including connections accepted while cut."""
        self._cut = False
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
            for key, _ in self._selector.select(timeout=0.5):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wakeup":
                    with contextlib.suppress(OSError):
                        if b"r" in self._wakeup_r.recv(1024):
                            self._close_all()
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            self._pending.append(client)

    def _connect_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for client in pending:
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

    def _sync_registrations(self) -> None:
        """Watch every connection while forwarding; none while cut."""
        if not self._cut:
            self._connect_pending()
        with self._lock:
            socks = list(self._peers)
        for sock in socks:
            registered = sock in self._selector.get_map()
            if self._cut and registered:
                self._selector.unregister(sock)
            elif not self._cut and not registered:
                self._selector.register(sock, selectors.EVENT_READ, "data")

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.settimeout(2)
                peer.sendall(data)
                peer.setblocking(False)
                return
        except OSError:
            pass
        self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._peers.pop(sock, None)
            if peer is not None:
                self._peers.pop(peer, None)
        for s in (sock, peer):
            if s is None:
                continue
            if s in self._selector.get_map():
                self._selector.unregister(s)
            s.close()

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._peers) + self._pending
            self._peers.clear()
            self._pending = []
        for sock in socks:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
