"""The fleet of ``zk_sessions.py``: real branch agents on the ensemble, and the worker processes
holding the simulated leaves (``zkworker.py``)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, WatchedEvent
from zkworker import WorkerPlan, run_worker

from prodstate.core.model import Member, RootRecord, Tier
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.zk_server import ZooKeeperEnsemble
from prodstate.zk.paths import Layout


class BranchCluster(LocalCluster):
    """A LocalCluster of branches only, whose agents connect to the ensemble's voting servers
    (the observers, if any, are for the leaves)."""

    @property
    def zk_hosts(self) -> str:
        zk = self.zookeeper
        if isinstance(zk, ZooKeeperEnsemble):
            return zk.hosts_of(zk.voters)
        return zk.hosts

    def branch_members(self) -> dict[str, Member]:
        """The branches registered, by node id."""
        zk, layout = self.zk(), Layout(self.cluster)
        found = {}
        for name in zk.get_children(layout.members(Tier.BRANCH)):
            raw, _ = zk.get(layout.member(Tier.BRANCH, name))
            found[name] = Member.from_znode(name, Tier.BRANCH, raw)
        return found

    def root_record(self) -> RootRecord | None:
        zk = self.zk()
        stat = zk.exists(Layout(self.cluster).root)
        if stat is None:
            return None
        raw, stat = zk.get(Layout(self.cluster).root)
        return RootRecord.from_json(raw, stat.ephemeralOwner)

    def session_of(self, name: str) -> int:
        """The ZooKeeper session of branch ``name``'s agent (its member znode's owner)."""
        stat = self.zk().exists(Layout(self.cluster).member(Tier.BRANCH, name))
        return stat.ephemeralOwner if stat else 0

    def crash(self, name: str) -> None:
        """SIGKILL a branch's agent and Redis together: a machine crash."""
        self.agents[name].kill()
        self.redis[name].kill()

    def tree_ready(self) -> bool:
        """A root serving with its replication id published, every other live branch
        registered available (to leaves) and fresh."""
        root = self.root_record()
        if root is None or not root.replid:
            return False
        members = self.branch_members()
        live = [n for n, a in self.agents.items() if a.running and n != root.node_id]
        return all(n in members and members[n].available and members[n].fresh for n in live)


@dataclass
class ZnodeTimes:
    """When a znode went, came and changed, as seen by a watch (monotonic times)."""

    deleted: list[float] = field(default_factory=list)
    created: list[float] = field(default_factory=list)
    changed: list[tuple[float, bytes]] = field(default_factory=list)


def follow_znode(zk: KazooClient, path: str) -> ZnodeTimes:
    """Note every deletion, creation and data change of ``path`` from now on."""
    times = ZnodeTimes()
    lock = threading.Lock()

    def arm() -> None:
        try:
            zk.get(path, watch=on_event)
        except Exception:  # gone: wait for it to come back
            zk.exists(path, watch=on_event)

    def on_event(event: WatchedEvent) -> None:
        at = time.monotonic()
        with lock:
            if event.type == EventType.DELETED:
                times.deleted.append(at)
            elif event.type == EventType.CREATED:
                times.created.append(at)
        try:
            raw, _ = zk.get(path, watch=on_event)
        except Exception:
            zk.exists(path, watch=on_event)
            return
        with lock:
            times.changed.append((at, raw))

    arm()
    return times


class Fleet:
    """The worker processes holding the simulated leaves, spoken to over pipes."""

    def __init__(self, plans: list[WorkerPlan]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ids = [leaf for plan in plans for leaf in plan.leaf_ids]
        self.pipes: list[Connection] = []
        self.processes = []
        try:
            for plan in plans:
                parent, child = ctx.Pipe()
                process = ctx.Process(target=run_worker, args=(plan, child), daemon=True)
                process.start()
                self.pipes.append(parent)
                self.processes.append(process)
            for pipe in self.pipes:
                if not pipe.poll(120) or pipe.recv() != "ready":
                    raise RuntimeError("a leaf worker did not start")
        except BaseException:
            self.kill()
            raise

    def ask(self, *command: Any) -> list[Any]:
        """Send ``command`` to every worker; their answers."""
        for pipe in self.pipes:
            pipe.send(command)
        answers = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if not pipe.poll(120):
                raise RuntimeError(f"leaf worker {process.pid} did not answer {command[0]}")
            answers.append(pipe.recv())
        return answers

    def merged(self, *command: Any) -> dict[str, Any]:
        """The per-leaf answers of every worker, in one dict."""
        found: dict[str, Any] = {}
        for answer in self.ask(*command):
            found.update(answer)
        return found

    def progress(self) -> dict[str, float]:
        """Summed progress (``lag``: the worst worker's)."""
        total: dict[str, float] = {}
        for answer in self.ask("progress"):
            for key, value in answer.items():
                total[key] = max(total.get(key, 0), value) if key == "lag" else (
                    total.get(key, 0) + value
                )  # fmt: skip
        return total

    def wait(
        self, done: Callable[[dict[str, float]], bool], timeout: float, what: str
    ) -> tuple[float, float]:
        """Poll progress until ``done``; (when it was, the worst loop lag meanwhile)."""
        deadline, lag = time.monotonic() + timeout, 0.0
        while True:
            progress = self.progress()
            lag = max(lag, progress["lag"])
            if done(progress):
                return time.monotonic(), lag
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            for process in self.processes:
                if not process.is_alive():
                    raise RuntimeError(f"leaf worker {process.pid} died")
            time.sleep(0.2)

    def stop(self) -> dict[str, float]:
        """Close every session and stop the workers; their summed CPU and peak RSS."""
        totals = {"cpu_seconds": 0.0, "max_rss_mb": 0.0}
        for pipe in self.pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                continue
        for pipe in self.pipes:
            try:
                if pipe.poll(120):
                    stats = pipe.recv()
                    totals["cpu_seconds"] += stats["cpu_seconds"]
                    totals["max_rss_mb"] = max(totals["max_rss_mb"], stats["max_rss_mb"])
            except (OSError, EOFError):
                continue
        self.kill()
        return totals

    def kill(self) -> None:
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
