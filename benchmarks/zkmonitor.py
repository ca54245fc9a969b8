"""What ``zk_sessions.py`` reads from the ZooKeeper servers themselves: ``mntr`` sampled every
second, the JVMs' CPU time and resident memory, ``cons`` per session, and the sessions the
servers' logs say they expired."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import cpu_seconds, rss_bytes

from prodstate.testing.zk_server import ZooKeeperServer

#: ``mntr`` figures sampled (counters are summed over the servers, the rest too but
#: ``zk_max_latency``, whose largest is kept).
KEYS = (
    "zk_packets_received",
    "zk_packets_sent",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_max_latency",
    "zk_avg_latency",
    "zk_watch_count",
    "zk_znode_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_open_file_descriptor_count",
    "zk_throttled_ops",
    "zk_connection_rejected",
)
#: The leader's log line for each session it expires.
EXPIRING = re.compile(rb"Expiring session 0x[0-9a-f]+")
#: One line of ``cons``: " /127.0.0.1:40000[1](queued=0,recved=12,sent=12,sid=0x1..,...)".
CONNECTION = re.compile(r"\((?P<fields>[^)]*sid=0x[0-9a-f]+[^)]*)\)")


def mntr(server: ZooKeeperServer) -> dict[str, float]:
    """A server's numeric ``mntr`` figures ({} while it does not answer)."""
    try:
        text = server.four_letter_word("mntr")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return found


def sessions(servers: Sequence[ZooKeeperServer]) -> dict[int, int]:
    """Session id -> its last client request id (``lcxid``: every request but pings), from
    ``cons`` on every server."""
    found: dict[int, int] = {}
    for server in servers:
        try:
            text = server.four_letter_word("cons")
        except OSError:
            continue
        for match in CONNECTION.finditer(text):
            fields = dict(f.split("=", 1) for f in match["fields"].split(",") if "=" in f)
            sid = int(fields["sid"], 16)
            found[sid] = max(found.get(sid, 0), int(fields.get("lcxid", "0x0"), 16))
    return found


def expired_sessions(servers: Sequence[ZooKeeperServer]) -> int:
    """Sessions the servers' logs say were expired so far (each logged by the leader)."""
    total = 0
    for server in servers:
        try:
            total += len(EXPIRING.findall(Path(server.log_path).read_bytes()))
        except OSError:
            continue
    return total


def jvm_cpu(servers: Sequence[ZooKeeperServer]) -> float:
    """CPU seconds the servers' current JVMs used so far."""
    return sum(cpu_seconds(s.pid) for s in servers if s.running)


def jvm_rss_mb(servers: Sequence[ZooKeeperServer]) -> list[float]:
    """Each server's resident memory, MB (VmRSS)."""
    return [rss_bytes(s.pid) / 2**20 if s.running else 0.0 for s in servers]


@dataclass
class Sample:
    """One round of ``mntr`` over every server."""

    at: float
    per_server: list[dict[str, float]]

    def total(self, key: str) -> float:
        values = [s.get(key, 0.0) for s in self.per_server]
        return max(values, default=0.0) if "max" in key else sum(values)


@dataclass
class Window:
    """The samples of one phase, reduced."""

    samples: list[Sample] = field(default_factory=list)

    def packets(self) -> float:
        """Packets the servers received over the window (a restarted server's count
        starts again from 0)."""
        total = 0.0
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            for before, after in zip(a.per_server, b.per_server, strict=True):
                if not after:
                    continue
                old, new = before.get("zk_packets_received", 0.0), after["zk_packets_received"]
                total += new - old if new >= old else new
        return total

    def peak_rate(self) -> float:
        """The highest packets-received rate between two samples, per second."""
        best = 0.0
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            window = Window([a, b]).packets()
            best = max(best, window / max(1e-6, b.at - a.at))
        return best

    def peak(self, key: str) -> float:
        return max((s.total(key) for s in self.samples), default=0.0)

    def last(self, key: str) -> float:
        return self.samples[-1].total(key) if self.samples else 0.0

    def per_server(self, key: str) -> list[float]:
        """Each server's last figure."""
        return [s.get(key, 0.0) for s in self.samples[-1].per_server] if self.samples else []

    def packets_per_server(self) -> list[float]:
        """Each server's packets received over the window."""
        count = len(self.samples[0].per_server) if self.samples else 0
        return [
            Window([Sample(s.at, [s.per_server[i]]) for s in self.samples]).packets()
            for i in range(count)
        ]


class Monitor:
    """Samples ``mntr`` on every server once a second in a thread; ``window()`` returns the
    samples taken since the last ``window()`` (or start)."""

    def __init__(self, servers: Sequence[ZooKeeperServer], interval: float = 1.0) -> None:
        self.servers = list(servers)
        self.interval = interval
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mntr", daemon=True)

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> Sample:
        """Sample now (also kept for the current window)."""
        found = []
        for server in self.servers:
            figures = mntr(server) if server.running else {}
            found.append({k: figures[k] for k in KEYS if k in figures})
        sample = Sample(time.monotonic(), found)
        with self._lock:
            self._samples.append(sample)
        return sample

    def window(self) -> Window:
        """The samples since the last call, ending with one taken now; the next window
        starts with that one."""
        last = self.sample()
        with self._lock:
            samples, self._samples = self._samples, [last]
        return Window(samples)

    def reset_latency(self) -> None:
        """``srst`` every server: max latency counts from now."""
        for server in self.servers:
            try:
                server.four_letter_word("srst")
            except OSError:
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
