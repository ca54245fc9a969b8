"""State-database bounds: how large the ``infra:`` keys grow at their caps, and what one
record costs to write.

One local cluster (``prodstate.testing.cluster.LocalCluster``: real ZooKeeper, redis-servers
and agents on loopback) is started; records of the worst size the commands allow (a deploy
with every field at its bound and a full output tail, 1,000-character error messages,
this machine's real facts) are
written through ``Client.write_batch`` (the durable path the commands use) past each
stream's cap; then each key's ``MEMORY USAGE`` is read on a leaf. Run
``python benchmarks/statedb_bounds.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchkit import Workdir, log, machine_line, ms, percentile, table, terminate_as_interrupt

from prodstate.client import Client
from prodstate.statedb import facts as facts_module
from prodstate.statedb import keys
from prodstate.statedb.deploys import Deploy, Outcome, finish_commands, start_entry
from prodstate.statedb.errors import report_commands
from prodstate.statedb.facts import collect
from prodstate.statedb.machines import record_command
from prodstate.testing.cluster import LocalCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deploys", type=int, default=5_500, help="deploys written (2 entries each)"
    )
    parser.add_argument("--errors", type=int, default=250, help="errors of one service")
    parser.add_argument("--machines", type=int, default=1_000, help="machines reported")
    parser.add_argument("--dir", type=Path, help="work dir (kept) instead of a temp dir")
    args = parser.parse_args()
    log(machine_line())
    with (
        Workdir(args.dir) as workdir,
        terminate_as_interrupt(),
        LocalCluster(workdir.path / "bounds", branches=2, leaves=1) as cluster,
    ):
        cluster.wait_for_tree(timeout=120)
        with Client(cluster.zk_hosts, cluster.cluster, acks=1) as client:
            costs = fill(client, args)
            client.set("bench:done", "1")  # written last: the leaf holds everything once it has it
        cluster.wait_everywhere("bench:done", "1")
        leaf = cluster.redis["leaf1"].client()
        rows = [["key", "entries", "cap", "MEMORY USAGE", "per entry"]]
        for key, cap in [
            (keys.DEPLOYS, keys.DEPLOYS_MAX),
            (keys.DEPLOY_OUTPUT, keys.DEPLOY_OUTPUT_MAX),
            (keys.errors("bench"), keys.ERRORS_MAX),
            (keys.MACHINES, None),
        ]:
            size = leaf.xlen(key) if cap else leaf.hlen(key)
            memory = leaf.memory_usage(key, samples=0) or 0
            rows.append(
                [
                    key,
                    str(size),
                    str(cap or "-"),
                    f"{memory / 1e6:.1f} MB",
                    f"{memory / max(size, 1):.0f} B",
                ]
            )
        print(table(rows))
        print(
            table(
                [["record (one fenced batch, acks=1)", "writes", "p50 ms", "p99 ms"]]
                + [
                    [name, str(len(v)), ms(percentile(v, 50)), ms(percentile(v, 99))]
                    for name, v in costs.items()
                ]
            )
        )


def fill(client: Client, args: argparse.Namespace) -> dict[str, list[float]]:
    """Write the records; the latency of each batch by kind."""
    costs: dict[str, list[float]] = {
        "deploy start": [],
        "deploy outcome": [],
        "error": [],
        "machine facts": [],
    }

    def timed(kind: str, commands: list) -> None:  # type: ignore[type-arg]
        start = time.perf_counter()
        client.write_batch(commands)
        costs[kind].append(time.perf_counter() - start)

    output = ("x" * 79 + "\n") * 60  # more than the tail keeps
    facts = collect("bench")  # this machine's, with as many disks and addresses as kept
    path = "/" + "p" * (facts_module.PATH_MAX - 1)
    facts["disks"] = [
        {"device": path, "mount": path, "fs": "ext4", "size_bytes": 2**50, "free_bytes": 2**49}
    ] * facts_module.MAX_ITEMS
    facts["addresses"] = [
        {"interface": "i" * 15, "address": "fd00:1111:2222:3333:4444:5555:6666:7777/128"}
    ] * facts_module.MAX_ITEMS
    log(f"writing {args.deploys} deploys, {args.errors} errors, {args.machines} machines")
    for i in range(args.deploys):
        # Every field at its bound: 32 targets of 64 characters, a 128-character version
        # and "who", a 64-character host, a command longer than is kept.
        deploy = Deploy(
            f"{i:012x}",
            "s" * 64,
            f"{i}".ljust(keys.VERSION_MAX, "v"),
            [f"{n:02d}".ljust(64, "t") for n in range(keys.TARGETS_MAX)],
            "w" * keys.WHO_MAX,
            "h" * 64,
            time.time(),
            command="deploy --all " + "y" * 2 * keys.COMMAND_MAX,
        )
        timed(
            "deploy start",
            [
                start_entry(
                    deploy.id,
                    deploy.service,
                    deploy.version,
                    deploy.targets,
                    deploy.who,
                    deploy.host,
                    deploy.command,
                )
            ],
        )
        timed(
            "deploy outcome",
            finish_commands(deploy, Outcome(0), output[-keys.TAIL_MAX :], time.time()),
        )
    for i in range(args.errors):
        timed(
            "error", report_commands("bench", "h" * 60 + f"{i % 50:04d}", "e" * 5_000, time.time())
        )
    for i in range(args.machines):
        timed("machine facts", [record_command({**facts, "host": f"host-{i}"})])
    return costs


if __name__ == "__main__":
    main()
