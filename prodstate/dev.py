"""``prodstate dev``: try prodstate on one machine."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import click

from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ProcessError


@click.group()
def dev() -> None:
    """A local cluster on loopback, to try prodstate on one machine."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dev.command()
@click.option("--branches", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--leaves", default=6, show_default=True, type=click.IntRange(0, 500))
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where servers keep data and logs (default: a new temporary folder).",
)
@click.option("--refresh", default=2.0, show_default=True, type=click.FloatRange(0.1, 60))
def up(branches: int, leaves: int, workdir: Path | None, refresh: float) -> None:
    """Start ZooKeeper and a Redis per node, show them until Ctrl-C, then stop everything."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    cluster = LocalCluster(workdir, branches=branches, leaves=leaves)
    try:
        try:
            cluster.start()
        except ProcessError as exc:
            raise click.ClickException(f"could not start the local cluster: {exc}") from None
        click.echo(f"ZooKeeper: {cluster.zk_hosts}   data and logs: {cluster.workdir}")
        while True:
            _show(cluster)
            time.sleep(refresh)  # display refresh period, not a wait for a condition
    except KeyboardInterrupt:
        click.echo("stopping the local cluster")
    finally:
        cluster.stop()
        if workdir is None:
            shutil.rmtree(cluster.workdir, ignore_errors=True)


def _show(cluster: LocalCluster) -> None:
    zk_state = cluster.zookeeper.mode() if hasattr(cluster.zookeeper, "mode") else "ensemble"
    lines = [f"zookeeper {cluster.zk_hosts}: {zk_state or 'down'}"]
    for name, server in cluster.redis.items():
        state = "up" if server.is_ready() else "down"
        lines.append(f"  {name:<10} redis {server.address:<16} {state}")
    click.echo("\n".join(lines))
