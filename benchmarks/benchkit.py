"""What every benchmark script shares: logging, tables, percentiles, and a clean way out.

The scripts are run as ``python benchmarks/NAME.py``, so this module is imported by its bare
name (the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import selectors
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from prodstate.testing.process import live_processes
from prodstate.testing.wait import wait_until


def log(message: str) -> None:
    """A timestamped progress line on stderr (the figures go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the first row is the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def fmt(seconds: float | None, digits: int = 3) -> str:
    """Seconds for a table cell; ``-`` when there is no figure."""
    return "-" if seconds is None else f"{seconds:.{digits}f}"


def ms(seconds: float, digits: int = 3) -> str:
    """Seconds shown as milliseconds."""
    return f"{seconds * 1000:.{digits}f}"


def nearest_rank(count: int, q: float) -> int:
    """The 1-based rank of the ``q``-th percentile (0-100) among ``count`` sorted values."""
    return max(1, math.ceil(round(q * count / 100, 9)))  # 99.9% of 1000 is 999, not 1000


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; ``values`` must not be empty."""
    return sorted(values)[nearest_rank(len(values), q) - 1]


def median_of(values: Sequence[float | None]) -> float | None:
    """Median of the figures present; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def tick_time_for(session_timeout: float) -> int:
    """ZooKeeper tickTime (ms) that lets ``session_timeout`` be negotiated (2 to 20 ticks)."""
    return max(200, math.ceil(session_timeout * 1000 / 20))


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def run_seconds(pid: int | None) -> float:
    """Seconds a process's live threads have run on a CPU (``/proc/PID/task/*/schedstat``,
    counted in nanoseconds: an idle agent's wake-ups are far shorter than the clock tick
    that ``cpu_seconds`` counts in); 0 once it is gone."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def rss_bytes(pid: int | None) -> int:
    """Resident set size of a process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def resp_command(*args: str | bytes | int) -> bytes:
    """One Redis command in RESP, for a raw socket."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in parts)


class RespReader:
    """Splits a Redis reply stream into messages: arrays of bulk strings and integers, as
    (P)SUBSCRIBE sends them. Bytes are fed as they arrive; whole messages come out."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[list[bytes | int | None]]:
        """Add received bytes; the messages now complete, oldest first."""
        self.buffer += data
        messages = []
        while (parsed := self._one(0)) is not None:
            message, end = parsed
            messages.append(message)
            self.buffer = self.buffer[end:]
        return messages

    def _one(self, pos: int) -> tuple[list[bytes | int | None], int] | None:
        line_end = self.buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        if self.buffer[pos : pos + 1] != b"*":
            raise ValueError(f"expected an array, got {self.buffer[pos : pos + 20]!r}")
        count, pos = int(self.buffer[pos + 1 : line_end]), line_end + 2
        items: list[bytes | int | None] = []
        for _ in range(count):
            line_end = self.buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            kind, value = self.buffer[pos : pos + 1], int(self.buffer[pos + 1 : line_end])
            pos = line_end + 2
            if kind == b":":
                items.append(value)
            elif kind == b"$" and value < 0:
                items.append(None)
            elif kind == b"$":
                if len(self.buffer) < pos + value + 2:
                    return None
                items.append(self.buffer[pos : pos + value])
                pos += value + 2
            else:
                raise ValueError(f"unexpected RESP type {kind!r}")
        return items, pos


def check_output_paths(parser: argparse.ArgumentParser, *paths: Path | None) -> None:
    """A usage error (exit 2) for an output file whose folder does not exist, before any run."""
    for path in paths:
        if path is not None and not path.resolve().parent.is_dir():
            parser.error(f"{path}: its folder {path.resolve().parent} does not exist")


def machine_line() -> str:
    """CPU count and load: figures from one host depend on both."""
    load = os.getloadavg()
    return f"cpus {os.cpu_count()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C, so clusters are stopped on the way out."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Workdir:
    """The benchmark's work dir: ``--dir`` if given (kept), else a temp dir removed on success.

    Used as a context manager; on the way out it stops any process the harness left behind.
    Set ``failed`` to keep a temp dir's logs for a look.
    """

    def __init__(self, given: Path | None) -> None:
        self.given = given
        self.path = given or Path(tempfile.mkdtemp(prefix="prodstate-bench-"))
        self.path.mkdir(parents=True, exist_ok=True)
        self.failed = False

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc: object) -> None:
        left = live_processes()
        if left:  # LocalCluster stops its own; this only guards against a harness bug
            log(f"stopping leftover processes: {left}")
            for proc in left:
                proc.stop(timeout=5)
        if self.given is None and (self.failed or exc[0] is not None):
            log(f"the run failed: its logs are kept in {self.path}")
        elif self.given is None:
            shutil.rmtree(self.path, ignore_errors=True)


def open_socket(address: str) -> socket.socket:
    """A connection to ``host:port``."""
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


class KeyspaceObserver:
    """PSUBSCRIBE connections to every member of every group (group -> member -> address),
    served by one epoll loop: when each member's keyspace notification of a key arrives."""

    def __init__(self, groups: dict[str, dict[str, str]], pattern: str) -> None:
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        try:
            for group, members in groups.items():
                for member, address in members.items():
                    sock = open_socket(address)
                    self.sockets.append(sock)
                    sock.sendall(resp_command("PSUBSCRIBE", pattern))
                    reader = RespReader()
                    wait_until(lambda s=sock, r=reader: r.feed(s.recv(4096)), what="psubscribed")
                    sock.setblocking(False)
                    self.selector.register(sock, selectors.EVENT_READ, (group, member, reader))
        except BaseException:
            self.close()
            raise

    def wait_for(self, group: str, key: bytes, count: int, timeout: float) -> list[float]:
        """Arrival times (monotonic) of ``key``'s notification on the members of ``group``,
        until ``count`` members have it or ``timeout`` passes."""
        channel = b"__keyspace@0__:" + key
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(arrived) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = self.selector.select(left)
            now = time.monotonic()  # the data arrived before select returned
            for selected, _ in ready:
                name, member, reader = selected.data
                data = selected.fileobj.recv(65536)
                if not data:
                    raise ConnectionError(f"{name} {member} closed its subscription")
                for message in reader.feed(data):
                    if name == group and message[2] == channel:
                        arrived.setdefault(member, now)
        return list(arrived.values())

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()
