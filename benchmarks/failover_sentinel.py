"""Root failover, prodstate against Redis Sentinel, on the same shape of tree.

Both setups: a master (prodstate: the root) with 3 replicas (prodstate: branches) and a few
leaves replicating from those replicas. prodstate runs a ``LocalCluster`` (ZooKeeper, a
Redis and an agent per node) and loses its root machine (agent and Redis SIGKILLed); the
Sentinel setup runs 3 sentinels (``redis-server CONF --sentinel``) watching the master, the
leaves wired by hand to the replicas with ``replica-priority 0`` (Sentinel only knows the
master's direct replicas and must never promote a leaf), and loses its master's Redis
(SIGKILL; the sentinels live on other machines). Measured from outside, polling every
~10 ms: kill -> first ``SET`` + ``WAIT 1`` acknowledged by a replica on whatever the
coordinator names as master, and full resyncs served by every node (``sync_full``) from
before the kill until the tree has healed. Runs are interleaved: prodstate, Sentinel,
prodstate, ... Run ``python benchmarks/failover_sentinel.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from benchkit import (
    Workdir,
    check_output_paths,
    fmt,
    log,
    machine_line,
    median_of,
    table,
    terminate_as_interrupt,
)
from failover import POLL, SEED_KEYS, WAIT_MS, client_for, error_kind, tick_time_for
from failover import measure_root_failover as measure_prodstate_run
from redis.sentinel import MasterNotFoundError, Sentinel

from prodstate.testing.cluster import LocalCluster
from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess
from prodstate.testing.redis_server import REDIS_SERVER, RedisServer
from prodstate.testing.wait import wait_until

SERVICE = "prodstate-bench"
#: Sentinel events whose first appearance after the kill is reported as a phase.
EVENTS = (
    "+sdown",
    "+odown",
    "+try-failover",
    "+selected-slave",
    "+promoted-slave",
    "+switch-master",
)


@dataclass
class Run:
    """One failover of either system: seconds after the kill."""

    system: str
    run: int
    failover: float | None = None  # first write acknowledged (WAIT 1) on the named master
    named: float | None = None  # the coordinator first named another master
    write_accepted: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    full_resyncs: dict[str, int] = field(default_factory=dict)
    data_intact: bool | None = None
    error: str = ""


# --- Sentinel -------------------------------------------------------------------------------


class SentinelProcess(ManagedProcess):
    """``redis-server CONF --sentinel`` on a free loopback port, watching one master."""

    def __init__(self, workdir: Path, name: str, master: str, settings: dict[str, str]) -> None:
        self.port = free_port()
        workdir = workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        host, port = master.rsplit(":", 1)
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "daemonize no",
            'logfile ""',
            f"dir {workdir}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {SERVICE} {host} {port} 2",
            *(f"sentinel {key} {SERVICE} {value}" for key, value in settings.items()),
        ]
        config = workdir / "sentinel.conf"  # Sentinel rewrites it: it must be writable
        config.write_text("\n".join(lines) + "\n")
        super().__init__(name, [REDIS_SERVER, str(config), "--sentinel"], workdir, ready=self.up)

    def client(self) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, socket_timeout=1, decode_responses=True)

    def up(self) -> bool:
        with self.client() as conn:
            return bool(conn.ping())


class SentinelTree:
    """Master + replicas + hand-wired leaves + 3 sentinels; every process stopped on exit."""

    def __init__(self, workdir: Path, replicas: int, leaves: int, args: argparse.Namespace):
        base = {"repl-backlog-size": "64mb", "repl-diskless-sync-delay": "0"}
        self.nodes = {
            f"node{i}": RedisServer(workdir, name=f"redis-node{i}", config=base)
            for i in range(1, replicas + 2)
        }
        self.branches = list(self.nodes)[1:]
        self.leaves = {}
        for i in range(1, leaves + 1):
            name = f"leaf{i}"
            config = {**base, "replica-priority": "0"}
            self.nodes[name] = RedisServer(workdir, name=f"redis-{name}", config=config)
            self.leaves[name] = self.branches[(i - 1) % len(self.branches)]
        self.settings = {
            "down-after-milliseconds": str(int(args.session_timeout * 1000)),
            "failover-timeout": str(int(args.failover_timeout * 1000)),
            "parallel-syncs": str(args.parallel_syncs),
        }
        self.workdir = workdir
        self.sentinels: list[SentinelProcess] = []

    @property
    def master(self) -> RedisServer:
        return self.nodes["node1"]

    def __enter__(self) -> SentinelTree:
        try:
            for server in self.nodes.values():
                server.start(wait=False)
            for server in self.nodes.values():
                server.wait_ready()
            for name in self.branches:
                self.replicate(name, self.master)
            for leaf, branch in self.leaves.items():
                self.replicate(leaf, self.nodes[branch])
            wait_until(self.healed, timeout=60, what="every replica in sync")
            for i in range(1, 4):
                self.sentinels.append(
                    SentinelProcess(
                        self.workdir, f"sentinel{i}", self.master.address, self.settings
                    )
                )
            for sentinel in self.sentinels:
                sentinel.start(wait=False)
            for sentinel in self.sentinels:
                sentinel.wait_ready()
            wait_until(self.sentinels_ready, timeout=60, what="sentinels to see each other")
            return self
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in [*self.sentinels, *self.nodes.values()]:
            process.stop()

    def replicate(self, name: str, master: RedisServer) -> None:
        with self.nodes[name].client() as conn:
            conn.replicaof(master.host, master.port)

    def sentinels_ready(self) -> bool:
        """Every sentinel knows the master, its replicas and the two other sentinels."""
        for sentinel in self.sentinels:
            with sentinel.client() as conn:
                state = conn.sentinel_master(SERVICE)
                if state["num-slaves"] < len(self.branches) or state["num-other-sentinels"] < 2:
                    return False
        return True

    def healed(self) -> bool:
        """Every running node is a master or a replica whose link is up and not syncing."""
        for server in self.nodes.values():
            if not server.running:
                continue
            info = server.info("replication")
            if info["role"] == "slave" and (
                info["master_link_status"] != "up" or info.get("master_sync_in_progress")
            ):
                return False
        return True

    def full_syncs(self) -> dict[str, int]:
        return {n: s.info("stats")["sync_full"] for n, s in self.nodes.items() if s.running}


def measure_sentinel_run(tree: SentinelTree, run: int, timeout: float) -> Run:
    result = Run("sentinel", run)
    values = {f"seed:{i}": f"sentinel{run}-{i}" for i in range(SEED_KEYS)}
    with tree.master.client() as conn:
        conn.mset(values)
        if conn.wait(len(tree.branches), 5000) < len(tree.branches):
            raise RuntimeError("the seed keys did not reach every replica")
    wait_until(lambda: holds(tree, values), timeout=20, what="seed keys on every node")
    before = tree.full_syncs()
    old = tree.master.address
    sentinel = Sentinel(
        [("127.0.0.1", s.port) for s in tree.sentinels], socket_timeout=0.3, min_other_sentinels=1
    )
    subscriptions = [s.client().pubsub(ignore_subscribe_messages=True) for s in tree.sentinels]
    for events in subscriptions:  # only the leader of the failover announces its steps
        events.subscribe(*EVENTS)
    clients: dict[str, redis.Redis] = {}
    key, value = "failover", f"run{run}"

    t0 = time.monotonic()
    tree.master.signal(signal.SIGKILL)
    try:
        while result.failover is None:
            now = time.monotonic()
            if now - t0 > timeout:
                raise TimeoutError(f"no acknowledged write on a new master within {timeout:.0f} s")
            for events in subscriptions:
                while message := events.get_message(timeout=0):
                    note_event(result, message["channel"], message["data"], time.monotonic() - t0)
            try:
                host, port = sentinel.discover_master(SERVICE)
            except (MasterNotFoundError, redis.RedisError) as exc:
                result.errors.setdefault(error_kind(exc), now - t0)
                time.sleep(POLL)
                continue
            address = f"{host}:{port}"
            if address != old and result.named is None:
                result.named = now - t0
            conn = clients.get(address) or clients.setdefault(address, client_for(address, 0.5))
            try:
                conn.set(key, value)
                result.write_accepted = result.write_accepted or time.monotonic() - t0
                if conn.wait(1, WAIT_MS) >= 1:
                    result.failover = time.monotonic() - t0
                    break
            except redis.RedisError as exc:
                result.errors.setdefault(error_kind(exc), time.monotonic() - t0)
            time.sleep(POLL)
    finally:
        for events in subscriptions:
            events.close()
        for conn in clients.values():
            conn.close()
        tree.master.kill()
    wait_until(tree.healed, timeout=60, what="the tree to heal")
    result.full_resyncs = {n: c - before[n] for n, c in tree.full_syncs().items() if c != before[n]}
    try:
        wait_until(
            lambda: holds(tree, {**values, key: value}), timeout=20, what="the failover write"
        )
        result.data_intact = True
    except TimeoutError:
        result.data_intact = False
    return result


def note_event(result: Run, channel: str, data: str, seconds: float) -> None:
    """Record the first time a Sentinel event about the master was seen."""
    if channel in result.phases or (channel == "+sdown" and not data.startswith("master")):
        return
    result.phases[channel] = seconds


def holds(tree: SentinelTree, values: dict[str, str]) -> bool:
    keys = list(values)
    expected = [values[k] for k in keys]
    for server in tree.nodes.values():
        if server.running:
            with server.client(socket_timeout=2) as conn:
                if conn.mget(keys) != expected:
                    return False
    return True


# --- prodstate ------------------------------------------------------------------------------


def prodstate_run(workdir: Path, run: int, args: argparse.Namespace) -> Run:
    with LocalCluster(
        workdir,
        branches=args.replicas + 1,
        leaves=args.leaves,
        session_timeout=args.session_timeout,
        tick_time=tick_time_for(args.session_timeout),
    ) as cluster:
        measured = measure_prodstate_run(cluster, run, args.timeout)
    phases = {
        "root znode gone": measured.root_gone,
        "new root claimed": measured.claimed,
        "new root read": measured.new_root_seen,
    }
    return Run(
        "prodstate",
        run,
        failover=measured.failover,
        named=measured.new_root_seen,
        write_accepted=measured.write_accepted,
        phases={k: v for k, v in phases.items() if v is not None},
        errors=measured.errors,
        full_resyncs=measured.full_resyncs,
        data_intact=measured.data_intact,
    )


def sentinel_run(workdir: Path, run: int, args: argparse.Namespace) -> Run:
    with SentinelTree(workdir, args.replicas, args.leaves, args) as tree:
        return measure_sentinel_run(tree, run, args.timeout)


# --- report ---------------------------------------------------------------------------------


def summary(r: Run) -> str:
    if r.error:
        return f"FAILED: {r.error}"
    phases = ", ".join(f"{k} {v:.3f}" for k, v in r.phases.items())
    errors = ", ".join(f"{k} {v:.3f}" for k, v in r.errors.items())
    return (
        f"{fmt(r.failover)} s; new master named {fmt(r.named)}, write accepted "
        f"{fmt(r.write_accepted)}; phases {phases or '-'}; errors {errors or '-'}; "
        f"full resyncs {sum(r.full_resyncs.values())}; data intact {r.data_intact}"
    )


def report(args: argparse.Namespace, runs: list[Run]) -> tuple[str, bool]:
    """The printed report and whether prodstate beat Sentinel with no full resync."""
    rows = [["system", "runs", "min", "p50", "max", "named p50", "full resyncs", "data intact"]]
    medians: dict[str, float | None] = {}
    resyncs: dict[str, int] = {}
    systems = [s for s in ("prodstate", "sentinel") if any(r.system == s for r in runs)]
    for system in systems:
        mine = [r for r in runs if r.system == system]
        done = [r.failover for r in mine if r.failover is not None]
        medians[system] = median_of(done)
        resyncs[system] = sum(sum(r.full_resyncs.values()) for r in mine)
        failed = len(mine) - len(done)
        rows.append(
            [
                system,
                f"{len(done)}" + (f" (+{failed} failed)" if failed else ""),
                fmt(min(done, default=None)),
                fmt(medians[system]),
                fmt(max(done, default=None)),
                fmt(median_of([r.named for r in mine])),
                str(resyncs[system]),
                f"{sum(1 for r in mine if r.data_intact)}/{len(mine)}",
            ]
        )
    p, s = medians.get("prodstate"), medians.get("sentinel")
    if len(systems) == 2:
        met = p is not None and s is not None and p < s and resyncs["prodstate"] == 0
        verdict = (
            f"verdict: prodstate p50 {fmt(p)} s against Sentinel p50 {fmt(s)} s"
            + (f" ({s / p:.2f}x)" if p and s else "")
            + f"; full resyncs prodstate {resyncs['prodstate']}, Sentinel {resyncs['sentinel']}"
            + f" -> {'target met' if met else 'TARGET MISSED'}"
        )
    else:  # one system only: no comparison, so only "it worked" counts
        met = all(r.failover is not None for r in runs)
        verdict = "verdict: one system measured, nothing to compare"
    lines = [
        f"failover, prodstate against Redis Sentinel: 1 master + {args.replicas} replicas "
        f"(branches) + {args.leaves} leaves; prodstate session {args.session_timeout:g} s; "
        f"Sentinel down-after {args.session_timeout * 1000:.0f} ms, failover-timeout "
        f"{args.failover_timeout * 1000:.0f} ms, parallel-syncs {args.parallel_syncs}, quorum 2 "
        f"of 3; {machine_line()}",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        "seconds from SIGKILL of the master (prodstate: its agent too) to the first SET + WAIT 1"
        " acknowledged on the master the coordinator names",
        "",
        table(rows),
        "",
        verdict,
    ]
    lines += [f"  {r.system} run {r.run}: {summary(r)}" for r in runs]
    return "\n".join(lines), met


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Root failover: prodstate against Redis Sentinel (see docs/benchmarks.rst).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each system, interleaved")
    parser.add_argument("--replicas", type=int, default=3, help="replicas (branches) of the master")
    parser.add_argument("--leaves", type=int, default=6, help="leaves under the replicas")
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=2.0,
        help="prodstate's ZooKeeper session and Sentinel's down-after, seconds",
    )
    parser.add_argument(
        "--failover-timeout",
        type=float,
        default=10.0,
        help="Sentinel failover-timeout, seconds (how soon a failed failover is retried)",
    )
    parser.add_argument(
        "--parallel-syncs",
        type=int,
        default=3,
        help="Sentinel parallel-syncs: replicas moved at once",
    )
    parser.add_argument("--only", choices=("both", "prodstate", "sentinel"), default="both")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a run after this")
    parser.add_argument("--dir", type=Path, help="keep work dirs (logs) here; default: a temp dir")
    parser.add_argument("--json", type=Path, help="also write the per-run figures to this file")
    args = parser.parse_args(argv)
    check_output_paths(parser, args.json)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.replicas < 2:
        parser.error("--replicas must be at least 2 (one to promote, one to acknowledge)")
    if args.leaves < 0:
        parser.error("--leaves must not be negative")
    if args.session_timeout < 0.4:
        parser.error("--session-timeout must be at least 0.4")
    if args.failover_timeout <= 0 or args.parallel_syncs < 1:
        parser.error("--failover-timeout must be positive and --parallel-syncs at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = {"prodstate": prodstate_run, "sentinel": sentinel_run}
    if args.only != "both":
        systems = {args.only: systems[args.only]}
    runs: list[Run] = []
    try:
        with Workdir(args.dir) as workdir, terminate_as_interrupt():
            for run in range(1, args.runs + 1):
                for system, measure in systems.items():
                    log(f"{system} run {run}/{args.runs}: starting")
                    try:
                        result = measure(workdir.path / f"{system}-{run}", run, args)
                    except Exception as exc:  # one failed run must not lose the others' figures
                        workdir.failed = True
                        result = Run(
                            system, run, error=f"{type(exc).__name__}: {exc}".split("\n")[0]
                        )
                    runs.append(result)
                    log(f"{system} run {run}/{args.runs}: {summary(result)}")
    except KeyboardInterrupt:
        log("interrupted: every process stopped")
        return 130
    text, met = report(args, runs)
    print(text)
    if args.json:
        data = {"command": [sys.executable, *sys.argv], "cpus": os.cpu_count(), "target_met": met}
        args.json.write_text(json.dumps({**data, "runs": [asdict(r) for r in runs]}, indent=2))
    return 0 if met and not any(r.error for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
