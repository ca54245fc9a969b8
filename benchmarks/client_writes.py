"""Client write benchmark: confirmed writes per second and their latency, against plain Redis.

Target (from the client issue): printed by a benchmark, confirmed writes per second from one
client with ``--acks 1`` and the p50/p99 latency of a confirmed write, against plain ``SET`` +
``WAIT`` on the same Redis in the same run.

One local cluster (``prodstate.testing.cluster.LocalCluster``: a real ZooKeeper, one
redis-server and one ``prodstate agent`` per node, all on loopback) is started and its tree
formed; then one thread writes distinct keys at the root in every variant below, in rounds,
each round running every variant once in a rotated order so that background noise falls on all
of them alike. Run ``python benchmarks/client_writes.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis
from benchkit import Workdir, check_output_paths, log, ms, table, terminate_as_interrupt
from redis._parsers import _RESP2Parser
from redis._parsers.socket import SocketBuffer

from prodstate.client import Client, branch_acks, role_offset
from prodstate.core.heartbeat import EPOCH_KEY
from prodstate.redis.connect import connect
from prodstate.redis.scripts import FENCED_WRITE
from prodstate.testing.cluster import LocalCluster

WAIT_MS = 1000  # WAIT timeout of the hand-built variants (the client's first WAIT: 50 ms)
BASELINE = "SET+WAIT"  # the plain confirmed write the others are compared with
COMMANDS = ("set", "eval", "wait", "role")  # server-side costs reported from INFO commandstats


# --- figures ----------------------------------------------------------------------------------


@dataclass
class Variant:
    """One way of writing a key, and what it measured."""

    name: str
    trips: int  # network round trips per write
    what: str
    write: Callable[[str], None]
    latencies: list[float] = field(default_factory=list)  # seconds, one per write
    round_seconds: list[float] = field(default_factory=list)  # wall time of each round
    cpu_seconds: float = 0.0  # this process's CPU time while writing (all rounds)
    extra_confirms: int = 0  # prodstate writes that needed a further WAIT+ROLE round trip

    @property
    def writes(self) -> int:
        return len(self.latencies)

    def rate(self) -> float:
        return self.writes / sum(self.round_seconds)

    def round_rates(self) -> list[float]:
        n = self.writes // len(self.round_seconds)
        return [n / s for s in self.round_seconds]

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class NotAcked(Exception):
    """A plain WAIT returned with no replica acknowledging the write."""


# --- the variants -------------------------------------------------------------------------------


def make_variants(
    root: redis.Redis, client0: Client, client1: Client, epoch: int, value: str
) -> list[Variant]:
    """Every variant, all writing at the root over connections made like the client's."""

    def plain_set(key: str) -> None:
        root.set(key, value)

    def set_wait(key: str) -> None:
        pipe = root.pipeline(transaction=False)
        pipe.set(key, value)
        pipe.execute_command("WAIT", 1, WAIT_MS)
        if pipe.execute()[1] < 1:
            raise NotAcked(key)

    def set_then_wait(key: str) -> None:
        root.set(key, value)
        if root.wait(1, WAIT_MS) < 1:
            raise NotAcked(key)

    def eval_wait(key: str) -> None:
        pipe = root.pipeline(transaction=False)
        pipe.evalsha(FENCED_WRITE.sha, 1, EPOCH_KEY, str(epoch), "SET", key, value)
        pipe.execute_command("WAIT", 1, WAIT_MS)
        if pipe.execute()[1] < 1:
            raise NotAcked(key)

    def client_pipeline(key: str) -> None:
        pipe = root.pipeline(transaction=False)
        pipe.evalsha(FENCED_WRITE.sha, 1, EPOCH_KEY, str(epoch), "SET", key, value)
        pipe.execute_command("ROLE")
        pipe.execute_command("WAIT", 1, WAIT_MS)
        pipe.execute_command("ROLE")
        if pipe.execute()[2] < 1:
            raise NotAcked(key)

    def wait_role(key: str) -> None:
        pipe = root.pipeline(transaction=False)
        pipe.evalsha(FENCED_WRITE.sha, 1, EPOCH_KEY, str(epoch), "SET", key, value)
        pipe.execute_command("WAIT", 1, WAIT_MS)
        pipe.execute_command("ROLE")
        if pipe.execute()[1] < 1:
            raise NotAcked(key)

    def client_set0(key: str) -> None:
        client0.set(key, value)

    def client_set1(key: str) -> None:
        client1.set(key, value)

    by_hand = "the client's pipeline by hand (WAIT 1 1000, not 50 ms), no checks in Python"
    one_role = "no ROLE before WAIT (the write's offset would be read after it): one ROLE fewer"
    client = "Client.set, acks=1: EVAL+ROLE+WAIT 1 50+ROLE, role_offset + branch_acks"
    return [
        Variant("SET", 1, "plain SET, no WAIT (the floor)", plain_set),
        Variant(BASELINE, 1, "plain SET + WAIT 1 1000, pipelined", set_wait),
        Variant("SET;WAIT", 2, "plain SET, then WAIT 1 1000", set_then_wait),
        Variant("EVAL+WAIT", 1, "fenced EVAL + WAIT 1 1000, pipelined", eval_wait),
        Variant("EVAL+ROLE+WAIT+ROLE", 1, by_hand, client_pipeline),
        Variant("EVAL+WAIT+ROLE", 1, one_role, wait_role),
        Variant("prodstate acks=0", 1, "Client.set, acks=0: the fenced EVAL alone", client_set0),
        Variant("prodstate acks=1", 1, client, client_set1),
    ]


def count_extra_confirms(client: Client, variant: Variant) -> None:
    """Count the writes the first trip did not confirm (each costs a WAIT+ROLE trip or more)."""
    confirm = client._confirm

    def counted(*args: Any, **kwargs: Any) -> Any:
        variant.extra_confirms += 1
        return confirm(*args, **kwargs)

    client._confirm = counted  # type: ignore[method-assign]


# --- measuring ----------------------------------------------------------------------------------


def run_round(variant: Variant, keys: list[str], record: bool) -> None:
    """Write every key with ``variant``; keep the figures if ``record`` (else a warm-up)."""
    latencies = []
    write = variant.write
    clock = time.perf_counter
    cpu0, start = time.process_time(), clock()
    for key in keys:
        t = clock()
        write(key)
        latencies.append(clock() - t)
    elapsed, cpu = clock() - start, time.process_time() - cpu0
    if record:
        variant.latencies += latencies
        variant.round_seconds.append(elapsed)
        variant.cpu_seconds += cpu


def commandstats(conn: redis.Redis) -> dict[str, tuple[int, int]]:
    """(calls, usec) of the reported commands, from the root's INFO commandstats."""
    stats = conn.info("commandstats")
    return {
        name: (stats[f"cmdstat_{name}"]["calls"], stats[f"cmdstat_{name}"]["usec"])
        for name in COMMANDS
        if f"cmdstat_{name}" in stats
    }


def resp(value: Any) -> bytes:
    """``value`` (a decoded reply of strings, integers and lists) encoded as RESP2."""
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(resp(item) for item in value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def parse_cost(conn: redis.Redis, repeat: int = 20000) -> tuple[int, float]:
    """Size of the root's ROLE reply, and redis-py's RESP2 parser's time to read it (s)."""
    role = conn.execute_command("ROLE")
    raw = resp(role)
    parser = _RESP2Parser(socket_read_size=65536)
    replay = SimpleNamespace(recv=lambda size: raw)  # a socket answering every read with raw
    parser._buffer = SocketBuffer(replay, 65536, None)  # type: ignore[arg-type]
    parser.encoder = conn.connection_pool.get_encoder()
    if parser.read_response() != role:
        raise RuntimeError(f"the ROLE reply did not survive re-encoding: {role!r}")
    start = time.perf_counter()
    for _ in range(repeat):
        parser.read_response()
    return len(raw), (time.perf_counter() - start) / repeat


def logic_cost(conn: redis.Redis, branches: frozenset[str], repeat: int = 20000) -> float:
    """The client's own check of a write on parsed ROLE replies: role_offset + branch_acks (s)."""
    role = conn.execute_command("ROLE")
    start = time.perf_counter()
    for _ in range(repeat):
        branch_acks(role_offset(role), role, branches)
    return (time.perf_counter() - start) / repeat


def measure(
    args: argparse.Namespace, cluster: LocalCluster, load_before: tuple[float, ...]
) -> dict[str, Any]:
    report = cluster.wait_for_tree(timeout=90)
    assert report.root is not None
    root_name, epoch = report.root.node_id, report.root.epoch
    address = cluster.redis[root_name].address
    local = cluster.redis[cluster.names("leaf")[0]].address if args.leaves else address
    value = "x" * args.value_size
    conn = connect(address, timeout=3.0)
    client0 = Client(cluster.zk_hosts, cluster.cluster, local=local, acks=0)
    client1 = Client(cluster.zk_hosts, cluster.cluster, local=local, acks=1)
    try:
        variants = make_variants(conn, client0, client1, epoch, value)
        count_extra_confirms(client1, variants[-1])
        attached = len(conn.execute_command("ROLE")[2])
        on_root = sorted(n for n, a in report.masters.items() if a == address)
        log(f"root {root_name} (epoch {epoch}) at {address}, replicas: {', '.join(on_root)}")

        for i, variant in enumerate(variants):  # warm-up: connections, script cache, caches
            run_round(variant, [f"warm:{i}:{k}" for k in range(args.warmup)], record=False)
        variants[-1].extra_confirms = 0
        before = commandstats(conn)
        load_start = os.getloadavg()
        for r in range(args.rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for variant in order:
                i = variants.index(variant)
                run_round(variant, [f"bench:{i}:{r}:{k}" for k in range(args.writes)], True)
            log(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{v.name} {v.round_rates()[-1]:.0f}/s" for v in variants)
            )
        load_end = os.getloadavg()
        after = commandstats(conn)
        size, parse = parse_cost(conn)
        logic = logic_cost(conn, client1._watch().view.branches)
    finally:
        client0.close()
        client1.close()
        conn.close()
    server = {
        name: (after[name][0] - before.get(name, (0, 0))[0], after[name][1] - before[name][1])
        for name in after
        if name in before
    }
    return {
        "root": root_name,
        "epoch": epoch,
        "root_replicas": on_root,
        "connected_replicas": attached,
        "variants": variants,
        "load_before": load_before,
        "load_start": load_start,
        "load_end": load_end,
        "server_calls_usec": server,
        "role_reply_bytes": size,
        "parse_role_seconds": parse,
        "branch_acks_seconds": logic,
    }


# --- running and reporting ----------------------------------------------------------------------


def row(v: Variant, plain: Variant) -> dict[str, str]:
    """The table's cells for ``v``, by column heading."""
    rates, p50, p99 = v.round_rates(), v.quantile(0.5), v.quantile(0.99)
    return {
        "variant": v.name,
        "trips": str(v.trips),
        "writes/s": f"{v.rate():.0f}",
        "rounds min..max": f"{min(rates):.0f}..{max(rates):.0f}",
        "x plain": f"{v.rate() / plain.rate():.2f}",
        "p50 ms": ms(p50),
        "p99 ms": ms(p99),
        "max ms": ms(max(v.latencies)),
        "p50 x plain": f"{p50 / plain.quantile(0.5):.2f}",
        "p99 x plain": f"{p99 / plain.quantile(0.99):.2f}",
        "client cpu us/write": f"{v.cpu_seconds / v.writes * 1e6:.0f}",
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    variants: list[Variant] = result["variants"]
    plain = next(v for v in variants if v.name == BASELINE)
    cells = [row(v, plain) for v in variants]
    rows = [list(cells[0]), *(list(c.values()) for c in cells)]
    ps = next(v for v in variants if v.name == "prodstate acks=1")
    server = result["server_calls_usec"]
    per_call = ", ".join(
        f"{name} {usec / calls:.1f}" for name, (calls, usec) in server.items() if calls
    )
    load_before, load_start, load_end = (
        result[k] for k in ("load_before", "load_start", "load_end")
    )
    lines = [
        f"prodstate client write benchmark: branches={args.branches} leaves={args.leaves} "
        f"session_timeout={args.session_timeout:g}s rounds={args.rounds} writes={args.writes} "
        f"value={args.value_size}B warmup={args.warmup} cpus={os.cpu_count()} "
        f"load1/5/15 before_cluster={'/'.join(f'{x:.2f}' for x in load_before)} "
        f"at_first_round={'/'.join(f'{x:.2f}' for x in load_start)} at_end={load_end[0]:.2f}",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        f"root {result['root']} (epoch {result['epoch']}), {result['connected_replicas']} "
        f"replicas attached to it: {', '.join(result['root_replicas'])}; one client thread, "
        f"distinct keys, redis-py {redis.__version__} (pure-Python parser), "
        f"redis-server on loopback",
        f"each variant: {args.rounds} rounds x {args.writes} writes, variants alternated in "
        f"rotated order every round; x plain = relative to {BASELINE} (pipelined, one trip)",
        "",
        table(rows),
        "",
    ]
    for v in variants:
        lines.append(f"   {v.name}: {v.what}")
    lines += [
        "",
        f"prodstate acks=1: writes the first trip did not confirm (no branch at the write's "
        f"offset in the ROLE after WAIT), needing further WAIT+ROLE trips: "
        f"{ps.extra_confirms}/{ps.writes}",
        f"server usec per call during the rounds (INFO commandstats, SET includes the SET inside "
        f"EVAL): {per_call}",
        f"client-side per write: redis-py's RESP2 parser on the {result['role_reply_bytes']}-byte "
        f"ROLE reply {result['parse_role_seconds'] * 1e6:.1f} us (x2 per write), "
        f"role_offset + branch_acks check {result['branch_acks_seconds'] * 1e6:.1f} us",
    ]
    return "\n".join(lines)


def as_json(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in vars(args).items() if k not in ("dir", "json")}
    config.update(wait_ms=WAIT_MS, cpus=os.cpu_count(), redis_py=redis.__version__)
    config["command"] = [sys.executable, *sys.argv]
    fields = ("name", "trips", "what", "round_seconds", "cpu_seconds", "extra_confirms")
    variants = []
    for v in result["variants"]:
        variants.append({f: getattr(v, f) for f in fields})
        variants[-1]["latencies_seconds"] = [round(t, 7) for t in v.latencies]
    return {"config": config, **result, "variants": variants}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Confirmed client writes against plain SET + WAIT (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--writes", type=int, default=2000, help="writes per variant per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (every variant each)")
    parser.add_argument("--warmup", type=int, default=500, help="unrecorded writes per variant")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per value")
    parser.add_argument("--branches", type=int, default=3, help="branches in the cluster")
    parser.add_argument("--leaves", type=int, default=6, help="leaves in the cluster")
    parser.add_argument(
        "--session-timeout", type=float, default=2.0, help="agents' ZooKeeper session, seconds"
    )
    parser.add_argument(
        "--dir", type=Path, help="keep the cluster's work dir (logs) here; default: a temp dir"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.writes < 1 or args.rounds < 1 or args.warmup < 0 or args.value_size < 0:
        parser.error("--writes and --rounds must be at least 1, --warmup and --value-size >= 0")
    if args.branches < 2:
        parser.error("--branches must be at least 2 (a root and a branch to confirm writes)")
    if args.leaves < 0:
        parser.error("--leaves must be at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            log("starting a cluster")
            with LocalCluster(
                workdir.path / "writes",
                branches=args.branches,
                leaves=args.leaves,
                session_timeout=args.session_timeout,
            ) as cluster:
                result = measure(args, cluster, load_before)
    except KeyboardInterrupt:
        log("interrupted: cluster stopped")
        return 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    print(report(args, result))
    if args.json:
        args.json.write_text(json.dumps(as_json(args, result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
