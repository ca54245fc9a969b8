"""The state-database commands on a secured cluster (ZooKeeper ACLs, Redis users, TLS only):
with ``--credentials-file`` and the ``--tls-*`` files they work and their lock znodes carry
prodstate's ACL; without the credentials they fail in one line that says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from integration.statedb.conftest import Run, make_runner
from prodstate.statedb.keys import LOCKS, MACHINES
from prodstate.statedb.keys import errors as errors_key
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.secure import SecureSetup
from prodstate.zk.acl import auth_data, prodstate_acl, same_acl
from prodstate.zk.paths import Layout


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two branches and a leaf, Redis on TLS only, the tree formed."""
    workdir = tmp_path_factory.mktemp("statedb-secured")
    security = SecureSetup(workdir, tls=True)
    with LocalCluster(workdir, branches=2, leaves=1, cluster="infra", security=security) as cluster:
        cluster.wait_for_tree(timeout=60)
        yield cluster


@pytest.fixture(scope="module")
def run(secured: LocalCluster) -> Run:
    """The commands against the secured cluster, reading the leaf's Redis."""
    return make_runner(secured)


def _all_files(cluster: LocalCluster) -> list[str]:
    """--credentials-file and the --tls-* files."""
    assert cluster.security is not None
    return cluster.security.agent_args()


def _tls_only(cluster: LocalCluster) -> list[str]:
    """The --tls-* files without --credentials-file."""
    files = _all_files(cluster)
    assert files[0] == "--credentials-file"
    return files[2:]


def test_locks_work_with_the_credentials_file_and_carry_prodstates_acl(secured, run, kazoo_factory):
    files = _all_files(secured)
    taken = run("lock", "acquire", "web", "--reason", "upgrade", "--holder", "ann@h1", *files)
    assert taken.returncode == 0, taken.stderr
    listed = run("lock", "list", "--json", *files)
    assert listed.returncode == 0, listed.stderr
    assert [(r["name"], r["holder"]) for r in json.loads(listed.stdout)] == [("web", "ann@h1")]

    layout = Layout(secured.cluster)
    wanted = prodstate_acl(secured.security.credentials)
    assert wanted is not None
    # ZooKeeper shows the digests of an ACL only to a client holding ADMIN on the znode.
    agents = kazoo_factory(secured.zk_hosts, auth_data=auth_data(secured.security.credentials))
    for path in (layout.statedb, layout.locks, layout.lock("web")):
        assert same_acl(agents.get_acls(path)[0], wanted), path
    leaf = secured.redis["leaf1"].client()
    wait_until(lambda: leaf.hget(LOCKS, "web"), timeout=20, what="the lock mirrored on the leaf")

    released = run("lock", "release", "web", "--holder", "ann@h1", *files)
    assert released.returncode == 0, released.stderr
    assert run("lock", "check", "web", *files).returncode == 0
    wait_until(lambda: leaf.hget(LOCKS, "web") is None, timeout=20, what="the mirror cleared")


def test_records_are_written_and_read_with_the_credentials_file(secured, run):
    files = _all_files(secured)
    reported = run("machine", "report", "--host", "box1", *files)
    assert reported.returncode == 0, reported.stderr
    shown = wait_until(
        lambda: run("machine", "show", "box1", "--json", *files).stdout,
        timeout=20,
        what="box1's facts on the leaf",
    )
    assert json.loads(shown)["host"] == "box1"

    recorded = run("error", "report", "api", "disk <full>", "--host", "box1", *files)
    assert recorded.returncode == 0, recorded.stderr
    errors = wait_until(
        lambda: (
            "disk <full>" in (done := run("errors", "--service", "api", *files)).stdout and done
        ),
        timeout=20,
        what="the error on the leaf",
    )
    assert errors.returncode == 0 and "box1" in errors.stdout

    deployed = run("deploy", "--service", "api", "--version", "v1", *files, "--", "true")
    assert deployed.returncode == 0, deployed.stderr
    wait_until(
        lambda: "succeeded" in run("deploys", "--service", "api", *files).stdout,
        timeout=20,
        what="the deploy on the leaf",
    )


def _lock_znode(cluster: LocalCluster) -> object:
    return cluster.zk().exists(Layout(cluster.cluster).lock("db"))


def _facts(cluster: LocalCluster) -> object:
    return cluster.redis[cluster.root_name()].client().hget(MACHINES, "box2")


def _error(cluster: LocalCluster) -> object:
    entries = cluster.redis[cluster.root_name()].client().xrange(errors_key("ops"))
    return [e for e in entries if "boom" in json.dumps(e)]


@pytest.mark.parametrize(
    ("args", "tls", "reason", "written"),
    [
        # Only ZooKeeper is asked before the refusal: no option at all.
        (("lock", "acquire", "db", "--reason", "r"), False, "NoAuthError", _lock_znode),
        (("machine", "report", "--host", "box2"), True, "refused the credentials", _facts),
        (("error", "report", "ops", "boom"), True, "refused the credentials", _error),
        (("errors",), True, "[redis.reader]", None),
    ],
)
def test_without_the_credentials_file_a_command_fails_in_one_line_writing_nothing(
    secured, run, args, tls, reason, written
):
    done = run(*args, *(_tls_only(secured) if tls else []))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("prodstate: ") and reason.lower() in lines[0].lower(), lines[0]
    assert not lines[0].rstrip().endswith(":")
    assert written is None or not written(secured)


def test_settings_are_changed_and_read_with_the_credentials_file(secured, run):
    files = _all_files(secured)
    made = run("config", "schema", "set", "sec", "--free-form", "--reason", "r", *files)
    assert made.returncode == 0, made.stderr
    done = run("config", "set", "sec", "k", "[1]", "--if-version", "0", "--reason", "r", *files)
    assert done.returncode == 0, done.stderr
    got = run("config", "get", "sec", "k", *files)
    assert (got.returncode, got.stdout) == (0, "[1]\n"), got.stderr
    denied = run("config", "set", "sec", "k", "2", "--reason", "r", *_tls_only(secured))
    lines = denied.stderr.strip().splitlines()
    assert denied.returncode != 0 and len(lines) == 1 and "Traceback" not in denied.stderr
    assert run("config", "get", "sec", "k", *files).stdout == "[1]\n"
