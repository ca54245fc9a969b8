"""An agent's own lifecycle: restarted beside a running Redis; its Redis down, then back."""

from __future__ import annotations

import subprocess

from kazoo.exceptions import NoNodeError

from prodstate.core.model import Member
from prodstate.core.rendezvous import choose_parent
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster


def replicaof_calls(cluster: LocalCluster, name: str) -> int:
    """How many REPLICAOF commands node ``name``'s Redis has executed since it started."""
    stats = cluster.redis[name].info("commandstats")
    return stats.get("cmdstat_replicaof", {}).get("calls", 0)


def registered(cluster: LocalCluster, tier: str, name: str) -> tuple[Member, int] | None:
    """Node ``name``'s member znode and the session that owns it, or None."""
    path = f"/prodstate/{cluster.cluster}/members/{tier}/{name}"
    try:
        raw, stat = cluster.zk().get(path)
    except NoNodeError:
        return None
    return Member.from_json(raw), stat.ephemeralOwner


def test_restarted_agents_adopt_their_running_redis_without_replicaof(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    branch = next(b for b in cluster.names("branch") if b != root)
    address = cluster.redis[branch].address
    leaf = next(n for n in cluster.names("leaf") if report.masters[n] == address)
    nodes = [branch, leaf]
    calls = {n: replicaof_calls(cluster, n) for n in nodes}
    sessions = {n: registered(cluster, cluster.tiers[n], n)[1] for n in nodes}

    for name in nodes:
        cluster.agents[name].kill()
        cluster.agents[name].forget_session()  # a lost state directory: new sessions
    # With its agent dead, Redis goes on serving and replicating as it was.
    cluster.confirmed_write("agents-dead", "1")
    cluster.wait_everywhere("agents-dead", "1")

    # The branch first: were its agent slower to return than the session timeout, its old
    # znode would expire and a running leaf agent would rightly move away.
    for name in nodes:
        cluster.agents[name].start()

        def reregistered(name: str = name) -> bool:
            now = registered(cluster, cluster.tiers[name], name)
            return now is not None and now[1] != sessions[name]

        wait_until(reregistered, timeout=30, what=f"{name} registered with a new session")
    after = cluster.wait_for_tree(timeout=30)
    assert after.root.node_id == root and after.root.epoch == report.root.epoch
    assert {n: replicaof_calls(cluster, n) for n in nodes} == calls, "needless REPLICAOF"
    cluster.confirmed_write("agents-back", "2")
    cluster.wait_everywhere("agents-back", "2")


#: Session timeout for the restart test: an agent started on a loaded CI machine takes
#: seconds to import and connect, so 2 s sessions would expire before it is back.
RESTART_SESSION = 10.0


def test_agents_killed_and_restarted_at_once_resume_their_sessions_and_nothing_moves(tmp_path):
    """The root's, a branch's and a leaf's agents crash (SIGKILL) and start again within
    the session timeout: each takes its session back from its state directory, so its
    znodes never go, the root keeps its epoch and no Redis is re-pointed."""
    with LocalCluster(
        tmp_path, branches=3, leaves=6, tick_time=500, session_timeout=RESTART_SESSION
    ) as cluster:
        cluster.wait_settled(timeout=90)
        check_agents_resume_their_sessions(cluster)


def check_agents_resume_their_sessions(cluster: LocalCluster) -> None:
    """Kill and restart the root's, a branch's and a leaf's agents; nothing may move."""
    report = cluster.inspect()
    root = report.root.node_id
    branch = next(b for b in cluster.names("branch") if b != root)
    leaf = next(n for n in cluster.names("leaf") if report.masters[n] == cluster.advertised(branch))
    nodes = [root, branch, leaf]
    calls = {n: replicaof_calls(cluster, n) for n in nodes}
    sessions = {n: registered(cluster, cluster.tiers[n], n)[1] for n in nodes}
    marks = {n: cluster.agents[n].log_path.stat().st_size for n in nodes}

    for name in nodes:
        cluster.agents[name].kill()
    for name in nodes:
        cluster.agents[name].start()

    def resumed(name: str) -> bool:
        with open(cluster.agents[name].log_path, "rb") as log:
            log.seek(marks[name])
            text = log.read()
        assert b"session had expired" not in text, f"{name} was back after its session expired"
        return b"resumed the previous process's ZooKeeper session" in text

    for name in nodes:
        wait_until(lambda n=name: resumed(n), timeout=30, what=f"{name} resumed its session")
    cluster.confirmed_write("agents-back", "1")
    cluster.wait_everywhere("agents-back", "1")
    after = cluster.wait_for_tree(timeout=30)
    assert after.root.node_id == root and after.root.epoch == report.root.epoch
    assert {n: registered(cluster, cluster.tiers[n], n)[1] for n in nodes} == sessions
    assert {n: replicaof_calls(cluster, n) for n in nodes} == calls, "a Redis was re-pointed"


def test_a_second_agent_for_the_same_node_refuses_to_run(cluster):
    agent = cluster.agents[cluster.names("leaf")[0]]
    argv = agent.argv
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2, second.stderr
    assert "refusing to run: another agent for node" in second.stderr
    assert "Traceback" not in second.stderr
    assert agent.running


def test_root_agent_crash_with_its_redis_alive_fails_over_without_full_resyncs(cluster):
    old = cluster.inspect().root
    cluster.confirmed_write("before", "1")
    cluster.wait_everywhere("before", "1")
    before = cluster.full_syncs()

    cluster.agents[old.node_id].kill()  # its Redis goes on serving until the new root fences it

    cluster.wait_for_new_root(old.epoch)  # once the old root's session has expired
    cluster.agents[old.node_id].start()
    report = cluster.wait_for_tree(timeout=30)
    assert report.root.epoch == old.epoch + 1
    if report.root.node_id != old.node_id:
        assert report.masters[old.node_id] == cluster.redis[report.root.node_id].address
    cluster.confirmed_write("after", "2")
    cluster.wait_everywhere("after", "2")
    cluster.wait_everywhere("before", "1")
    assert cluster.new_full_syncs(before) == {}


def test_branch_redis_down_withdraws_it_and_its_return_brings_leaves_back(cluster):
    report = cluster.inspect()
    root = report.root.node_id
    victim = next(b for b in cluster.names("branch") if b != root)
    address = cluster.redis[victim].address
    orphans = {n for n in cluster.names("leaf") if report.masters[n] == address}
    assert orphans, "rendezvous hashing gave the victim no leaf; pick a larger tree"
    cluster.confirmed_write("before", "1")

    cluster.redis[victim].kill()  # the agent lives on

    wait_until(
        lambda: registered(cluster, "branch", victim)[0].available is False,
        timeout=30,
        what=f"{victim} withdrawn from parent choice",
    )
    during = cluster.wait_for_tree(timeout=30)
    others = {cluster.redis[b].address for b in cluster.names("branch") if b not in (root, victim)}
    assert {during.masters[n] for n in orphans} <= others
    cluster.confirmed_write("while-down", "2")
    cluster.wait_everywhere("while-down", "2")

    cluster.redis[victim].start()  # back empty: it must resync from the tree before serving

    wait_until(
        lambda: registered(cluster, "branch", victim)[0].available is True,
        timeout=30,
        what=f"{victim} available again",
    )
    after = cluster.wait_for_tree(timeout=30)
    live = [b for b in cluster.names("branch") if b != root]
    assert {n for n in cluster.names("leaf") if choose_parent(n, live) == victim} == orphans
    assert {after.masters[n] for n in orphans} == {address}
    assert cluster.redis[victim].client().get("before") == "1"
    cluster.confirmed_write("after", "3")
    cluster.wait_everywhere("after", "3")


def test_at_a_cold_start_empty_leaves_wait_for_a_branch_instead_of_the_root(tmp_path):
    # The harness turns the wait off to start its clusters sooner; here it is on.
    with LocalCluster(
        tmp_path, branches=3, leaves=4, agent_args=["--cold-start-wait", "60"]
    ) as cluster:
        report = cluster.wait_for_tree(timeout=90)
        root = cluster.redis[report.root.node_id].address
        leaves = cluster.names("leaf")
        waited = [n for n in leaves if "this empty leaf waits" in _log(cluster.agents[n])]
        assert waited, "no leaf saw the branches syncing: the cold start was not exercised"
        from_root = [n for n in leaves if f"Connecting to MASTER {root}" in _log(cluster.redis[n])]
        assert from_root == [], "leaves loaded the dataset from the root"
        cluster.confirmed_write("cold", "1")
        cluster.wait_everywhere("cold", "1")


def _log(process) -> str:
    return process.log_path.read_text(errors="replace")
