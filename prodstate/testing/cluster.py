"""A whole prodstate cluster on one machine: ZooKeeper, one Redis and one agent per node."""

from __future__ import annotations

import re
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import redis
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.retry import KazooRetry

from prodstate.core.model import DataError, Member, RootRecord
from prodstate.testing.agent_process import AgentProcess
from prodstate.testing.ports import free_port
from prodstate.testing.process import ProcessError
from prodstate.testing.proxy import TO_CLIENT, TO_SERVER, TcpProxy
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.secure import SecureSetup
from prodstate.testing.tree import TreeReport, inspect_tree, read_root
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import ZooKeeperEnsemble, ZooKeeperServer
from prodstate.zk.paths import Layout

T = TypeVar("T")


class LocalCluster:
    """ZooKeeper (standalone or an ensemble), plus a Redis and an agent per branch and leaf."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        branches: int = 3,
        leaves: int = 6,
        zk_size: int = 1,
        tick_time: int = 200,
        cluster: str = "dev",
        session_timeout: float = 2.0,
        agents: bool = True,
        agent_args: Sequence[str] = (),
        zk_proxies: bool = False,
        redis_proxies: bool = False,
        redis_config: dict[str, str] | None = None,
        security: SecureSetup | None = None,
        agent_tick: float = 0.1,
        agent_jitter: float = 0.2,
        agent_batch: int | None = None,
        agent_heartbeat: float = 0.2,
        agent_stale_after: float = 1.2,
        zookeeper: ZooKeeperServer | ZooKeeperEnsemble | None = None,
    ) -> None:
        """``zk_proxies`` puts a cuttable proxy between each agent and each ZooKeeper server;
        ``redis_proxies`` puts one in front of each Redis (the address its agent advertises)
        and gives each Redis its own source address, so that one machine can be partitioned
        or slowed (``partition``, ``slow_down``), or one replication link cut (``cut_link``).
        ``redis_config`` is added to every Redis's configuration file; ``security`` secures
        every Redis and agent with its credentials (and TLS). ``agent_tick`` and
        ``agent_jitter`` are the agents' ``--tick`` and ``--jitter`` (short for quick tests; a
        large cluster on few CPUs wants the agent's defaults, 0.2 and 0.5); ``agent_batch``
        starts the agents that many at a time, each batch once the previous one has registered
        in ZooKeeper (hundreds of agents started at once on a few CPUs starve each other).
        ``zookeeper``: a server or ensemble made by the caller (not yet started; the cluster
        starts and stops it) instead of one of ``zk_size`` servers."""
        self.security = security
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="prodstate-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = cluster
        self.session_timeout = session_timeout
        freshness = ["--heartbeat-interval", f"{agent_heartbeat:g}"]
        freshness += ["--stale-after", f"{agent_stale_after:g}"]
        self.agent_args = freshness + list(agent_args) + (security.agent_args() if security else [])
        self.use_zk_proxies = zk_proxies
        self.agent_tick = agent_tick
        self.agent_jitter = agent_jitter
        self.redis_config = dict(redis_config or {})
        self.agent_batch = agent_batch
        self.zk_proxies: dict[str, list[TcpProxy]] = {}
        self.use_redis_proxies = redis_proxies
        self.redis_proxies: dict[str, TcpProxy] = {}
        self.source_ips: dict[str, str] = {}
        self.zookeeper: ZooKeeperServer | ZooKeeperEnsemble
        zk_tls = security.zk_tls if security else None
        if zookeeper is not None:
            self.zookeeper = zookeeper
        elif zk_size == 1:
            self.zookeeper = ZooKeeperServer(self.workdir, tick_time=tick_time, tls=zk_tls)
        elif zk_tls is not None:
            raise ValueError("ZooKeeper over TLS is a standalone server in the harness")
        else:
            self.zookeeper = ZooKeeperEnsemble(self.workdir, size=zk_size, tick_time=tick_time)
        self.tiers: dict[str, str] = {}
        self.redis: dict[str, RedisServer] = {}
        self.agents: dict[str, AgentProcess] = {}
        for i in range(branches):
            self.add_node(f"branch{i + 1}", "branch", start=False, agent=agents)
        for i in range(leaves):
            self.add_node(f"leaf{i + 1}", "leaf", start=False, agent=agents)
        self._zk_client: KazooClient | None = None

    @property
    def zk_hosts(self) -> str:
        """ZooKeeper connection string."""
        return self.zookeeper.hosts

    def add_node(
        self,
        name: str,
        tier: str,
        start: bool = True,
        agent: bool = True,
        advertise: str | None = None,
    ) -> None:
        """Add a Redis (and its agent) named ``name``; start them if ``start``. The agent
        advertises ``advertise`` if given (what others then reach is not its Redis)."""
        self.tiers[name] = tier
        config = dict(self.redis_config)
        if self.use_redis_proxies:
            self.source_ips[name] = node_source_ip(len(self.source_ips))
            config["bind-source-addr"] = self.source_ips[name]
        if self.security is None:
            self.redis[name] = RedisServer(self.workdir, name=f"redis-{name}", config=config)
        else:
            port = free_port()
            self.redis[name] = RedisServer(
                self.workdir,
                name=f"redis-{name}",
                port=port,
                config={**config, **self.security.redis_config(port)},
                client_options=self.security.client_options(),
            )
        extra_args = list(self.agent_args)
        if self.use_redis_proxies:
            self.redis_proxies[name] = TcpProxy(self.redis[name].address).start()
            extra_args += ["--advertise", self.redis_proxies[name].address]
        if advertise is not None:
            extra_args += ["--advertise", advertise]
        if agent:
            zk_hosts = self.zk_hosts
            if self.use_zk_proxies:
                targets = zk_hosts.split(",")
                self.zk_proxies[name] = [TcpProxy(t).start() for t in targets]
                zk_hosts = ",".join(p.address for p in self.zk_proxies[name])
            self.agents[name] = AgentProcess(
                self.workdir,
                node_id=name,
                tier=tier,
                zk_hosts=zk_hosts,
                cluster=self.cluster,
                redis=self.redis[name],
                session_timeout=self.session_timeout,
                tick=self.agent_tick,
                jitter=self.agent_jitter,
                extra_args=extra_args,
            )
        if start:
            self.redis[name].start()
            if agent:
                self.agents[name].start()

    def remove_node(self, name: str) -> None:
        """Stop node ``name``'s agent, Redis and proxies, and forget the node."""
        for process in (self.agents.pop(name, None), self.redis.pop(name)):
            if process is not None:
                process.stop()
        for proxy in [*self.zk_proxies.pop(name, []), self.redis_proxies.pop(name, None)]:
            if proxy is not None:
                proxy.stop()
        self.source_ips.pop(name, None)
        del self.tiers[name]

    def names(self, tier: str) -> list[str]:
        """Node names of one tier."""
        return [n for n, t in self.tiers.items() if t == tier]

    def start(self) -> LocalCluster:
        """Start ZooKeeper, every Redis, then every agent."""
        for server in self.redis.values():
            server.start(wait=False)
        self.zookeeper.start()
        for server in self.redis.values():
            server.wait_ready()
        for batch in in_batches(list(self.agents.values()), self.agent_batch):
            for agent in batch:
                agent.start(wait=False)
            if self.agent_batch is not None:
                self.wait_registered([a.node_id for a in batch])
        return self

    def wait_registered(self, names: Sequence[str], timeout: float = 120.0) -> None:
        """Wait until each named node's agent has registered its member znode; ProcessError
        (with the log tail) if one of them exits first."""
        zk = self.zk()
        for name in names:
            agent = self.agents[name]
            path = Layout(self.cluster).member(self.tiers[name], name)

            def registered(agent: AgentProcess = agent, path: str = path) -> bool:
                if not agent.running:
                    raise ProcessError(f"{agent.name} exited\n{agent.log_tail()}")
                return zk.exists(path) is not None

            wait_until(registered, timeout=timeout, what=f"{name} registered")

    def stop(self) -> None:
        """Stop everything this cluster started."""
        if self._zk_client is not None:
            self._zk_client.stop()
            self._zk_client.close()
            self._zk_client = None
        for group in (self.agents.values(), self.redis.values()):
            for process in group:  # all asked first: they wind down together
                if process.running and not process.paused:
                    process.signal(signal.SIGTERM)
            for process in group:
                process.stop()
        for proxies in self.zk_proxies.values():
            for proxy in proxies:
                proxy.stop()
        for proxy in self.redis_proxies.values():
            proxy.stop()
        self.zookeeper.stop()

    def cut_zk(self, name: str) -> None:
        """Partition node ``name``'s agent from ZooKeeper (needs ``zk_proxies=True``)."""
        for proxy in self.zk_proxies[name]:
            proxy.cut()

    def heal_zk(self, name: str) -> None:
        """End the partition made by cut_zk."""
        for proxy in self.zk_proxies[name]:
            proxy.heal()

    def advertised(self, name: str) -> str:
        """The address node ``name``'s agent advertises: its proxy's, if it has one."""
        proxy = self.redis_proxies.get(name)
        return proxy.address if proxy else self.redis[name].address

    def partition(self, name: str) -> None:
        """Cut machine ``name`` off the network: its agent from ZooKeeper, its Redis from every
        other Redis both ways (needs both kinds of proxies). Local readers still reach it."""
        self.cut_zk(name)
        self.redis_proxies[name].cut()
        for other, proxy in self.redis_proxies.items():
            if other != name:
                proxy.cut(source=self.source_ips[name])

    def heal_partition(self, name: str) -> None:
        """End the partition made by ``partition``."""
        for other, proxy in self.redis_proxies.items():
            if other == name:
                proxy.heal()
            else:
                proxy.heal(source=self.source_ips[name])
        self.heal_zk(name)

    def cut_link(self, child: str, parent: str, noisy: bool = False) -> None:
        """Cut only the replication link from Redis ``child`` to Redis ``parent`` (the
        connections from ``child``'s source address through ``parent``'s proxy), both ways.

        Silent by default: a black hole, both ends keep the link up until their own timeouts.
        ``noisy``: the link and every reconnection are reset at once (ECONNRESET on both ends).
        Needs ``redis_proxies=True``; ``heal_link`` ends it."""
        proxy, source = self._link(child, parent)
        if noisy:
            proxy.reject(source=source)
        else:
            proxy.cut(source=source)

    def heal_link(self, child: str, parent: str) -> None:
        """End the cut (silent or noisy) made by ``cut_link(child, parent)``."""
        proxy, source = self._link(child, parent)
        proxy.heal(source=source)

    def flap_link(
        self, child: str, parent: str, down: float, up: float, times: int, noisy: bool = False
    ) -> None:
        """Cut the link from ``child`` to ``parent`` for ``down`` seconds, then heal it for
        ``up`` seconds, ``times`` times over (blocking); returns, healed, at the last heal."""
        if down < 0 or up < 0 or times < 0:
            raise ValueError("down, up and times must not be negative")
        self._link(child, parent)  # a bad argument fails before the first cut
        for i in range(times):
            if i:
                time.sleep(up)  # the fault's own timing, not a wait for a condition
            self.cut_link(child, parent, noisy=noisy)
            try:
                time.sleep(down)
            finally:
                self.heal_link(child, parent)

    def _link(self, child: str, parent: str) -> tuple[TcpProxy, str]:
        """The proxy in front of ``parent`` and the source address of ``child``."""
        if not self.use_redis_proxies:
            raise ValueError("cutting a link needs a cluster made with redis_proxies=True")
        for name in (child, parent):
            if name not in self.redis_proxies:
                raise ValueError(f"no Redis named {name!r} in this cluster")
        if child == parent:
            raise ValueError(f"a link joins two nodes, not {child!r} to itself")
        return self.redis_proxies[parent], self.source_ips[child]

    def hang_redis(self, name: str) -> None:
        """Freeze node ``name``'s redis-server (SIGSTOP): its sockets stay open, it answers
        nothing; its agent keeps running. ``resume_redis`` thaws it."""
        self.redis[name].pause()

    def resume_redis(self, name: str) -> None:
        """SIGCONT node ``name``'s redis-server after ``hang_redis``."""
        self.redis[name].resume()

    def slow_down(self, name: str, mean: float, jitter: float = 0.0) -> None:
        """Delay every byte machine ``name`` sends by ``mean`` +- ``jitter`` seconds, like
        ``tc netem delay`` on its interface: to ZooKeeper, to its replicas and clients, to
        its master (needs both kinds of proxies)."""
        for proxy in self.zk_proxies[name]:
            proxy.delay(mean, jitter, direction=TO_SERVER)
        for other, proxy in self.redis_proxies.items():
            if other == name:
                proxy.delay(mean, jitter, direction=TO_CLIENT)
            else:
                proxy.delay(mean, jitter, direction=TO_SERVER, source=self.source_ips[name])

    def restore_speed(self, name: str) -> None:
        """End the delay made by ``slow_down`` (on every proxy: one slowed node at a time)."""
        for proxy in [*self.zk_proxies[name], *self.redis_proxies.values()]:
            proxy.undelay()

    def zk(self) -> KazooClient:
        """A kazoo client for inspecting the cluster (one, reused)."""
        if self._zk_client is None:
            retry = KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0)  # back soon after outages
            tls = self.security.zk_kwargs() if self.security else {}
            self._zk_client = KazooClient(hosts=self.zk_hosts, connection_retry=retry, **tls)
            self._zk_client.start(timeout=15)
        return self._zk_client

    def inspect(self) -> TreeReport:
        """The tree as it stands, with problems listed."""
        running = {n: r.address for n, r in self.redis.items() if r.running}
        return inspect_tree(
            self.zk(),
            self.cluster,
            {n: a for n, a in running.items() if self.tiers[n] == "branch"},
            {n: a for n, a in running.items() if self.tiers[n] == "leaf"},
            self.security.connect_options() if self.security else None,
        )

    def wait_for_tree(self, timeout: float = 30.0) -> TreeReport:
        """Wait until the tree is complete and correct; the report on success."""
        last: list[TreeReport] = []

        def healthy() -> TreeReport | None:
            report = self.inspect()
            last[:] = [report]
            return report if report.healthy else None

        try:
            return wait_until(
                healthy,
                timeout=timeout,
                what="a complete tree",
                ignore=(KazooException, DataError),  # e.g. a session ended by an outage
            )
        except TimeoutError as exc:
            detail = last[0].problems if last else "no report"
            raise TimeoutError(f"{exc}: {detail}") from None

    def wait_settled(self, timeout: float = 90.0) -> TreeReport:
        """Wait until start-up is over: every branch registered, judging its copy fresh and
        (but the root) available to leaves, every leaf judging its copy fresh (a stale one
        is about to stay off its branch) and staying off no branch it found stale while the
        branches caught up, and the tree complete and correct after that
        (leaves move as branches become available, and the root then adjusts its quorum)."""
        folder = f"/prodstate/{self.cluster}/members"
        branches = set(self.names("branch"))
        leaves = set(self.names("leaf"))

        def settled() -> bool:
            zk = self.zk()
            members = {b: Member.from_json(zk.get(f"{folder}/branch/{b}")[0]) for b in branches}
            root = self.inspect().root
            root_id = root.node_id if root else None
            leaf_members = [Member.from_json(zk.get(f"{folder}/leaf/{n}")[0]) for n in leaves]
            return (
                root_id is not None
                and all(m.fresh and not m.avoiding for m in leaf_members)
                and all(m.fresh and (m.available or b == root_id) for b, m in members.items())
            )

        what = "every branch fresh and available, every leaf fresh and avoiding none"
        wait_until(settled, timeout=timeout, what=what, ignore=(KazooException, DataError))
        return self.wait_for_tree(timeout=timeout)

    def wait_for_new_root(self, after_epoch: int, timeout: float = 30.0) -> RootRecord:
        """Wait until a root with an epoch above ``after_epoch`` is published (ZooKeeper only:
        no Redis is read); that root's record."""

        def newer() -> RootRecord | None:
            zk = self.zk()
            zk.sync(Layout(self.cluster).base)
            root = read_root(zk, self.cluster)
            return root if root is not None and root.epoch > after_epoch else None

        return wait_until(newer, timeout=timeout, what=f"a root with epoch > {after_epoch}")

    def root_name(self) -> str | None:
        """Node id of the current root."""
        report = self.inspect()
        return report.root.node_id if report.root else None

    def full_syncs(self) -> dict[str, int]:
        """Full resyncs served so far by each running Redis (INFO stats sync_full)."""
        return {n: s.info("stats")["sync_full"] for n, s in self.redis.items() if s.running}

    def new_full_syncs(self, before: dict[str, int]) -> dict[str, int]:
        """Full resyncs served since ``before``, by node (nodes that served none left out)."""
        now = self.full_syncs()
        return {n: c - before.get(n, 0) for n, c in now.items() if c != before.get(n, 0)}

    def log_marks(self) -> dict[str, int]:
        """The size of every Redis's log now, to count what it logs from here on."""
        return {
            n: s.log_path.stat().st_size if s.log_path.exists() else 0
            for n, s in self.redis.items()
        }

    def full_syncs_logged(self, since: dict[str, int]) -> dict[str, int]:
        """Full resyncs each Redis took as a replica since ``log_marks()`` returned ``since``.

        Counted in the logs, so that those before a restart count too (INFO's sync_full
        restarts from zero with the server), and on the replica's side: a replica logs the
        master's FULLRESYNC answer before its link comes up, so a sync finished before the
        marks were taken (on a healthy tree) is never counted, while the master may log its
        own "succeeded" line a moment after the replica is already up."""
        counts = {}
        for name, server in self.redis.items():
            if not server.log_path.exists():
                continue
            with open(server.log_path, "rb") as log:
                log.seek(since.get(name, 0))
                found = len(_FULL_SYNC_TAKEN.findall(log.read()))
            if found:
                counts[name] = found
        return counts

    def confirmed_write(self, key: str, value: str, timeout: float = 20) -> str:
        """SET at the current root confirmed by WAIT for one branch, retried through failover.

        Returns the node id of the root that confirmed it.
        """

        def attempt() -> str | None:
            root = self.inspect().root
            if root is None:
                return None
            with self.redis[root.node_id].client(socket_timeout=2) as conn:
                conn.set(key, value)
                return root.node_id if conn.wait(1, 1000) >= 1 else None

        return wait_until(
            attempt, timeout=timeout, what=f"a confirmed write of {key}", ignore=(redis.RedisError,)
        )

    def wait_everywhere(self, key: str, value: str, timeout: float = 20) -> None:
        """Wait until every running Redis holds ``key`` = ``value``."""
        for name, server in self.redis.items():
            if server.running:
                wait_until(
                    lambda s=server: s.client().get(key) == value,
                    timeout=timeout,
                    what=f"{key} on {name}",
                )

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()  # what did start must not outlive a failed start
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: What a master logs once per replica it has sent a full copy of its dataset to.
_FULL_SYNC_TAKEN = re.compile(rb"\* Full resync from master: ")


def node_source_ip(index: int) -> str:
    """The loopback address node number ``index`` sends from (127.0.1.1, 127.0.1.2, ...)."""
    if not 0 <= index < 254 * 254:
        raise ValueError(f"no source address for node {index}")
    return f"127.0.{1 + index // 254}.{1 + index % 254}"


def in_batches(items: Sequence[T], size: int | None) -> list[Sequence[T]]:
    """``items`` cut into consecutive batches of ``size`` (one batch if ``size`` is None)."""
    if size is None:
        return [items] if items else []
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]
