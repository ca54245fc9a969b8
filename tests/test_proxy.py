"""The cuttable TCP proxy, against an echo server on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from prodstate.core.model import format_address
from prodstate.testing.proxy import TO_CLIENT, TO_SERVER, TcpProxy
from prodstate.testing.wait import wait_until


@pytest.fixture
def echo() -> Iterator[str]:
    """An echo server on loopback; yields its address."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a reset from the proxy ends it too
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


def connect_from(proxy: TcpProxy, source: str, timeout: float = 2.0) -> socket.socket:
    host, _, port = proxy.address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout, source_address=(source, 0))


def test_cut_by_source_holds_only_that_sources_connections(echo):
    with (
        TcpProxy(echo) as proxy,
        connect_from(proxy, "127.0.1.7", timeout=0.3) as cut,
        connect(proxy) as other,
    ):
        assert roundtrip(cut, b"a") == b"a"
        proxy.cut(source="127.0.1.7")
        cut.sendall(b"held")
        assert roundtrip(other, b"flows") == b"flows"
        with pytest.raises(TimeoutError):
            cut.recv(100)
        with connect_from(proxy, "127.0.1.7", timeout=0.3) as new:
            new.sendall(b"new")
            with pytest.raises(TimeoutError):
                new.recv(100)
            proxy.heal(source="127.0.1.7")
            new.settimeout(2)
            assert new.recv(100) == b"new"
        cut.settimeout(2)
        assert cut.recv(100) == b"held"


def timed_roundtrip(sock: socket.socket, payload: bytes) -> float:
    started = time.monotonic()
    assert roundtrip(sock, payload) == payload
    return time.monotonic() - started


@pytest.mark.parametrize("direction", [TO_SERVER, TO_CLIENT])
def test_delay_holds_one_direction_in_order(echo, direction):
    with TcpProxy(echo) as proxy, connect(proxy) as sock:
        baseline = timed_roundtrip(sock, b"x")
        proxy.delay(0.3, 0.05, direction=direction)
        payload = b"".join(b"%04d" % i for i in range(2000))
        for _ in range(3):
            elapsed = timed_roundtrip(sock, payload)  # also checks the order is kept
            assert 0.25 <= elapsed < 0.25 + 1.0 + baseline
        proxy.undelay()
        assert timed_roundtrip(sock, b"y") < 0.25


def test_delay_by_source_leaves_other_clients_alone(echo):
    with TcpProxy(echo) as proxy:
        proxy.delay(0.4, direction=TO_SERVER, source="127.0.1.8")
        with connect_from(proxy, "127.0.1.8") as slow, connect(proxy) as fast:
            assert timed_roundtrip(slow, b"s") >= 0.4
            assert timed_roundtrip(fast, b"f") < 0.4


# --- reject: the noisy cut ---------------------------------------------------------------------


def assert_reset_at_once(proxy: TcpProxy, source: str) -> None:
    """A new connection from ``source`` is reset: its connect() or its first recv() says so."""
    with pytest.raises(ConnectionResetError), connect_from(proxy, source) as sock:
        sock.recv(10)


def test_reject_resets_open_connections_on_both_sides():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(2)
        with TcpProxy(format_address("127.0.0.1", listener.getsockname()[1])) as proxy:
            client = connect(proxy)
            server, _ = listener.accept()
            with client, server:
                server.settimeout(2)
                client.sendall(b"ping")
                assert server.recv(10) == b"ping"
                proxy.reject()
                with pytest.raises(ConnectionResetError):
                    client.recv(10)
                with pytest.raises(ConnectionResetError):
                    server.recv(10)
                wait_until(lambda: proxy.connections == 0, timeout=5, what="connections closed")


def test_new_connections_are_reset_while_rejected_and_heal_forwards_again(echo):
    with TcpProxy(echo) as proxy:
        proxy.reject()
        assert proxy.is_cut
        for _ in range(2):
            assert_reset_at_once(proxy, "127.0.0.1")
        assert proxy.connections == 0
        proxy.heal()
        assert not proxy.is_cut
        with connect(proxy) as sock:
            assert roundtrip(sock, b"again") == b"again"


def test_reject_by_source_resets_only_that_sources_connections(echo):
    with (
        TcpProxy(echo) as proxy,
        connect_from(proxy, "127.0.0.2") as rejected,
        connect_from(proxy, "127.0.0.1") as other,
    ):
        assert roundtrip(rejected, b"a") == b"a"
        assert roundtrip(other, b"b") == b"b"
        proxy.reject(source="127.0.0.2")
        with pytest.raises(ConnectionResetError):
            rejected.recv(10)
        assert roundtrip(other, b"still") == b"still"
        assert_reset_at_once(proxy, "127.0.0.2")
        with connect_from(proxy, "127.0.0.1") as new:
            assert roundtrip(new, b"fine") == b"fine"
        wait_until(lambda: proxy.connections == 1, timeout=5, what="only the other one left")
        proxy.heal(source="127.0.0.2")
        with connect_from(proxy, "127.0.0.2") as healed:
            assert roundtrip(healed, b"back") == b"back"
        assert roundtrip(other, b"untouched") == b"untouched"


def test_reject_resets_connections_held_by_a_cut_and_heal_ends_both(echo):
    with TcpProxy(echo) as proxy:
        proxy.cut(source="127.0.0.2")
        with connect_from(proxy, "127.0.0.2", timeout=0.3) as held:
            held.sendall(b"held")
            with pytest.raises(TimeoutError):
                held.recv(10)
            proxy.reject(source="127.0.0.2")
            held.settimeout(2)
            with pytest.raises(ConnectionResetError):
                held.recv(10)
        proxy.heal(source="127.0.0.2")  # undoes the cut and the reject
        with connect_from(proxy, "127.0.0.2") as sock:
            assert roundtrip(sock, b"flows") == b"flows"
