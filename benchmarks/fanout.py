"""Fan-out benchmark: how one branch's Redis serves its leaves as their number grows.

For sizing "leaves per branch": for each N of ``--replicas``, one branch redis-server (the
replication settings the agent sets, persistence off) and N replica redis-servers wired to it
with ``REPLICAOF``, each replica with ``notify-keyspace-events K$``. Once every replica is
linked and synced, ``--writes`` SETs of a ``--value-size`` value are sent to the branch, one in
flight at a time; one epoll loop holds a PSUBSCRIBE connection to every replica and timestamps
each replica's keyspace notification of the write. Per N: the branch's CPU time (its threads'
``schedstat``) per write and per write and replica, the latency to every replica (p50, p99,
max) and to the median replica (p50), and the branch's ``used_memory`` and replication buffers
after the writes. Then every server is stopped and the next N begins. Run ``--help`` for the
options; docs/benchmarks.rst describes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import socket
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchkit import (
    KeyspaceObserver,
    Workdir,
    check_output_paths,
    cpu_seconds,
    log,
    machine_line,
    ms,
    percentile,
    resp_command,
    table,
    terminate_as_interrupt,
)

from prodstate.agent.config import replication_settings
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.wait import wait_until

PREFIX = "fan:"
PATTERN = f"__keyspace@0__:{PREFIX}*"  # the written keys' notifications, nothing else
#: What the agent sets on every Redis (prodstate.agent.config.AgentConfig.redis_settings,
#: less the replica-announce pair, which only names a replica to its master).
REPLICATION = replication_settings()
#: The branch publishes keyspace events as the agent has it do; nobody subscribes to it.
BRANCH_NOTIFY = {"notify-keyspace-events": "KA"}
#: A replica fires a keyspace event for each write it receives from its master.
REPLICA_NOTIFY = {"notify-keyspace-events": "K$"}
KIB = 1024


# --- figures (pure) ---------------------------------------------------------------------------


def parse_replicas(text: str) -> list[int]:
    """``--replicas``: comma-separated replica counts, each at least 1, none twice."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"every replica count must be at least 1: {text!r}")
    if len(set(counts)) < len(counts):
        raise argparse.ArgumentTypeError(f"a replica count is given twice: {text!r}")
    return counts


@dataclass
class Result:
    """What one N measured: raw figures, seconds and bytes."""

    replicas: int
    writes: int  # recorded writes sent
    latencies: list[float] = field(default_factory=list)  # to every replica, per write
    median_latencies: list[float] = field(default_factory=list)  # to the median replica
    timeouts: int = 0  # recorded writes that did not reach every replica within --timeout
    cpu_seconds: float = 0.0  # the branch's CPU over the recorded writes
    wait_seconds: float = 0.0  # the branch's time runnable but waiting for a CPU, the same
    elapsed: float = 0.0  # wall time of the recorded writes
    used_memory: int = 0  # branch INFO used_memory after the writes
    mem_clients_slaves: int = 0  # branch INFO mem_clients_slaves after the writes
    replication_buffers: int = 0  # branch INFO mem_total_replication_buffers after
    omem: list[int] = field(default_factory=list)  # CLIENT LIST omem of each replica, after

    @property
    def cpu_per_write(self) -> float:
        """The branch's CPU seconds per write sent."""
        return self.cpu_seconds / self.writes

    @property
    def cpu_per_write_replica(self) -> float:
        """The branch's CPU seconds per write sent and replica served."""
        return self.cpu_per_write / self.replicas

    def latency(self, q: float) -> float | None:
        """The ``q``-th percentile of the latency to every replica; None without writes."""
        return percentile(self.latencies, q) if self.latencies else None

    def median_replica(self, q: float) -> float | None:
        """The ``q``-th percentile of the latency to the median replica."""
        return percentile(self.median_latencies, q) if self.median_latencies else None


def ms_cell(seconds: float | None) -> str:
    return "-" if seconds is None else ms(seconds, 2)


def kib(count: int) -> str:
    return f"{count / KIB:.0f}"


def results_table(results: list[Result]) -> str:
    """One row per N: the branch's CPU, the latencies (ms) and the branch's memory (KiB)."""
    rows = [
        [
            "replicas",
            "CPU us/write",
            "us/write/replica",
            "all p50",
            "p99",
            "max",
            "median replica p50",
            "used_memory KiB",
            "repl buffers KiB",
            "omem max KiB",
            "timeouts",
        ]
    ]
    for r in results:
        rows.append(
            [
                str(r.replicas),
                f"{r.cpu_per_write * 1e6:.1f}",
                f"{r.cpu_per_write_replica * 1e6:.2f}",
                ms_cell(r.latency(50)),
                ms_cell(r.latency(99)),
                ms_cell(r.latency(100)),
                ms_cell(r.median_replica(50)),
                kib(r.used_memory),
                kib(r.replication_buffers),
                kib(max(r.omem, default=0)),
                str(r.timeouts),
            ]
        )
    return table(rows)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (at least two distinct xs)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def scaling_line(results: list[Result]) -> str:
    """What each added replica costs, by least squares over the Ns measured."""
    if len(results) < 2:
        return "one replica count measured: nothing to say about how the figures scale with N"
    ns = [float(r.replicas) for r in results]
    cpu = slope(ns, [r.cpu_per_write * 1e6 for r in results])
    memory = slope(ns, [r.used_memory / KIB for r in results])
    parts = [f"branch CPU {cpu:+.2f} us per write", f"used_memory {memory:+.1f} KiB"]
    with_writes = [r for r in results if r.latencies]
    if len(with_writes) >= 2:
        p50 = slope(
            [float(r.replicas) for r in with_writes], [r.latency(50) or 0.0 for r in with_writes]
        )
        parts.insert(1, f"p50 to every replica {p50 * 1000:+.3f} ms")
    counts = ", ".join(str(r.replicas) for r in results)
    return f"each added replica (least squares over N = {counts}): " + ", ".join(parts)


def report(args: argparse.Namespace, results: list[Result]) -> str:
    """The printed report of the Ns measured."""
    lines = [
        f"prodstate fan-out benchmark: one branch redis-server and N replicas; {args.writes}"
        f" writes of {args.value_size} bytes per N, one in flight, after {args.warmup} unrecorded",
        f"{machine_line()} (at the end)",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "",
        "SET at the branch -> its keyspace notification seen from every replica (all) and from"
        " the median one; ms. CPU: the branch redis-server's, over the recorded writes. Memory:"
        " the branch's INFO used_memory and mem_total_replication_buffers (the replication"
        " buffer its replicas share), and the largest of its replicas' CLIENT LIST omem (each"
        " replica's is the shared buffer from the block it is reading on), after the writes",
        results_table(results),
        "",
        scaling_line(results),
    ]
    timeouts = sum(r.timeouts for r in results)
    if timeouts:
        lines.append(f"MISSED: {timeouts} writes did not reach every replica within --timeout")
    return "\n".join(lines)


# --- measurement ------------------------------------------------------------------------------


def process_cpu(pid: int | None) -> tuple[float, float]:
    """CPU and run-queue wait seconds of all of a process's threads so far (``schedstat``,
    nanoseconds); ``/proc/PID/stat`` (clock ticks, no wait) where there is no schedstat."""
    run = wait = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = (task / "schedstat").read_text().split()
            except FileNotFoundError:  # the thread ended
                continue
            run, wait = run + int(fields[0]), wait + int(fields[1])
    except OSError:
        return cpu_seconds(pid), 0.0
    return run / 1e9, wait / 1e9


def all_online(branch: RedisServer, count: int) -> bool:
    """True when the branch lists ``count`` replicas, every one online (its sync done)."""
    info = branch.info("replication")
    states = [v["state"] for k, v in info.items() if k[:5] == "slave" and k[5:].isdigit()]
    return info.get("connected_slaves") == count and states == ["online"] * count


def start(branch: RedisServer, replicas: list[RedisServer]) -> None:
    """Start every server, wire the replicas to the branch and wait until all are synced."""
    for server in [branch, *replicas]:
        server.start(wait=False)
    for server in [branch, *replicas]:
        server.wait_ready()
    for replica in replicas:
        with replica.client() as conn:
            conn.replicaof(branch.host, branch.port)
    wait_until(lambda: all_online(branch, len(replicas)), timeout=120, what="every replica online")
    for replica in replicas:
        wait_until(replica.in_sync, timeout=60, what=f"{replica.name} linked")


def stop(servers: list[RedisServer]) -> None:
    """SIGTERM to every server at once, then wait for each."""
    for server in servers:
        server.signal(signal.SIGTERM)
    for server in servers:
        server.stop()


def one_write(
    branch: socket.socket,
    observer: KeyspaceObserver,
    key: bytes,
    value: bytes,
    timeout: float,
    replicas: int,
) -> tuple[float, list[float]]:
    """SET ``key`` at the branch; when it was sent (monotonic) and when each replica's
    notification of it arrived."""
    t0 = time.monotonic()
    branch.sendall(resp_command("SET", key, value))
    arrivals = observer.wait_for("replicas", key, replicas, timeout)
    reply = b""  # "+OK\r\n", long since arrived
    while not reply.endswith(b"\r\n"):
        chunk = branch.recv(64)
        if not chunk:
            raise ConnectionError("the branch closed the connection")
        reply += chunk
    if reply != b"+OK\r\n":
        raise RuntimeError(f"SET at the branch answered {reply!r}")
    return t0, arrivals


def measure(args: argparse.Namespace, count: int, workdir: Path) -> Result:
    """One N: start the servers, write, read the figures, stop them."""
    config = {**REPLICATION, **REPLICA_NOTIFY}
    branch = RedisServer(workdir, name="branch", config={**REPLICATION, **BRANCH_NOTIFY})
    replicas = [RedisServer(workdir, name=f"replica{i + 1}", config=config) for i in range(count)]
    result = Result(count, args.writes)
    value = b"v" * args.value_size
    try:
        log(f"N = {count}: starting the branch and {count} replicas")
        start(branch, replicas)
        address = (branch.host, branch.port)
        watched = {"replicas": {r.name: f"{r.host}:{r.port}" for r in replicas}}
        with (
            contextlib.closing(KeyspaceObserver(watched, PATTERN)) as observer,
            socket.create_connection(address, timeout=args.timeout + 5) as conn,
        ):
            log(f"N = {count}: {args.warmup} + {args.writes} writes")
            for i in range(args.warmup):
                one_write(conn, observer, f"{PREFIX}w{i}".encode(), value, args.timeout, count)
            (cpu0, wait0), started = process_cpu(branch.pid), time.monotonic()
            for i in range(args.writes):
                key = f"{PREFIX}{i}".encode()
                t0, arrivals = one_write(conn, observer, key, value, args.timeout, count)
                if len(arrivals) < count:
                    result.timeouts += 1
                    continue
                result.latencies.append(max(arrivals) - t0)
                result.median_latencies.append(statistics.median(arrivals) - t0)
            result.elapsed = time.monotonic() - started
            cpu1, wait1 = process_cpu(branch.pid)
            result.cpu_seconds, result.wait_seconds = cpu1 - cpu0, wait1 - wait0
        with branch.client() as admin:
            memory = admin.info("memory")
            result.omem = [int(c["omem"]) for c in admin.client_list(_type="replica")]
        result.used_memory = memory["used_memory"]
        result.mem_clients_slaves = memory.get("mem_clients_slaves", 0)
        result.replication_buffers = memory.get("mem_total_replication_buffers", 0)
    finally:
        log(f"N = {count}: stopping {count + 1} servers")
        stop([branch, *replicas])
    return result


def write_json(args: argparse.Namespace, results: list[Result]) -> None:
    """``--json``: the options and every N's raw figures so far (rewritten after each N)."""
    if args.json:
        options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        data = {"args": options, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(data) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A branch's Redis serving N replicas (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--replicas", type=parse_replicas, default="10,50,100,200", help="replica counts N"
    )
    parser.add_argument("--writes", type=int, default=500, help="recorded writes per N")
    parser.add_argument("--warmup", type=int, default=20, help="unrecorded writes per N")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per value")
    parser.add_argument("--timeout", type=float, default=5.0, help="per write, seconds")
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: temp dir")
    parser.add_argument("--json", type=Path, help="also write every N's raw figures here")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.writes < 1 or args.warmup < 0 or args.value_size < 0:
        parser.error("--writes must be at least 1, --warmup and --value-size not negative")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Result] = []
    failed = None
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            for count in args.replicas:
                try:
                    result = measure(args, count, workdir.path / f"n{count}")
                except Exception:
                    workdir.failed = True
                    raise
                results.append(result)
                write_json(args, results)
                p50 = ms_cell(result.latency(50))
                log(f"N = {count}: {result.cpu_per_write * 1e6:.1f} us/write, p50 {p50} ms")
    except KeyboardInterrupt as exc:
        log(f"interrupted ({str(exc) or 'Ctrl-C'}): every server stopped")
        failed = 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        failed = 1
    if results:
        print(report(args, results))
    if failed is not None and results:
        print(f"INCOMPLETE: {len(results)} of {len(args.replicas)} replica counts done")
    if failed is not None:
        return failed
    return 1 if any(r.timeouts for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
