"""The cuttable TCP proxy, against an echo server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from prodstate.model import format_address
from prodstate.testing.proxy import TcpProxy
from prodstate.testing.wait import wait_until


@pytest.fixture
def echo() -> Iterator[str]:
    """An echo server on loopback; yields its address."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield format_address("127.0.0.1", server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def connect(proxy: TcpProxy, timeout: float = 2.0) -> socket.socket:
    host, _, port = proxy.address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def test_forwards_both_ways(echo):
    with TcpProxy(echo) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"hello" * 1000) == b"hello" * 1000


def test_cut_is_a_black_hole_and_heal_resumes(echo):
    with TcpProxy(echo) as proxy, connect(proxy, timeout=0.3) as sock:
        assert roundtrip(sock, b"before") == b"before"
        proxy.cut()
        sock.sendall(b"during")
        with pytest.raises(TimeoutError):
            sock.recv(100)
        proxy.heal()
        sock.settimeout(2)
        assert sock.recv(100) == b"during"


def test_connections_made_while_cut_are_held_then_forwarded(echo):
    with TcpProxy(echo) as proxy:
        proxy.cut()
        with connect(proxy, timeout=0.3) as sock:
            sock.sendall(b"queued")
            with pytest.raises(TimeoutError):
                sock.recv(100)
            proxy.heal()
            sock.settimeout(2)
            assert sock.recv(100) == b"queued"


def test_reset_closes_open_connections(echo):
    with TcpProxy(echo) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"x") == b"x"
        proxy.reset()
        wait_until(lambda: proxy.connections == 0, timeout=5, what="connections closed")
        assert sock.recv(10) == b""
        with connect(proxy) as again:
            assert roundtrip(again, b"y") == b"y"
