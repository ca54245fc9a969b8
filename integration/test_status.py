"""``prodstate status`` against a real LocalCluster: ZooKeeper, redis-servers and agents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster

STATUS = "from prodstate.cli.status import status; status(prog_name='prodstate status')"


def run_status(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command in a child process, as an operator would."""
    argv = [sys.executable, "-c", STATUS, "--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)


def replicates_from(cluster: LocalCluster, name: str) -> str:
    """``host:port`` the node's Redis itself says it replicates from."""
    info = cluster.redis[name].info("replication")
    return f"{info['master_host']}:{info['master_port']}"


def test_status_reports_the_live_tree_and_flags_a_dead_leaf(tmp_path: Path):
    with LocalCluster(tmp_path, branches=3, leaves=4) as cluster:
        cluster.wait_for_tree(timeout=60)
        result = wait_until(
            lambda: (r := run_status(cluster, "--json")).returncode == 0 and r,
            timeout=20,
            what="a healthy status",
        )
        doc = json.loads(result.stdout)
        root = cluster.root_name()
        assert doc["healthy"] and not doc["problems"]
        assert doc["root"]["node_id"] == root and doc["epoch"] >= 1
        nodes = {n["node_id"]: n for n in doc["nodes"]}
        assert set(nodes) == set(cluster.redis)
        branches = set(cluster.names("branch")) - {root}
        for leaf in cluster.names("leaf"):
            node = nodes[leaf]
            assert node["parent"] in branches
            assert node["master"] == replicates_from(cluster, leaf)
            assert node["master"] == cluster.redis[node["parent"]].address
            assert node["expected_parent"] == node["master"] and node["link"] == "up"
            assert node["lag"] is not None and node["staleness"] is not None
        for branch in branches:
            assert nodes[branch]["master"] == cluster.redis[root].address

        text = run_status(cluster)
        assert text.returncode == 0, text.stdout + text.stderr
        assert text.stdout.startswith(f"root {root} ")
        assert all(name in text.stdout for name in cluster.redis)

        victim = cluster.names("leaf")[0]
        cluster.redis[victim].kill()

        def flagged() -> dict | None:
            r = run_status(cluster, "--json")
            victim_node = next(n for n in json.loads(r.stdout)["nodes"] if n["node_id"] == victim)
            return r.returncode == 1 and victim_node["link"] == "unreachable" and victim_node

        node = wait_until(flagged, timeout=20, what=f"status flagging {victim}")
        assert any(victim in p for p in node["problems"])
        text = run_status(cluster)
        assert text.returncode == 1 and f"! leaf {victim} is registered" in text.stdout
