"""sd_notify and the agent's readiness, against real datagram unix sockets."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodstate.agent.notify import ServiceNotifier, notify_address, sd_notify
from prodstate.core.model import UNREACHABLE, ZkState
from tests.snapshot_builder import root_snap, snap


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A datagram socket bound at a path, as systemd's, and the environment naming it."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, {"NOTIFY_SOCKET": str(path)}


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``, decoded."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(5)


def test_sends_one_datagram_to_a_path(listener):
    sock, env = listener
    assert sd_notify("READY=1\nSTATUS=hello", env) is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=hello"


def test_sends_to_the_abstract_namespace():
    name = f"prodstate-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sd_notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_without_a_service_manager_nothing_is_sent():
    assert sd_notify("READY=1", {}) is False
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_addresses():
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@x/y"}) == "\0x/y"
    with pytest.raises(ValueError, match="vsock"):
        notify_address({"NOTIFY_SOCKET": "vsock:2:1234"})


def test_a_missing_socket_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_ready_once_when_a_member_then_stopping(listener):
    sock, env = listener
    notifier = ServiceNotifier(env)
    notifier.observe(None)
    notifier.observe(snap(registered=None))
    notifier.observe(snap(zk_state=ZkState.SUSPENDED))
    notifier.observe(snap(redis=UNREACHABLE))
    assert received(sock) == []
    notifier.observe(snap())
    notifier.observe(snap())
    assert received(sock) == ["READY=1\nSTATUS=in the tree as a branch"]
    notifier.stop()
    notifier.stop()
    assert received(sock) == ["STOPPING=1\nSTATUS=stopping"]


def test_ready_as_the_root(listener):
    sock, env = listener
    ServiceNotifier(env).observe(root_snap())
    assert received(sock) == ["READY=1\nSTATUS=in the tree as the root"]


def test_not_ready_once_stopping(listener):
    sock, env = listener
    notifier = ServiceNotifier(env)
    notifier.stop()
    notifier.observe(snap())
    assert received(sock) == ["STOPPING=1\nSTATUS=stopping"]


def test_a_failed_send_is_logged_not_raised(tmp_path, caplog):
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="prodstate.agent.notify"):
        notifier.observe(snap())
    assert notifier.ready
    assert [r.getMessage() for r in caplog.records] == ["cannot notify systemd"]
