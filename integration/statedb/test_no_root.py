"""Writers facing a ZooKeeper with no prodstate root: a clear refusal, nothing run."""

from __future__ import annotations

import os
import subprocess
import sys

from kazoo.client import KazooClient


def test_records_and_deploys_are_refused_without_a_root(zookeeper, tmp_path):
    env = {**os.environ, "PRODSTATE_ZK": zookeeper.hosts, "PRODSTATE_CLUSTER": "empty"}
    marker = tmp_path / "ran"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "prodstate", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)

    refused = run("error", "report", "web", "boom")
    assert refused.returncode == 1
    assert "not recorded" in refused.stderr and "no root is published" in refused.stderr
    argv = ("deploy", "--service", "web", "--version", "v1", "--", "touch", str(marker))
    unknown = run(*argv)
    assert unknown.returncode == 1 and "there is no cluster 'empty'" in unknown.stderr
    zk = KazooClient(hosts=zookeeper.hosts)
    zk.start(timeout=10)
    try:  # a cluster that once formed, its root gone
        zk.create("/prodstate/empty/epoch", b"", makepath=True)
    finally:
        zk.stop()
        zk.close()
    deploy = run(*argv)
    assert deploy.returncode == 1 and "no root is published" in deploy.stderr
    assert not marker.exists()  # an unrecorded deploy never runs
    for done in (refused, unknown, deploy):
        assert "Traceback" not in done.stderr
