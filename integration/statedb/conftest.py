"""One small real cluster (ZooKeeper, 2 branches, 1 leaf, agents) shared by the
state-database tests, and a helper that runs ``prodstate`` commands against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from prodstate.testing.cluster import LocalCluster

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="package")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A formed tree: branch1, branch2 and leaf1."""
    workdir = tmp_path_factory.mktemp("statedb")
    with LocalCluster(workdir, branches=2, leaves=1, cluster="infra") as cluster:
        cluster.wait_for_tree(timeout=120)
        yield cluster


def make_runner(infra: LocalCluster) -> Run:
    """``run("lock", "acquire", ...)``: the real command, its ZooKeeper and Redis set in the
    environment (the leaf's Redis is the local one); returns the finished process."""

    def run_command(
        *args: str, redis: str = "leaf1", **env: str
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "PRODSTATE_ZK": infra.zk_hosts,
            "PRODSTATE_CLUSTER": infra.cluster,
            "PRODSTATE_REDIS": infra.redis[redis].address,
            **env,
        }
        argv = [sys.executable, "-m", "prodstate", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=environ)

    return run_command


@pytest.fixture
def run(infra: LocalCluster) -> Run:
    """The prodstate commands against the shared cluster (see make_runner)."""
    return make_runner(infra)
