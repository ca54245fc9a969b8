"""A wake-up flag that the agent's loop can wait on together with a socket.

ZooKeeper's watches and state changes arrive on kazoo's thread, and wake the loop; a
resting agent also waits for Redis to notify the heartbeat. ``threading.Event`` cannot be
waited on beside a socket, so this is an Event whose :meth:`Waker.set` also makes a pipe
readable.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from typing import Protocol


class Waitable(Protocol):
    def fileno(self) -> int: ...


class Waker:
    """``set``/``clear``/``is_set``/``wait`` as ``threading.Event``, and :meth:`wait_with`
    to wait for either a set or another file to turn readable."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._flag.set()
        # A full pipe is readable already; a closed one belongs to an agent that stopped.
        with contextlib.suppress(OSError):
            os.write(self._write, b"w")

    def clear(self) -> None:
        self._flag.clear()
        with contextlib.suppress(OSError):  # BlockingIOError once the pipe is empty
            while os.read(self._read, 4096):
                pass

    def is_set(self) -> bool:
        return self._flag.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once set (at once if it is), False after ``timeout`` seconds."""
        return self._flag.wait(timeout)

    def wait_with(self, other: Waitable, timeout: float) -> tuple[bool, bool]:
        """Wait up to ``timeout`` seconds for a set or for ``other`` to be readable:
        (set, other readable)."""
        if self._flag.is_set():
            return True, False
        readable, _, _ = select.select([self._read, other], [], [], max(0.0, timeout))
        return self._flag.is_set(), other in readable
