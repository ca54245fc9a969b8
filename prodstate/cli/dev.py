"""``prodstate dev``: try prodstate on one machine.

``dev up`` starts ZooKeeper and a Redis and an agent per node on loopback, prints how
to use them, shows the live tree until Ctrl-C (or SIGTERM), then stops everything.
``dev demo failover`` kills the root machine of its own small cluster and times the
failover.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from prodstate.client import Client, ProdstateError
from prodstate.core.model import RootRecord
from prodstate.core.tree import TreeStatus
from prodstate.ops.status import collect_status
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ProcessError
from prodstate.testing.wait import wait_until
from prodstate.testing.zk_server import ZooKeeperServer
from prodstate.zk.client import read_root

#: What a failed start raises: a server that exits or never gets ready, a missing
#: binary or jar (OSError), a tree that does not form (TimeoutError), ZooKeeper unreachable.
_STARTUP_ERRORS = (ProcessError, OSError, KazooTimeoutError, KazooException)
#: Nodes listed one per line in the banner; the rest are counted.
_LISTED = 12


@click.group()
def dev() -> None:
    """A local cluster on loopback, to try prodstate on one machine."""


def _dir_option(command: Any) -> Any:
    return click.option(
        "--dir",
        "workdir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Keep data and logs here (default: a temporary folder removed at exit).",
    )(command)


def _session_option(command: Any) -> Any:
    return click.option(
        "--session-timeout",
        default=2.0,
        show_default=True,
        type=click.FloatRange(0.5, 60),
        help="Agents' ZooKeeper session, seconds: how long a dead root goes unnoticed.",
    )(command)


@dev.command()
@click.option("--branches", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--leaves", default=6, show_default=True, type=click.IntRange(0, 500))
@_dir_option
@_session_option
@click.option(
    "--refresh",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 60),
    help="Seconds between redraws of the tree.",
)
def up(
    branches: int, leaves: int, workdir: Path | None, session_timeout: float, refresh: float
) -> None:
    """Start ZooKeeper, a Redis and an agent per node; show the tree until Ctrl-C; stop all.

    With stdout a terminal the screen is redrawn every --refresh seconds; otherwise
    the tree is printed each time it changes, so logs stay readable.
    """
    with _local_cluster(workdir, branches, leaves, session_timeout) as cluster:
        header = _banner(cluster, kept=workdir is not None)
        tty = sys.stdout.isatty()
        if not tty:
            click.echo(header)
        shown = None
        while True:
            text, shape = _tree(cluster, refresh)
            stamp = time.strftime("%H:%M:%S")
            if tty:
                click.clear()
                click.echo(f"{header}\n{text}\n\n[{stamp}] Ctrl-C stops everything.")
            elif shape != shown:
                click.echo(f"--- tree at {stamp} ---\n{text}")
            shown = shape
            time.sleep(refresh)  # redraw period, not a wait for a condition


@dev.group()
def demo() -> None:
    """Scripted demonstrations, each on a cluster of its own."""


@demo.command()
@click.option("--branches", default=3, show_default=True, type=click.IntRange(2, 20))
@click.option("--leaves", default=2, show_default=True, type=click.IntRange(0, 50))
@_dir_option
@_session_option
def failover(branches: int, leaves: int, workdir: Path | None, session_timeout: float) -> None:
    """Kill the root machine (its agent and Redis) and time each step of the failover.

    A write is started the moment the root dies; it retries until the new root
    confirms it. Exits 0 once both keys are on every surviving node.
    """
    limit = 3 * session_timeout + 30
    with _local_cluster(workdir, branches, leaves, session_timeout, on_interrupt=130) as cluster:
        zk, name = cluster.zk(), cluster.cluster
        old = read_root(zk, name)
        if old is None:
            raise click.ClickException("the tree formed but no root is published")
        reader = next(
            n for n in (*cluster.names("leaf"), *cluster.names("branch")) if n != old.node_id
        )
        local = cluster.redis[reader].address
        written = {"demo:before": "written before", "demo:after": "written during the failover"}
        try:
            with Client(zk, name, local=local, timeout=limit) as client:
                client.set("demo:before", written["demo:before"])
        except ProdstateError as exc:
            raise click.ClickException(f"the first write failed: {exc}") from None
        click.echo(f"root {old.node_id} ({old.address}) epoch {old.epoch}; wrote demo:before")

        after: dict[str, Any] = {}

        def write_during_failover() -> None:
            try:
                with Client(zk, name, local=local, timeout=limit) as client:
                    client.set("demo:after", written["demo:after"])
                after["at"] = time.monotonic()
            except Exception as exc:  # reported by the main thread
                after["error"] = exc

        killed = time.monotonic()

        def step(at: float, what: str) -> None:
            click.echo(f"{at - killed:7.2f}s  {what}")

        cluster.agents[old.node_id].kill()
        cluster.redis[old.node_id].kill()
        step(time.monotonic(), f"killed {old.node_id}'s agent and Redis (SIGKILL)")
        writer = threading.Thread(target=write_during_failover, daemon=True)
        writer.start()
        step(time.monotonic(), "client started writing demo:after")
        try:
            seen = wait_until(
                lambda: _root_change(zk, name, old), timeout=limit, what="the old root to go"
            )
            if seen[0] is None:
                step(time.monotonic(), f"root znode of {old.node_id} gone (its session expired)")
            new = wait_until(lambda: _new_root(zk, name, old), timeout=limit, what="a new root")
            step(time.monotonic(), f"new root {new.node_id} ({new.address}) epoch {new.epoch}")
            writer.join(timeout=limit)
            if "at" not in after:
                problem = after.get("error") or "no answer in time"
                raise click.ClickException(f"the write during the failover failed: {problem}")
            step(after["at"], "first confirmed write (demo:after) at the new root")
            for key, value in written.items():
                cluster.wait_everywhere(key, value, timeout=limit)
        except TimeoutError as exc:
            raise click.ClickException(str(exc)) from None
        survivors = sum(1 for r in cluster.redis.values() if r.running)
        step(time.monotonic(), f"demo:before and demo:after on all {survivors} surviving nodes")
        click.echo(
            f"failover: {old.node_id} epoch {old.epoch} -> {new.node_id} epoch {new.epoch}; "
            f"writes confirmed again {after['at'] - killed:.2f}s after the crash"
        )


# --- the cluster's lifetime ------------------------------------------------------------------


def _tick_ms(session_timeout: float) -> int:
    """ZooKeeper tick: at most 200 ms, and long enough that the session fits in 20 ticks."""
    session_ms = session_timeout * 1000
    return math.ceil(max(session_ms / 20, min(200, session_ms / 2)))


class _Signals:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; later ones are ignored."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            raise KeyboardInterrupt

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


@contextmanager
def _local_cluster(
    workdir: Path | None,
    branches: int,
    leaves: int,
    session_timeout: float,
    on_interrupt: int = 0,
) -> Iterator[LocalCluster]:
    """A started cluster whose tree has formed; stopped (and its temp dir removed) at exit.

    A startup failure becomes a one-line ClickException. SIGINT or SIGTERM ends the
    block; the command then exits with ``on_interrupt``.
    """
    signals = _Signals()
    signals.install()
    folder = workdir or Path(tempfile.mkdtemp(prefix="prodstate-dev-"))
    cluster: LocalCluster | None = None
    try:
        try:
            cluster = LocalCluster(
                folder,
                branches=branches,
                leaves=leaves,
                session_timeout=session_timeout,
                tick_time=_tick_ms(session_timeout),
            )
            nodes = branches + leaves
            redis, agents = _count(nodes, "Redis server"), _count(nodes, "agent")
            click.echo(f"starting ZooKeeper, {redis} and {agents} in {folder}")
            cluster.start()
            click.echo("waiting for the agents to build the tree")
            cluster.wait_for_tree(timeout=60 + nodes)
        except _STARTUP_ERRORS as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            where = f" (logs in {folder})" if workdir else " (use --dir to keep the logs)"
            message = f"could not start the local cluster: {lines[0]}{where}"
            raise click.ClickException(message) from None
        yield cluster
    except KeyboardInterrupt:
        click.echo(f"\n{signals.received or 'interrupted'}: stopping everything")
        if on_interrupt:
            raise SystemExit(on_interrupt) from None
    finally:
        signals.received = signals.received or "exit"  # from here on, signals are ignored
        try:
            if cluster is not None:
                _stop(cluster)
            if workdir is None:
                shutil.rmtree(folder, ignore_errors=True)
                click.echo(f"removed {folder}")
        finally:
            signals.restore()


def _stop(cluster: LocalCluster) -> None:
    """Agents first (all signalled at once), then every Redis, then ZooKeeper."""
    agents = [a for a in cluster.agents.values() if a.running]
    for agent in agents:
        agent.signal(signal.SIGTERM)
    for agent in agents:
        agent.stop()
    servers = [r for r in cluster.redis.values() if r.running]
    for server in servers:
        server.signal(signal.SIGTERM)
    for server in servers:
        server.stop()
    zk = cluster.zookeeper
    zookeeper = zk.running if isinstance(zk, ZooKeeperServer) else any(s.running for s in zk)
    cluster.stop()  # ZooKeeper, its client, and anything still running
    parts = [_count(len(agents), "agent"), _count(len(servers), "Redis server")]
    parts += ["ZooKeeper"] if zookeeper else []
    click.echo(f"stopped {', '.join(parts[:-1])} and {parts[-1]}")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


# --- what is shown ---------------------------------------------------------------------------


def _prog() -> str:
    """How to run ``prodstate`` from the user's shell."""
    mine = Path(sys.executable).parent / "prodstate"
    found = shutil.which("prodstate")
    if found and mine.exists() and Path(found).resolve() == mine.resolve():
        return "prodstate"
    if mine.exists():
        try:
            return str(mine.relative_to(Path.cwd()))
        except ValueError:
            return str(mine)
    return f"{sys.executable} -m prodstate"


def _banner(cluster: LocalCluster, kept: bool) -> str:
    """Where things are and what to try."""
    prog = _prog()
    reader = (cluster.names("leaf") or cluster.names("branch"))[0]
    address = cluster.redis[reader].address
    examples = [
        (f"{prog} set greeting hello", "written at the root, confirmed by a branch"),
        (f"{prog} get greeting --redis {address}", f"read from {reader}'s Redis"),
        (f"{prog} status", "the live tree and its problems"),
        (f"{prog} check --redis {address}", f"age of {reader}'s copy (Nagios plugin)"),
        (f"curl {cluster.agents[reader].metrics_url}/metrics", f"{reader}'s agent"),
    ]
    width = max(len(command) for command, _ in examples)
    lines = [
        f"prodstate cluster {cluster.cluster!r} is up: ZooKeeper at {cluster.zk_hosts}",
        f"files: {cluster.workdir}" + ("" if kept else " (removed at exit)"),
        "",
        "In another shell:",
        f"  export PRODSTATE_ZK={cluster.zk_hosts} PRODSTATE_CLUSTER={cluster.cluster}",
        *(f"  {command:<{width}}  # {note}" for command, note in examples),
        "",
        "Nodes (Redis, agent metrics):",
    ]
    names = list(cluster.redis)
    for name in names[:_LISTED]:
        agent = cluster.agents.get(name)
        url = f"{agent.metrics_url}/metrics" if agent else "-"
        lines.append(
            f"  {name:<10} {cluster.tiers[name]:<7} {cluster.redis[name].address:<16} {url}"
        )
    if len(names) > _LISTED:
        lines.append(f"  ... and {len(names) - _LISTED} more")
    return "\n".join([*lines, ""])


_SECONDS = re.compile(r"\d+(\.\d+)?s\b")


def _tree(cluster: LocalCluster, refresh: float) -> tuple[str, str]:
    """The live tree as text, and the same without the figures that change every read."""
    try:
        status = collect_status(cluster.zk(), cluster.cluster, zk_timeout=max(2.0, refresh))
    except (KazooException, KazooTimeoutError, OSError) as exc:
        text = f"cannot read ZooKeeper at {cluster.zk_hosts}: {exc or type(exc).__name__}"
        return text, text
    return status.render_text(), _shape(status)


def _shape(status: TreeStatus) -> str:
    """The tree without lags, staleness and ages, to tell when it really changed."""
    nodes = tuple(dataclasses.replace(n, lag=None, staleness=None) for n in status.nodes)
    return _SECONDS.sub("Ns", dataclasses.replace(status, nodes=nodes).render_text())


def _root_change(zk: KazooClient, cluster: str, old: RootRecord) -> tuple[RootRecord | None] | None:
    """``(current root,)`` once the root is no longer ``old`` (None: no root), else None."""
    now = read_root(zk, cluster)
    return (now,) if now is None or now.node_id != old.node_id else None


def _new_root(zk: KazooClient, cluster: str, old: RootRecord) -> RootRecord | None:
    """The current root once it is another node than ``old``."""
    now = read_root(zk, cluster)
    return now if now is not None and now.node_id != old.node_id else None
