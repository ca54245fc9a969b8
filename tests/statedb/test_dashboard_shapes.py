"""The dashboard's data shaping (pure): counts per hour for the charts, the tree as drawn
and its changes, the recent-changes feed, the numbers behind the tiles and the metrics."""

from __future__ import annotations

import json
from dataclasses import replace

from prodstate.core.model import RootRecord
from prodstate.core.tree import NodeStatus, TreeStatus
from prodstate.statedb.dashboard import charts, feed, summary
from prodstate.statedb.dashboard.metrics import Reading, exposition
from prodstate.statedb.dashboard.read import Part
from prodstate.statedb.dashboard.render import render
from prodstate.statedb.dashboard.tree import CHIPS_SHOWN, health, tree_changes, tree_view
from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.locks import new_lock
from prodstate.statedb.machines import Machine

HOUR = 3600.0
NOW = 1_800_000_000.0 + 1800  # half past an hour


def node(name: str, tier: str, master: str = "", **fields) -> NodeStatus:
    role = "master" if not master else "slave"
    link = "master" if not master else "up"
    base = NodeStatus(name, tier, f"{name}:6379", True, True, role, link, master, None, None,
                      bool(master), 100, 0, 0.2)  # fmt: skip
    return replace(base, **fields)


def status(*nodes: NodeStatus, root: str = "b1", epoch: int = 3) -> TreeStatus:
    record = RootRecord(root, f"{root}:6379", epoch, "r" * 40)
    problems = tuple(p for n in nodes for p in n.problems)
    return TreeStatus(record, epoch, nodes, problems)


def fleet(leaves: int) -> TreeStatus:
    nodes = [node("b1", "branch"), node("b2", "branch", "b1:6379")]
    nodes += [node(f"l{i:02}", "leaf", "b2:6379") for i in range(leaves)]
    return status(*nodes)


def test_buckets_are_clock_hours_ending_with_the_current_one():
    starts = charts.bucket_starts(NOW, 3)
    assert starts == (NOW - 1800 - 2 * HOUR, NOW - 1800 - HOUR, NOW - 1800)
    assert charts.counts([NOW, NOW - 1800, NOW - 1801, NOW - 10 * HOUR, NOW + HOUR], starts) == (
        0,
        1,
        2,
    )


def test_the_errors_chart_keeps_the_noisiest_services_and_sums_the_rest():
    found = {
        f"s{i}": [ErrorEntry(f"s{i}", NOW - k * 60, "h", "m") for k in range(i + 1)]
        for i in range(8)
    }
    chart = charts.errors_chart(found, NOW, hours=2, top=3)
    assert [s.label for s in chart.series] == ["s7", "s6", "s5", "5 other services"]
    assert chart.series[0].values == (0, 8) and chart.series[-1].values == (0, 1 + 2 + 3 + 4 + 5)
    doc = json.loads(chart.to_json())
    assert doc["title"] == "Errors per hour, last 2 hours" and doc["unit"] == "errors"
    assert doc["x"] == list(chart.starts) and doc["series"][0] == {
        "label": "s7",
        "values": [0, 8],
        "color": None,
    }
    assert chart.rows()[1] == (chart.starts[1], [8, 7, 6, 15])
    assert charts.errors_chart({}, NOW).empty


def test_the_deploys_chart_groups_outcomes():
    def deploy(outcome: str, at: float) -> Deploy:
        return Deploy(outcome + str(at), "web", "v1", [], "ann", "h", at, outcome)

    found = [deploy("succeeded", NOW), deploy("killed", NOW), deploy("aborted", NOW - HOUR)]
    found.append(deploy("running", NOW))
    chart = charts.deploys_chart(found, NOW, hours=2)
    assert {s.label: s.values for s in chart.series} == {
        "succeeded": (0, 1),
        "failed": (1, 1),
        "running": (0, 1),
    }
    assert chart.series[0].color == charts.OUTCOME_COLORS["succeeded"]


def test_health_of_a_node():
    assert health(node("a", "leaf", "b:1")) == "ok"
    assert health(node("a", "leaf", "b:1", judging=True)) == "warn"
    assert health(node("a", "leaf", "b:1", fresh=False)) == "warn"
    assert health(node("a", "leaf", "b:1", problems=("down",), fresh=False)) == "bad"


def test_the_tree_view_nests_nodes_under_their_parents():
    view = tree_view(fleet(3))
    (root,) = view.tops
    assert root.is_root and root.node.node_id == "b1"
    (branch,) = root.shown
    assert branch.node.node_id == "b2" and [c.node.node_id for c in branch.shown] == [
        "l00",
        "l01",
        "l02",
    ]
    assert root.size == 5 and view.tally == {"ok": 5, "warn": 0, "bad": 0}


def test_a_large_branch_shows_only_its_troubled_leaves():
    tree = fleet(30)
    troubled = replace(tree.nodes[5], problems=("l03 link to b2 is down",))
    tree = replace(tree, nodes=(*tree.nodes[:5], troubled, *tree.nodes[6:]))
    (root,) = tree_view(tree, leaves_shown=12).tops
    (branch,) = root.shown
    assert [c.node.node_id for c in branch.shown] == ["l03"]
    assert len(branch.folded) == 29 and root.size == 32


def test_branches_are_never_folded_and_chips_are_capped():
    nodes = [node("b00", "branch")] + [node(f"b{i:02}", "branch", "b00:6379") for i in range(1, 21)]
    nodes += [node(f"l{i:03}", "leaf", "b01:6379") for i in range(150)]
    (root,) = tree_view(status(*nodes, root="b00")).tops
    assert len(root.shown) == 20 and root.folded == ()
    assert len(root.shown[0].folded) == 150
    tree = status(*nodes, root="b00")
    html = render(
        "overview.html",
        fragment=True,
        tree=Part(tree),
        view=tree_view(tree),
        copy_age=Part(0.1),
        tiles=[],
        feed=[],
        feed_error=Part(),
        errors_chart=None,
        deploys_chart=None,
        now=NOW,
    )
    assert "150 more leaves, healthy" in html and f"and {150 - CHIPS_SHOWN} more" in html


def test_nodes_attached_to_nothing_are_listed_apart():
    lost = node("l9", "leaf", "nowhere:1")
    view = tree_view(status(node("b1", "branch"), lost))
    assert [v.node.node_id for v in view.rest] == ["l9"]


def test_tree_changes():
    before = fleet(2)
    moved = replace(before.nodes[3], master="b1:6379", parent="b1")
    sick = replace(before.nodes[1], problems=("b2 is stale",))
    joined = node("l99", "leaf", "b2:6379")
    after = replace(before, nodes=(before.nodes[0], sick, moved, joined), epoch=4)
    after = replace(after, root=replace(after.root, epoch=4))
    texts = [c.text for c in tree_changes(before, after, NOW)]
    assert texts == [
        "root is now b1 (epoch 4), was b1",
        "leaf l00 left",
        "leaf l99 joined",
        "b2 is stale",
        "l01 now replicates from b1",
    ]
    assert tree_changes(None, after, NOW) == [] and tree_changes(after, after, NOW) == []
    healed = tree_changes(after, before, NOW)
    assert any(c.text == "b2 is healthy again" and not c.bad for c in healed)


def test_the_feed_merges_every_source_newest_first():
    done = Deploy("d", "web", "v2", [], "ann", "h", NOW - 50, "failed", 3, finished_at=NOW - 40)
    events = feed.merged(
        feed.service_events(
            [
                (
                    f"{int((NOW - 30) * 1000)}-0",
                    {"service": "web", "action": "running", "host": "h1", "version": "v2"},
                )
            ]
        ),
        feed.deploy_events([done]),
        feed.lock_events([new_lock("web", "ann", "migrating", NOW - 20)]),
        feed.error_events({"web": [ErrorEntry("web", NOW - 10, "h1", "boom")]}),
        length=4,
    )
    assert [e.text for e in events] == [
        "web on h1: boom",
        "lock web taken by ann: migrating",
        "web running on h1 (v2)",
        "deploy of web v2 by ann failed (exit 3)",
    ]
    assert [e.bad for e in events] == [True, False, False, True]
    assert events[2].link == "/services/web"


def test_counts_behind_the_tiles_and_metrics():
    machines = [Machine("a", {}, 5.0, False), Machine("b", {}, None, True)]
    assert summary.machines_by_freshness(machines) == {"fresh": 1, "stale": 1}
    locks = [new_lock("x", "ann", "r", NOW - 100, ttl=10), new_lock("y", "ann", "r", NOW)]
    assert summary.locks_by_state(locks, NOW) == {"held": 1, "expired": 1}
    deploys = [
        Deploy("1", "w", "v", [], "a", "h", NOW, "abandoned"),
        Deploy("2", "w", "v", [], "a", "h", NOW),
    ]
    counted = summary.deploys_by_outcome(deploys)
    assert counted["abandoned"] == 1 and counted["running"] == 1 and counted["succeeded"] == 0
    errors = {"w": [ErrorEntry("w", NOW - 10, "h", "m"), ErrorEntry("w", NOW - 7200, "h", "m")]}
    assert summary.errors_by_service(errors, NOW - HOUR) == {"w": 1}


def test_tiles_say_when_a_count_could_not_be_read():
    tiles = {t.id: t for t in summary.tiles(None, None, {"held": 2, "expired": 0}, None, {"w": 0})}
    assert tiles["nodes"].value == "?" and tiles["nodes"].health == "unknown"
    assert tiles["locks"].value == "2" and tiles["errors"].health == "ok"
    tiles = {
        t.id: t
        for t in summary.tiles(
            {"ok": 2, "bad": 1}, {"fresh": 1, "stale": 3}, None, {"failed": 2}, {"w": 4}
        )
    }
    assert tiles["troubled"].health == "bad" and tiles["stale"].health == "bad"
    assert tiles["failed"].value == "2" and tiles["errors"].value == "4"


def test_service_versions_locks_and_error_search():
    instances = {
        "h1": {"state": "running", "version": "v2"},
        "h2": {"state": "running", "version": "v2"},
        "h3": {"state": "running"},
        "h4": {"state": "stopped", "version": "v1"},
    }
    assert summary.versions(instances) == [("v2", ["h1", "h2"]), ("?", ["h3"])]
    locks = [new_lock(n, "a", "r", NOW) for n in ("shop", "shop-db", "shop.x", "shopping", "web")]
    assert [r.name for r in summary.locks_of(locks, "shop")] == ["shop", "shop-db", "shop.x"]
    found = {
        "a": [ErrorEntry("a", NOW, "h1", "Disk FULL"), ErrorEntry("a", NOW, "h2", "disk full")],
        "b": [ErrorEntry("b", NOW, "h1", "timeout")],
    }
    assert summary.matching_errors(found, "h1", "disk") == {"a": [found["a"][0]]}
    assert summary.matching_errors(found, None, None) == found


def test_metrics_exposition():
    reading = Reading(
        {"fresh": 3, "stale": 1}, {"held": 2, "expired": 1}, {"running": 1}, {"web": 4}, 0.25
    )
    text = exposition(reading).decode()
    for line in (
        'prodstate_statedb_machines{freshness="stale"} 1.0',
        'prodstate_statedb_locks{state="held"} 2.0',
        'prodstate_statedb_deploys_last_day{outcome="running"} 1.0',
        'prodstate_statedb_errors_last_hour{service="web"} 4.0',
        "prodstate_statedb_copy_age_seconds 0.25",
        'prodstate_statedb_read_ok{part="errors"} 1.0',
    ):
        assert line in text.splitlines(), line
    down = exposition(Reading(None, None, None, None, None)).decode()
    assert "prodstate_statedb_machines{" not in down and "copy_age" not in down
    assert 'prodstate_statedb_read_ok{part="machines"} 0.0' in down


def test_machines_are_picked_stale_first_and_capped():
    found = [Machine(f"web-{i}", {}, 5.0, i % 3 == 0) for i in range(10)]
    found.append(Machine("db-1", {}, None, True))
    picked = summary.pick_machines(found, "WEB", False, 3)
    assert [m.host for m in picked.shown] == ["web-0", "web-3", "web-6"]
    assert (picked.matching, picked.total, picked.stale) == (10, 11, 5)
    only = summary.pick_machines(found, None, True, 100)
    assert [m.host for m in only.shown] == ["db-1", "web-0", "web-3", "web-6", "web-9"]
