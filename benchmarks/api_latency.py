"""HTTP API benchmark: a read and a phone-home write through ``prodstate api``, timed.

A ``LocalCluster`` (ZooKeeper, 2 branches, 1 leaf, agents) and one ``prodstate api``
process reading the leaf's Redis. One client on one kept-alive connection times each
request from just before it is sent to its whole answer read (``time.perf_counter``):
``--reads`` ``GET /v1/keys/KEY?max_staleness=5``, then ``--writes``
``POST /v1/services/NAME/started`` (each confirmed by a branch before it answers).
Run ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

from benchkit import Workdir, log, machine_line, ms, percentile, table, terminate_as_interrupt

from prodstate.testing import free_port
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ManagedProcess

TOKEN = "benchmark-token-0123456789"


def serve(workdir: Path, cluster: LocalCluster) -> tuple[ManagedProcess, int]:
    """``prodstate api`` with one identity of every right and no rate limit to speak of."""
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = workdir / "credentials.toml"
    credentials.write_text(
        f'[api.tokens.bench]\ntoken = "{TOKEN}"\nrights = ["read", "report", "write"]\n'
    )
    credentials.chmod(0o600)
    port = free_port()
    argv = [sys.executable, "-m", "prodstate", "api", "--port", str(port), "--rate", "10000"]
    argv += ["--burst", "10000", "--credentials-file", str(credentials)]
    argv += ["--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    argv += ["--redis", cluster.redis["leaf1"].address]

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return ManagedProcess("api", argv, workdir, env=dict(os.environ), ready=ready).start(), port


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: str | None) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    reply.read()
    took = time.perf_counter() - start
    if reply.status != 200:
        raise RuntimeError(f"{method} {path}: {reply.status}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000, help="Reads timed (1000).")
    parser.add_argument("--writes", type=int, default=300, help="Writes timed (300).")
    parser.add_argument("--dir", type=Path, help="Work dir to keep (default: a temp dir).")
    args = parser.parse_args()
    with (
        terminate_as_interrupt(),
        Workdir(args.dir) as work,
        LocalCluster(work.path / "cluster", branches=2, leaves=1, cluster="bench") as cluster,
    ):
        cluster.wait_for_tree(timeout=120)
        server, port = serve(work.path / "api", cluster)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            timed(conn, "PUT", "/v1/keys/bench:key", json.dumps({"value": "x" * 100}))
            log(f"{args.reads} reads, then {args.writes} writes; {machine_line()}")
            reads = [
                timed(conn, "GET", "/v1/keys/bench:key?max_staleness=5", None)
                for _ in range(args.reads)
            ]
            writes = [
                timed(
                    conn,
                    "POST",
                    f"/v1/services/bench{i % 20}/started",
                    json.dumps({"host": f"host{i}", "version": "1.0"}),
                )
                for i in range(args.writes)
            ]
        finally:
            server.stop()
    rows = [["request", "count", "p50 ms", "p99 ms", "max ms"]]
    for name, values in (("read (GET key)", reads), ("phone-home (service started)", writes)):
        rows.append(
            [
                name,
                str(len(values)),
                ms(statistics.median(values)),
                ms(percentile(values, 99)),
                ms(max(values)),
            ]
        )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
