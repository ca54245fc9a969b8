"""The agent loop's wake-up flag, waited on alone or beside a socket."""

from __future__ import annotations

import socket
import threading
import time

from prodstate.agent.waker import Waker


def test_it_behaves_as_an_event():
    waker = Waker()
    assert not waker.is_set() and waker.wait(0.01) is False
    waker.set()
    assert waker.is_set() and waker.wait(0) is True
    waker.clear()
    assert not waker.is_set()


def test_a_set_from_another_thread_ends_a_wait_beside_a_socket():
    waker = Waker()
    quiet, _ = socket.socketpair()
    threading.Timer(0.05, waker.set).start()
    started = time.monotonic()
    assert waker.wait_with(quiet, 10.0) == (True, False)
    assert time.monotonic() - started < 5.0
    waker.clear()
    assert waker.wait_with(quiet, 0.01) == (False, False)  # cleared: the pipe is empty


def test_the_socket_turning_readable_ends_the_wait_too():
    waker = Waker()
    near, far = socket.socketpair()
    far.send(b"x")
    assert waker.wait_with(near, 10.0) == (False, True)


def test_many_sets_never_block_the_setter():
    waker = Waker()
    for _ in range(200_000):  # more than a pipe holds
        waker.set()
    waker.clear()
    assert not waker.is_set()
