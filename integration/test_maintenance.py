"""Maintenance on real servers: ``prodstate pause`` holds failover and moves, every agent
enforcing it itself, and ``resume`` lets the tree heal."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from prodstate.core.model import Member, Tier
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.zk.paths import Layout

SESSION = 2.0


@pytest.fixture
def small(tmp_path: Path):
    with LocalCluster(tmp_path, branches=3, leaves=4, session_timeout=SESSION) as c:
        c.wait_settled(timeout=90)
        yield c


def run_cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "prodstate", args[0], "--zk", cluster.zk_hosts]
    argv += ["--cluster", cluster.cluster, *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def logged_since(cluster: LocalCluster, name: str, mark: int, text: bytes) -> bool:
    with open(cluster.agents[name].log_path, "rb") as log:
        log.seek(mark)
        return text in log.read()


def test_a_root_killed_while_paused_is_not_replaced_until_resume(small):
    old = small.inspect().root
    small.confirmed_write("before", "1")
    done = run_cli(small, "pause", "--reason", "ZooKeeper upgrade", "--expires", "1h")
    assert done.returncode == 0, done.stderr
    assert "paused by" in done.stdout and '"ZooKeeper upgrade", 60m left' in done.stdout
    branches = [b for b in small.names("branch") if b != old.node_id]
    # Every agent has read the pause before the root goes: its gauge says so.
    for name in small.names("branch") + small.names("leaf"):
        url = small.agents[name].metrics_url + "/metrics"
        wait_until(
            lambda u=url: "prodstate_paused 1.0" in urllib.request.urlopen(u).read().decode(),
            timeout=20,
            what=f"{name} sees the pause",
        )
    marks = {b: small.agents[b].log_path.stat().st_size for b in branches}

    small.agents[old.node_id].kill()
    small.redis[old.node_id].kill()

    # The old root's session expires; a branch would now claim, and holds back instead.
    held = b"not acting on: "
    wait_until(
        lambda: any(logged_since(small, b, marks[b], held) for b in branches),
        timeout=30,
        what="a branch holding back a failover because of the pause",
    )
    status = subprocess.run(
        [sys.executable, "-m", "prodstate", "status", "--zk", small.zk_hosts,
         "--cluster", small.cluster, "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    doc = json.loads(status.stdout)
    assert doc["root"] is None and doc["epoch"] == old.epoch
    assert doc["pause"]["reason"] == "ZooKeeper upgrade" and doc["pause"]["by"]
    text = subprocess.run(
        [sys.executable, "-m", "prodstate", "status", "--zk", small.zk_hosts,
         "--cluster", small.cluster],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "MAINTENANCE: paused by" in text and "(no failover, no moves)" in text

    resumed = run_cli(small, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed (was paused by" in resumed.stdout
    new = small.wait_for_new_root(old.epoch, timeout=30)
    assert new.node_id in branches and new.epoch == old.epoch + 1
    small.confirmed_write("after", "2")
    small.wait_everywhere("after", "2")
    small.wait_everywhere("before", "1")


def test_leaves_do_not_move_while_paused(small):
    report = small.inspect()
    root = report.root.node_id
    victim = next(b for b in small.names("branch") if b != root and any(
        report.masters[n] == small.advertised(b) for n in small.names("leaf")))  # fmt: skip
    orphans = [n for n in small.names("leaf") if report.masters[n] == small.advertised(victim)]
    assert run_cli(small, "pause", "--reason", "network work").returncode == 0
    marks = {n: small.agents[n].log_path.stat().st_size for n in orphans}
    wait_until(
        lambda: all(
            "prodstate_paused 1.0"
            in urllib.request.urlopen(small.agents[n].metrics_url + "/metrics").read().decode()
            for n in orphans
        ),
        timeout=20,
        what="the leaves see the pause",
    )
    small.agents[victim].kill()
    small.redis[victim].kill()
    wait_until(
        lambda: all(logged_since(small, n, marks[n], b"not acting on: ") for n in orphans),
        timeout=30,
        what="the orphaned leaves holding back their move",
    )
    for n in orphans:
        info = small.redis[n].info("replication")
        assert f"{info['master_host']}:{info['master_port']}" == small.advertised(victim)
    assert run_cli(small, "resume").returncode == 0
    small.wait_for_tree(timeout=30)
    small.confirmed_write("moved", "1")
    for n in orphans:
        wait_until(lambda n=n: small.redis[n].client().get("moved") == "1", timeout=20,
                   what=f"{n} moved after resume")  # fmt: skip


def test_bad_input_is_one_line_and_a_non_zero_exit(small):
    cases = [
        (("resume",), 1, "is not paused"),
        (("pause", "--reason", "x", "--expires", "soon"), 2, "is not a duration"),
        (("pause", "--reason", "x", "--expires", "99999999d"), 2, "at most 30d"),
        (("pause", "--reason", "   "), 2, "a pause needs a reason"),
    ]
    for args, code, text in cases:
        out = run_cli(small, *args)
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert text in out.stderr and "Traceback" not in out.stderr, out.stderr
    argv = [sys.executable, "-m", "prodstate", "pause", "--zk", small.zk_hosts]
    out = subprocess.run([*argv, "--cluster", "nosuch", "--reason", "x"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 1 and "cluster nosuch does not exist" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_switchover_moves_the_root_and_refusals_say_why(small):
    old = small.inspect().root
    refused = [
        (("--to", old.node_id), f"{old.node_id} is the root already"),
        (("--to", "nosuch"), "nosuch is not a registered branch"),
        (("--to", "leaf1"), "leaf1 is not a registered branch"),
    ]
    for args, why in refused:
        out = run_cli(small, "switchover", *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert f"switchover refused: {why}" in out.stderr and "Traceback" not in out.stderr
    assert run_cli(small, "pause", "--reason", "x").returncode == 0
    out = run_cli(small, "switchover", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["ok"] is False
    assert "the cluster is paused by" in out.stderr
    assert run_cli(small, "resume").returncode == 0

    target = next(b for b in small.names("branch") if b != old.node_id)
    small.confirmed_write("before", "1")
    mark = Path(small.agents[old.node_id].log_path).stat().st_size
    out = run_cli(small, "switchover", "--to", target)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"root {target} serves with epoch {old.epoch + 1}" in out.stdout
    assert "fenced and released at the target's offset" in out.stdout
    report = small.wait_for_tree(timeout=30)
    assert report.root.node_id == target and report.root.epoch == old.epoch + 1
    assert report.masters[old.node_id] == small.advertised(target)
    small.confirmed_write("after", "2")
    small.wait_everywhere("after", "2")
    small.wait_everywhere("before", "1")
    gone = small.zk().exists(f"/prodstate/{small.cluster}/switchover")
    assert gone is None, "the request is removed once done"
    # The heartbeat the former root saw was its own: stale until the new root's reaches it.
    wait_until(
        lambda: logged_since(small, old.node_id, mark, b"no longer the root"),
        timeout=10,
        what="the former root forgetting its own heartbeat",
    )
    member = Layout(small.cluster).member(Tier.BRANCH, old.node_id)
    wait_until(
        lambda: Member.from_znode(old.node_id, Tier.BRANCH, small.zk().get(member)[0]).fresh,
        timeout=30,
        what="the former root fresh on the new root's heartbeat",
    )


def test_a_drain_moves_exactly_the_drained_branchs_leaves_and_undrain_brings_them_back(small):
    report = small.inspect()
    root = report.root.node_id
    out = run_cli(small, "drain", root)
    assert out.returncode == 1 and "is the root: move the root first" in out.stderr
    victim = next(b for b in small.names("branch") if b != root and any(
        report.masters[n] == small.advertised(b) for n in small.names("leaf")))  # fmt: skip
    mine = {n for n in small.names("leaf") if report.masters[n] == small.advertised(victim)}
    others = {n: report.masters[n] for n in small.names("leaf") if n not in mine}
    before = small.full_syncs()

    out = run_cli(small, "drain", victim, "--spread", "2s", "--wait", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] and doc["leaves"] == len(mine)
    during = small.inspect()
    assert all(during.masters[n] != small.advertised(victim) for n in mine)
    assert {n: during.masters[n] for n in others} == others, "only the drained branch's leaves move"
    text = subprocess.run(
        [sys.executable, "-m", "prodstate", "status", "--zk", small.zk_hosts,
         "--cluster", small.cluster],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "DRAINED" in text

    assert run_cli(small, "undrain", victim).returncode == 0
    wait_until(
        lambda: all(small.inspect().masters[n] == small.advertised(victim) for n in mine),
        timeout=30,
        what="the leaves back on the undrained branch",
    )
    assert small.new_full_syncs(before) == {}
    out = run_cli(small, "undrain", victim)
    assert out.returncode == 1 and "is not drained" in out.stderr
