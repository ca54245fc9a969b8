"""The one HTTP GET of ``check --agent``: responses parsed, bounded, or refused."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.ops.http_get import MAX_RESPONSE, BadResponse, get, parse_response


@pytest.mark.parametrize(
    ("data", "status", "body"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, b"{}"),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", 404, b""),
        (b"HTTP/1.0 200\r\n\r\na\r\n\r\nb", 200, b"a\r\n\r\nb"),
    ],
)
def test_responses(data, status, body):
    assert parse_response(data) == (status, body)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "no end of the headers"),
        (b"HTTP/1.0 200 OK\r\n", "no end of the headers"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.0 2000 OK\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/2 200\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.0\r\n\r\n", "not an HTTP status line"),
    ],
)
def test_what_is_not_a_response(data, why):
    with pytest.raises(BadResponse, match=why):
        parse_response(data)


@given(st.binary(max_size=200) | st.builds(lambda b: b"HTTP/1.0 " + b, st.binary(max_size=60)))
def test_any_bytes_are_a_response_or_refused(data):
    try:
        status, body = parse_response(data)
    except BadResponse as exc:
        assert str(exc)
    else:
        assert 0 <= status <= 999 and len(body) < len(data)


def serve_once(answer: bytes) -> tuple[int, threading.Thread, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            with contextlib.suppress(OSError):  # the client may stop reading
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, listener


def test_get_reads_until_the_server_closes():
    port, thread, listener = serve_once(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 9000)
    with listener:
        assert get("127.0.0.1", port, "/freshness", 5) == (200, b"x" * 9000)
    thread.join(5)


def test_get_refuses_an_endless_response():
    port, thread, listener = serve_once(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (2 * MAX_RESPONSE))
    with listener, pytest.raises(BadResponse, match="over"):
        get("127.0.0.1", port, "/freshness", 5)
    thread.join(5)
