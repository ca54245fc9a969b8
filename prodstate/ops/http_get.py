"""One HTTP/1.0 GET of a small document: how ``prodstate check --agent`` asks the local
agent's ``/freshness``.

:mod:`http.client` would cost the check more than its whole Redis read (it loads the
``email`` package and :mod:`ssl`); the agent's server (``http.server``) answers an HTTP/1.0
request with one response and closes, so a status line, headers and a body read until the
connection closes, bounded in size, are all there is to it.
"""

from __future__ import annotations

import socket

#: The most bytes read of a response, headers included.
MAX_RESPONSE = 16 * 1024


class BadResponse(ValueError):
    """The server's answer is not an HTTP response, or is longer than the bound."""


def parse_response(data: bytes) -> tuple[int, bytes]:
    """(status code, body) of a complete HTTP/1.x response; BadResponse otherwise."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        raise BadResponse("no end of the headers")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    version, code = parts[0], parts[1] if len(parts) > 1 else b""
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadResponse(f"not an HTTP status line: {status_line[:60]!r}")
    return int(code), body


def get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """GET ``path`` from ``host:port``: (status, body). OSError if the server cannot be
    reached or does not answer within ``timeout`` (each socket operation); BadResponse if
    the answer is not HTTP or is over :data:`MAX_RESPONSE` bytes."""
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks, size = [], 0
        while chunk := sock.recv(4096):
            size += len(chunk)
            if size > MAX_RESPONSE:
                raise BadResponse(f"response over {MAX_RESPONSE} bytes")
            chunks.append(chunk)
    return parse_response(b"".join(chunks))
