"""The minimal RESP client of ``check`` and ``get``: replies parsed, bounded, or refused."""

from __future__ import annotations

import io
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.redis.resp import (
    MAX_LINE,
    Connection,
    ProtocolError,
    ReplyError,
    encode,
    read_reply,
)
from prodstate.security.credentials import Secret


def reply(data: bytes, max_bulk: int = 1024):
    return read_reply(io.BufferedReader(io.BytesIO(data)), max_bulk)


def test_commands_are_arrays_of_bulk_strings():
    assert encode("GET", "k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert encode("SET", "clé", b"\r\n") == b"*3\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$2\r\n\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"+OK\r\n", "OK"),
        (b":42\r\n", 42),
        (b":-1\r\n", -1),
        (b"$3\r\nabc\r\n", b"abc"),
        (b"$0\r\n\r\n", b""),
        (b"$4\r\na\r\nb\r\n", b"a\r\nb"),  # a bulk string is read by its length
        (b"$-1\r\n", None),
        (b"*2\r\n$1\r\na\r\n:5\r\n", [b"a", 5]),
        (b"*1\r\n*1\r\n+OK\r\n", [["OK"]]),
        (b"*0\r\n", []),
        (b"*-1\r\n", None),
    ],
)
def test_replies(data, value):
    assert reply(data) == value


def test_an_error_inside_an_array_is_its_element():
    value = reply(b"*2\r\n-ERR no\r\n:1\r\n")
    assert isinstance(value, list) and value[1] == 1
    assert isinstance(value[0], ReplyError) and value[0].code == "ERR"


def test_an_error_reply_is_raised_with_its_code():
    with pytest.raises(ReplyError, match=r"^NOAUTH Authentication required\.$") as caught:
        reply(b"-NOAUTH Authentication required.\r\n")
    assert caught.value.code == "NOAUTH"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "closed before the reply ended"),
        (b"+OK", "closed before the reply ended"),
        (b"$5\r\nabc", "closed before the reply ended"),
        (b"$3\r\nabcd\r\n", "not ended by CRLF"),
        (b"$2000\r\n" + b"x" * 2002, "bulk string of 2000 bytes (at most 1024 read)"),
        (b"$-2\r\n", "bulk string of -2 bytes"),
        (b"$1x\r\n", "not an integer"),
        (b":--5\r\n", "not an integer"),
        (b":" + b"9" * 30 + b"\r\n", "not an integer"),
        (b"*2\r\n$1\r\na\r\n", "closed before the reply ended"),
        (b"*1\r\n" * 9 + b":1\r\n", "at depth 8 not read"),
        (b"*-2\r\n", "array of -2 elements"),
        (b"%1\r\n", "unexpected reply type"),
        (b"+" + b"x" * (MAX_LINE + 10) + b"\r\n", f"longer than {MAX_LINE} bytes"),
    ],
)
def test_what_is_not_a_reply_this_client_reads(data, why):
    with pytest.raises(ProtocolError, match=why.replace("(", r"\(").replace(")", r"\)")):
        reply(data)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_reply_or_refused(data):
    try:
        value = reply(data, max_bulk=100)
    except (ReplyError, ProtocolError) as exc:
        assert str(exc)
    else:
        assert value is None or isinstance(value, bytes | str | int)
        assert not isinstance(value, bytes) or len(value) <= 100


@given(st.binary(max_size=2000))
def test_any_bulk_string_reads_back(value):
    assert reply(b"$%d\r\n%s\r\n" % (len(value), value), max_bulk=2000) == value


class ScriptedServer:
    """A socket on loopback that plays ``script``: for each (request, reply), it reads until
    it has received ``request`` in all, then sends ``reply``; ``received`` is what came."""

    def __init__(self, *script: tuple[bytes, bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.script, self.received = script, b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        expected = b""
        with conn:
            for request, answer in self.script:
                expected += request
                while len(self.received) < len(expected):
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    self.received += chunk
                conn.sendall(answer)
            conn.recv(1)  # until the client closes

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def test_the_connection_authenticates_then_pipelines():
    auth = encode("AUTH", "reader", "s3cret")
    gets = encode("GET", "prodstate:time") + encode("GET", "k")
    server = ScriptedServer((auth, b"+OK\r\n"), (gets, b"$4\r\n12.5\r\n$-1\r\n"))
    try:
        with Connection(server.address, 5, user=Secret("reader", "s3cret")) as conn:
            conn.send(("GET", "prodstate:time"), ("GET", "k"))
            assert (conn.reply(), conn.reply()) == (b"12.5", None)
    finally:
        server.close()
    assert server.received == auth + gets


def test_a_refused_password_is_a_reply_error_and_closes_the_socket():
    auth = encode("AUTH", "reader", "wrong")
    server = ScriptedServer((auth, b"-WRONGPASS invalid username-password pair\r\n"))
    try:
        with pytest.raises(ReplyError) as caught:
            Connection(server.address, 5, user=Secret("reader", "wrong"))
        assert caught.value.code == "WRONGPASS"
    finally:
        server.close()


def test_a_silent_server_times_out():
    server = ScriptedServer((b"x" * 10**6, b""))  # never answers
    try:
        with Connection(server.address, 0.2) as conn, pytest.raises(TimeoutError):
            conn.call("GET", "k")
    finally:
        server.close()
