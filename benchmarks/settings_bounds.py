"""Settings bounds: how large a namespace and its history grow at their caps, and what a
change and a read cost.

One local cluster (``prodstate.testing.cluster.LocalCluster``: real ZooKeeper, redis-servers
and agents on loopback) is started. Changes of the worst size the commands allow are
written through ``prodstate.settings.store.commit`` (the path ``prodstate config set``
takes: one fenced, confirmed batch under a compare-and-set): a namespace filled with
``KEYS_MAX`` keys whose values are ``VALUE_MAX`` bytes, then changed past
``HISTORY_MAX`` (each history entry holding an old and a new value at the bound, the longest
reason and "who"); a second namespace whose schema, at ``SCHEMA_MAX`` bytes, is set past
``HISTORY_MAX`` times. Then each key's ``MEMORY USAGE`` is read on a leaf, and
``Client.config`` of the full namespace is timed there. Run
``python benchmarks/settings_bounds.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchkit import Workdir, log, machine_line, ms, percentile, table, terminate_as_interrupt

from prodstate.client import Client
from prodstate.settings import keys
from prodstate.settings.changes import Write, schema_change, stamp, value_change
from prodstate.settings.records import Namespace
from prodstate.settings.store import commit
from prodstate.testing.cluster import LocalCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--changes",
        type=int,
        default=keys.HISTORY_MAX + 50,
        help="value changes after the namespace is full",
    )
    parser.add_argument("--schemas", type=int, default=keys.HISTORY_MAX + 10, help="schema changes")
    parser.add_argument("--reads", type=int, default=200, help="Client.config reads timed")
    parser.add_argument("--dir", type=Path, help="work dir (kept) instead of a temp dir")
    args = parser.parse_args()
    log(machine_line())
    with (
        Workdir(args.dir) as workdir,
        terminate_as_interrupt(),
        LocalCluster(workdir.path / "bounds", branches=2, leaves=1) as cluster,
    ):
        cluster.wait_for_tree(timeout=120)
        leaf_address = cluster.redis["leaf1"].address
        with Client(cluster.zk_hosts, cluster.cluster, local=leaf_address, acks=1) as client:
            costs = fill(client, args)
            client.set("bench:done", "1")  # written last: the leaf holds everything once it has it
        cluster.wait_everywhere("bench:done", "1")
        leaf = cluster.redis["leaf1"].client()
        rows = [["key", "entries", "MEMORY USAGE", "per entry"]]
        for key, size in [
            (keys.namespace_key("full"), leaf.hlen(keys.namespace_key("full"))),
            (keys.history_key("full"), leaf.xlen(keys.history_key("full"))),
            (keys.namespace_key("schemas"), leaf.hlen(keys.namespace_key("schemas"))),
            (keys.history_key("schemas"), leaf.xlen(keys.history_key("schemas"))),
        ]:
            memory = leaf.memory_usage(key, samples=0) or 0
            per = f"{memory / max(size, 1):.0f} B"
            rows.append([key, str(size), f"{memory / 1e6:.2f} MB", per])
        print(table(rows))
        with Client(None, cluster.cluster, local=leaf_address) as reader:
            reads = []
            for _ in range(args.reads):
                start = time.perf_counter()
                settings = reader.config("full")
                reads.append(time.perf_counter() - start)
            assert len(settings) == keys.KEYS_MAX
        costs["Client.config (full namespace)"] = reads
        print(
            table(
                [["operation", "count", "p50 ms", "p99 ms"]]
                + [
                    [name, str(len(v)), ms(percentile(v, 50)), ms(percentile(v, 99))]
                    for name, v in costs.items()
                ]
            )
        )


def fill(client: Client, args: argparse.Namespace) -> dict[str, list[float]]:
    """Write the worst-case changes; the latency of each by kind."""
    costs: dict[str, list[float]] = {"set (new key)": [], "set (changed)": [], "schema set": []}
    by = stamp("r" * keys.REASON_MAX, time.time(), who="w" * keys.WHO_MAX, host="h" * 64)

    def timed(kind: str, name: str, plan: Any) -> None:
        start = time.perf_counter()
        commit(client, name, plan, timeout=30)
        costs[kind].append(time.perf_counter() - start)

    def value(i: int) -> str:
        # A string of VALUE_MAX bytes as JSON (its two quotes included).
        return f"{i:08d}".ljust(keys.VALUE_MAX - 2, "v")

    def set_key(key: str, i: int) -> Any:
        def plan(ns: Namespace | None, _: Any) -> Write:
            return value_change(ns, "full", key, value(i), by)

        return plan

    timed("schema set", "full", lambda ns, _: schema_change(ns, "full", {"type": "object"}, by))
    log(f"filling a namespace: {keys.KEYS_MAX} keys of {keys.VALUE_MAX} bytes")
    for i in range(keys.KEYS_MAX):
        timed("set (new key)", "full", set_key(f"{i:03d}".ljust(64, "k"), i))
    log(f"changing it {args.changes} times")
    for i in range(args.changes):
        timed("set (changed)", "full", set_key(f"{i % keys.KEYS_MAX:03d}".ljust(64, "k"), -i))
    log(f"setting a schema of {keys.SCHEMA_MAX} bytes {args.schemas} times")
    for i in range(args.schemas):
        schema = {"description": f"{i:08d}".ljust(keys.SCHEMA_MAX - 20, "d")}
        timed("schema set", "schemas", lambda ns, _, s=schema: schema_change(ns, "schemas", s, by))
    return costs


if __name__ == "__main__":
    main()
