"""build_status (pure), its JSON and text renderings, and the status command's exit codes."""

from __future__ import annotations

import json
from dataclasses import replace

from click.testing import CliRunner

from prodstate.cli.status import status
from prodstate.core.maintenance import Pause
from prodstate.core.model import FENCE_MIN_REPLICAS, Lineage, Member, RedisState, RootRecord, Tier
from prodstate.core.rendezvous import choose_parent
from prodstate.core.tree import TreeStatus, build_status

NOW = 1000.0
ROOT_ID, BRANCHES, LEAVES = "b1", ("b1", "b2", "b3"), ("l1", "l2", "l3", "l4", "l5")


def addr(node: str) -> str:
    return f"{node}.example.net:6379"


ROOT = RootRecord(ROOT_ID, addr(ROOT_ID), epoch=3, replid="r" * 40, run_id="run-b1")


def members(**overrides: Member) -> dict[str, dict[str, Member]]:
    branches = {b: Member(b, Tier.BRANCH, addr(b), b != ROOT_ID) for b in BRANCHES}
    leaves = {leaf: Member(leaf, Tier.LEAF, addr(leaf)) for leaf in LEAVES}
    for node, member in overrides.items():
        (branches if member.tier == Tier.BRANCH else leaves)[node] = member
    return {"branch": branches, "leaf": leaves}


def parent_of(leaf: str) -> str:
    return choose_parent(leaf, [b for b in BRANCHES if b != ROOT_ID]) or ROOT_ID


def healthy_states() -> dict[str, RedisState]:
    states = {ROOT_ID: RedisState(True, "master", run_id="run-b1", offset=5000)}
    for b in BRANCHES[1:]:
        states[b] = RedisState(True, "slave", offset=4990, master=addr(ROOT_ID), link_up=True)
    for leaf in LEAVES:
        states[leaf] = RedisState(True, "slave", offset=4900, master=addr(parent_of(leaf)),
                                  link_up=True)  # fmt: skip
    return states


def run(
    root: RootRecord | None = ROOT,
    tiers: dict[str, dict[str, Member]] | None = None,
    states: dict[str, RedisState] | None = None,
    heartbeats: dict[str, float | None] | None = None,
    stale_after: float | None = 10.0,
) -> TreeStatus:
    states = healthy_states() if states is None else states
    if heartbeats is None:
        heartbeats = {node: NOW - 0.5 for node in states}
    lineage = Lineage(3, ROOT_ID, addr(ROOT_ID), ("r" * 40,))
    return build_status(root, lineage, tiers or members(), states, heartbeats, NOW, stale_after)


def node(report: TreeStatus, node_id: str):
    return next(n for n in report.nodes if n.node_id == node_id)


def test_a_healthy_tree_has_no_problems():
    report = run()
    assert report.healthy, report.problems
    assert report.epoch == 3 and report.root == ROOT
    assert node(report, "b2").expected_parent == addr(ROOT_ID)
    assert node(report, ROOT_ID).expected_parent is None
    for leaf in LEAVES:
        n = node(report, leaf)
        assert n.expected_parent == addr(parent_of(leaf)) and n.parent == parent_of(leaf)
        assert n.link == "up" and n.staleness == 0.5 and not n.problems


def test_lag_is_root_offset_minus_node_offset_when_both_are_known():
    states = healthy_states()
    states["l1"] = RedisState(False)
    report = run(states=states)
    assert node(report, ROOT_ID).lag == 0
    assert node(report, "b2").lag == 10
    assert node(report, "l2").lag == 100
    assert node(report, "l1").lag is None and node(report, "l1").offset is None
    states[ROOT_ID] = RedisState(False)
    assert all(n.lag is None for n in run(states=states).nodes)


def test_leaf_replicating_from_the_wrong_branch_is_flagged():
    states = healthy_states()
    wrong = next(b for b in BRANCHES[1:] if b != parent_of("l1"))
    states["l1"] = replace(states["l1"], master=addr(wrong))
    report = run(states=states)
    assert not report.healthy
    assert node(report, "l1").parent == wrong
    assert any("l1 replicates from" in p and addr(parent_of("l1")) in p for p in report.problems)


def test_leaf_with_no_parent_is_flagged_and_makes_two_masters():
    states = healthy_states()
    states["l2"] = RedisState(True, "master", offset=10)
    report = run(states=states)
    assert any("l2 has no parent" in p for p in node(report, "l2").problems)
    assert any(p.startswith("2 masters") and "l2" in p for p in report.problems)
    assert "l2" in report.render_text().split("not attached")[0]  # shown as a top of its own


def test_leaf_with_a_down_link_is_flagged():
    states = healthy_states()
    states["l3"] = replace(states["l3"], link_up=False)
    report = run(states=states)
    assert node(report, "l3").link == "down"
    assert any("l3 link to" in p for p in report.problems)


def test_two_masters_are_flagged():
    states = healthy_states()
    states["b2"] = RedisState(True, "master", offset=4990)
    report = run(states=states)
    assert f"2 masters: {ROOT_ID}, b2" in report.problems
    assert any("b2 has no parent" in p for p in report.problems)


def test_stale_node_and_missing_heartbeat_are_flagged():
    heartbeats: dict[str, float | None] = {n: NOW - 0.5 for n in healthy_states()}
    heartbeats["l4"] = NOW - 42.0
    heartbeats["l5"] = None
    report = run(heartbeats=heartbeats)
    assert node(report, "l4").staleness == 42.0
    assert any("l4 is stale" in p for p in report.problems)
    assert any("l5 holds no heartbeat" in p for p in report.problems)
    assert run(heartbeats=heartbeats, stale_after=None).healthy


def test_registered_but_unreachable_node_is_flagged():
    states = healthy_states()
    del states["l5"]
    states["b3"] = RedisState(False)
    report = run(states=states)
    assert node(report, "l5").link == "unreachable" and not node(report, "l5").reachable
    assert any("l5 is registered but its Redis" in p for p in report.problems)
    assert any("b3 is registered but its Redis" in p for p in report.problems)


def test_unavailable_branch_is_flagged_and_leaves_expect_the_others():
    tiers = members(b2=Member("b2", Tier.BRANCH, addr("b2"), available=False))
    report = run(tiers=tiers)
    assert "branch b2 is not (yet) available to leaves" in report.problems
    assert all(node(report, leaf).expected_parent == addr("b3") for leaf in LEAVES)


def test_leaves_follow_the_root_when_no_branch_is_available():
    tiers = {"branch": {ROOT_ID: Member(ROOT_ID, Tier.BRANCH, addr(ROOT_ID), False)}}
    tiers["leaf"] = members()["leaf"]
    states = healthy_states()
    for leaf in LEAVES:
        states[leaf] = replace(states[leaf], master=addr(ROOT_ID))
    report = run(tiers=tiers, states=states)
    assert report.healthy, report.problems
    assert {node(report, leaf).parent for leaf in LEAVES} == {ROOT_ID}


def test_no_root_is_flagged():
    report = run(root=None)
    assert not report.healthy
    assert "no root elected" in report.problems
    assert all(n.expected_parent is None for n in report.nodes)
    assert report.render_text().startswith("no root elected")


def test_root_problems():
    states = healthy_states()
    states[ROOT_ID] = replace(states[ROOT_ID], min_replicas_to_write=FENCE_MIN_REPLICAS)
    assert f"root {ROOT_ID} is fenced: it refuses writes" in run(states=states).problems
    states[ROOT_ID] = replace(states[ROOT_ID], min_replicas_to_write=2, replicas=(addr("b2"),))
    assert f"root {ROOT_ID} refuses writes: it needs 2 replica(s) attached, has 1" in (
        run(states=states).problems
    )
    states[ROOT_ID] = replace(states[ROOT_ID], replicas=(addr("b2"), addr("b3")))
    assert not [p for p in run(states=states).problems if "refuses writes" in p]
    states[ROOT_ID] = replace(states[ROOT_ID], min_replicas_to_write=1, run_id="run-new")
    assert any("restarted since" in p for p in run(states=states).problems)
    states[ROOT_ID] = replace(states["b2"])
    assert f"root {ROOT_ID} is not a master" in run(states=states).problems
    tiers = members()
    del tiers["branch"][ROOT_ID]
    assert f"root {ROOT_ID} is not registered as a member" in run(tiers=tiers).problems


def test_inconsistent_registrations_are_flagged():
    tiers = members()
    tiers["leaf"]["b2"] = Member("b2", Tier.LEAF, addr("b2"))
    tiers["branch"]["b3"] = Member("b3", Tier.LEAF, addr("b3"))
    problems = run(tiers=tiers).problems
    assert "b2 is registered as both branch and leaf" in problems
    assert "b3 is registered under branch but says leaf" in problems
    assert "no nodes registered" in run(tiers={"branch": {}}, states={}).problems


def test_json_shape():
    states = healthy_states()
    states["l1"] = RedisState(False)
    doc = json.loads(run(states=states).to_json())
    assert set(doc) == {"healthy", "root", "epoch", "nodes", "pause", "problems"}
    assert doc["healthy"] is False and doc["epoch"] == 3 and doc["pause"] is None
    assert doc["root"] == {"node_id": ROOT_ID, "address": addr(ROOT_ID), "epoch": 3,
                           "replid": "r" * 40}  # fmt: skip
    assert {n["node_id"] for n in doc["nodes"]} == set(BRANCHES) | set(LEAVES)
    l1 = next(n for n in doc["nodes"] if n["node_id"] == "l1")
    assert l1["link"] == "unreachable" and l1["lag"] is None and l1["problems"]
    l2 = next(n for n in doc["nodes"] if n["node_id"] == "l2")
    assert l2["tier"] == "leaf" and l2["master"] == addr(parent_of("l2")) and l2["lag"] == 100
    assert doc["problems"] == [p for n in doc["nodes"] for p in n["problems"]]
    assert json.loads(run(root=None).to_json())["root"] is None


def test_text_shows_root_then_branches_with_their_leaves():
    states = healthy_states()
    states["l5"] = RedisState(True, "slave", master="elsewhere:6379", link_up=False)
    lines = run(states=states).render_text().splitlines()
    assert lines[0].startswith(f"root {ROOT_ID} ({addr(ROOT_ID)})  epoch 3  UNHEALTHY")
    assert lines[1].startswith(f"{ROOT_ID} (branch")
    for b in BRANCHES[1:]:
        at = lines.index(next(line for line in lines if line.startswith(f"  {b} (branch")))
        mine = [leaf for leaf in LEAVES[:4] if parent_of(leaf) == b]
        below = [line.strip().split()[0] for line in lines[at + 1 : at + 1 + len(mine)]]
        assert sorted(below) == mine and all("lag" in line for line in lines[at : at + 2])
    detached = lines[lines.index("not attached to the tree:") + 1]
    assert detached.startswith("  l5 (leaf") and "! l5 replicates from elsewhere:6379" in detached
    assert any(line.startswith("problems (1):") for line in lines)


def test_command_usage_errors_and_unreachable_zookeeper_exit_2():
    runner = CliRunner()
    result = runner.invoke(status, [], env={"PRODSTATE_ZK": "", "PRODSTATE_CLUSTER": ""})
    assert result.exit_code == 2 and "--zk" in result.output
    args = ["--zk", "127.0.0.1:1", "--cluster", "dev", "--zk-timeout", "0.3"]
    result = runner.invoke(status, args)
    assert result.exit_code == 2
    assert "cannot connect to ZooKeeper at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
    assert runner.invoke(status, ["--zk", "x:y", "--cluster", "dev"]).exit_code == 2


def test_a_stale_agent_is_a_problem_and_one_still_judging_is_shown_but_is_not():
    stale = Member("b2", Tier.BRANCH, addr("b2"), fresh=False)
    report = run(tiers=members(b2=stale))
    assert "branch b2 reports its copy stale (its agent's measure)" in report.problems
    assert "STALE (agent)" in report.render_text()
    judging = replace(stale, judging=True)
    report = run(tiers=members(b2=judging))
    assert report.healthy, report.problems
    assert "judging (agent started)" in report.render_text()
    assert json.loads(report.to_json())["nodes"][1]["judging"] is True


def test_a_pause_is_shown_in_text_and_json_without_making_the_tree_unhealthy():
    pause = Pause("ZooKeeper upgrade", "ops@admin1", NOW - 60, NOW + 600)
    lineage = Lineage(3, ROOT_ID, addr(ROOT_ID), ("r" * 40,))
    heartbeats = {node: NOW - 0.5 for node in healthy_states()}
    report = build_status(
        ROOT, lineage, members(), healthy_states(), heartbeats, NOW, 10.0, (), pause
    )
    assert report.healthy
    text = report.render_text()
    assert 'MAINTENANCE: paused by ops@admin1: "ZooKeeper upgrade", 10m left' in text
    doc = json.loads(report.to_json())["pause"]
    assert doc["reason"] == "ZooKeeper upgrade" and doc["expires"] == NOW + 600
    assert doc["text"].startswith("paused by ops@admin1")
