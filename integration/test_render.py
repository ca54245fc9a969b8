"""``prodstate render`` and ``watch`` as real processes against real Redis and a real tree."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from prodstate.core.heartbeat import EPOCH_KEY, HEARTBEAT_KEY
from prodstate.testing import RedisServer, free_port, wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.process import ManagedProcess

MAIN = "from prodstate.cli import main; main()"
SESSION = 2.0  # as in conftest.py
#: Every version of the file ends with this line, after one line per member: a version
#: written is complete when its member lines match its count line.
TEMPLATE = (
    "count {{ smembers('render:set') | length }}\n"
    "{% for m in smembers('render:set') %}member {{ m }}\n{% endfor %}"
    "value {{ get('render:value') }}\n"
    "# end\n"
)


class Renderer(ManagedProcess):
    """``prodstate render`` of one template, its command appending each version written to
    ``versions`` (so every version the file ever held can be checked)."""

    def __init__(self, workdir: Path, redis_address: str, *args: str, name: str = "render"):
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.template = self.dir / "t.j2"
        self.template.write_text(TEMPLATE)
        self.output = self.dir / "out.conf"
        self.versions = self.dir / "versions"
        command = (
            f'cat "$PRODSTATE_DESTINATION" >> {self.versions}; echo "=====" >> {self.versions}'
        )
        argv = [sys.executable, "-c", MAIN, "render", "--redis", redis_address]
        argv += ["--template", f"{self.template}:{self.output}:{command}", *args]
        super().__init__(name, argv, self.dir, ready=self._subscribed)

    def _subscribed(self) -> bool:
        return self.log_path.exists() and "subscribed to keyspace" in self.log_path.read_text()

    def written(self) -> list[str]:
        """Every version of the file its command saw, oldest first."""
        if not self.versions.exists():
            return []
        return [v for v in self.versions.read_text().split("=====\n") if v]

    def settled(self) -> bool:
        """True once the command has run for the file as it is (it runs after the write)."""
        if not (self.versions.exists() and self.output.exists()):
            return False
        raw = self.versions.read_text()
        return raw.endswith("=====\n") and raw.split("=====\n")[-2] == self.output.read_text()

    def log_count(self, text: str) -> int:
        return self.log_path.read_text().count(text)


def complete(version: str) -> bool:
    """True if ``version`` is a whole rendering: its count line matches its member lines,
    and it ends with the end line."""
    lines = version.splitlines()
    if len(lines) < 3 or not lines[0].startswith("count ") or lines[-1] != "# end":
        return False
    members = [line for line in lines if line.startswith("member ")]
    return int(lines[0].split()[1]) == len(members) and lines[-2].startswith("value ")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """2 branches and 2 leaves, the tree formed; agents publish keyspace notifications."""
    workdir = tmp_path_factory.mktemp("render")
    with LocalCluster(workdir, branches=3, leaves=1, session_timeout=SESSION) as cluster:
        cluster.wait_for_tree(timeout=60)
        yield cluster


def root_client(cluster: LocalCluster) -> redis.Redis:
    root = cluster.root_name()
    assert root is not None
    return cluster.redis[root].client(socket_timeout=5)


def test_a_change_at_the_root_is_rendered_on_a_leaf_at_once(tree: LocalCluster, tmp_path: Path):
    leaf = tree.redis["leaf1"]
    with leaf.client() as conn:
        assert "K" in conn.config_get("notify-keyspace-events")["notify-keyspace-events"]
    agent = tree.agents["leaf1"].metrics_url.removeprefix("http://")
    renderer = Renderer(tmp_path, leaf.address, "--agent", agent).start()
    try:
        tree.confirmed_write("render:value", "v0")
        wait_until(
            lambda: "value v0\n" in renderer.output.read_text(), timeout=10, ignore=(OSError,)
        )
        delays = []
        for i in range(1, 6):
            with root_client(tree) as conn:
                started = time.monotonic()
                conn.set("render:value", f"v{i}")
            wait_until(
                lambda i=i: f"value v{i}\n" in renderer.output.read_text(),
                timeout=5,
                interval=0.002,
            )
            delays.append(time.monotonic() - started)
        # Keyspace notifications, not the periodic re-render (60 s), bring each change.
        assert max(delays) < 1.0, delays
        wait_until(renderer.settled)
        assert all(complete(v) for v in renderer.written())
        assert "data_age=" in renderer.log_path.read_text()
    finally:
        renderer.stop()


def test_1000_changes_in_a_second_cause_a_bounded_number_of_renders(
    tree: LocalCluster, tmp_path: Path
):
    leaf = tree.redis["leaf1"]
    renderer = Renderer(tmp_path, leaf.address, "--wait", "200ms:500ms").start()
    try:
        tree.confirmed_write("render:value", "before-burst")
        wait_until(
            lambda: "before-burst" in renderer.output.read_text(), timeout=10, ignore=(OSError,)
        )
        wait_until(renderer.settled)  # the command has run for the file as it is
        before = len(renderer.written())
        started = time.monotonic()
        with root_client(tree) as conn:
            for i in range(1000):
                conn.sadd("render:set", f"m{i:04d}")
                if i % 100 == 99:  # spread over about a second
                    time.sleep(max(0.0, started + (i + 1) / 1000 - time.monotonic()))
        burst = time.monotonic() - started
        wait_until(lambda: "count 1000\n" in renderer.output.read_text(), timeout=10)
        wait_until(renderer.settled)
        renders = len(renderer.written()) - before
        # At most one render every max wait while changes keep coming, one after the last.
        bound = math.ceil(burst / 0.5) + 1
        assert 1 <= renders <= bound, (renders, burst)
        assert all(complete(v) for v in renderer.written())
    finally:
        renderer.stop()
        with root_client(tree) as conn:
            conn.delete("render:set")


def start_alone(
    tmp_path: Path, server: RedisServer, *, heartbeat_age: float, extra: list[str] | None = None
) -> Renderer:
    """A renderer over a Redis of no tree, holding the tree's keys, heartbeat as old as told
    (``extra``: more options, such as further templates)."""
    with server.client() as conn:
        conn.set(EPOCH_KEY, "1")
        conn.set(HEARTBEAT_KEY, f"{time.time() - heartbeat_age:.6f}")
        conn.set("render:value", "good")
    args = ("--max-staleness", "5", "--interval", "0.2", *(extra or []))
    return Renderer(tmp_path, server.address, *args).start()


def test_a_stale_copy_keeps_the_last_good_file(redis_factory, tmp_path: Path) -> None:
    server = redis_factory("alone", config={"notify-keyspace-events": "KA"})
    renderer = start_alone(tmp_path, server, heartbeat_age=0)
    try:
        wait_until(lambda: "value good\n" in renderer.output.read_text(), ignore=(OSError,))
        with server.client() as conn:
            conn.set(HEARTBEAT_KEY, f"{time.time() - 60:.6f}")
            conn.set("render:value", "from-a-stale-copy")
        wait_until(lambda: renderer.log_count("not rendering, files kept: data is stale") == 1)
        assert "value good\n" in renderer.output.read_text()
        with server.client() as conn:
            conn.set(HEARTBEAT_KEY, f"{time.time():.6f}")
        wait_until(lambda: "from-a-stale-copy" in renderer.output.read_text())
        assert renderer.log_count("rendering again") == 1
    finally:
        renderer.stop()


def test_a_redis_without_the_trees_history_keeps_the_last_good_file(
    redis_factory, tmp_path: Path
) -> None:
    server = redis_factory("alone", config={"notify-keyspace-events": "KA"})
    renderer = start_alone(tmp_path, server, heartbeat_age=0)
    try:
        wait_until(lambda: "value good\n" in renderer.output.read_text(), ignore=(OSError,))
        with server.client() as conn:  # as a Redis restarted empty
            conn.flushall()
        wait_until(lambda: renderer.log_count("does not hold the tree's history") == 1)
        assert renderer.output.read_text().endswith("value good\n# end\n")
        assert all(complete(v) for v in renderer.written())
    finally:
        renderer.stop()


def test_an_unsynced_replica_keeps_the_last_good_file(redis_factory, tmp_path: Path) -> None:
    """A replica taking a full copy (slowed down: 0.2 s per key saved) refuses until done."""
    server = redis_factory("alone", config={"notify-keyspace-events": "KA"})
    slow = {"rdb-key-save-delay": "200000", "repl-diskless-sync-delay": "0"}
    master = redis_factory("master", config=slow)
    with master.client() as conn:
        conn.mset({f"k{i}": "x" for i in range(50)})
    renderer = start_alone(tmp_path, server, heartbeat_age=0)
    try:
        wait_until(lambda: "value good\n" in renderer.output.read_text(), ignore=(OSError,))
        with server.client() as conn:
            host, port = master.address.rsplit(":", 1)
            conn.replicaof(host, port)
            wait_until(lambda: conn.info("replication")["master_sync_in_progress"] == 1)
        wait_until(lambda: renderer.log_count("(sync not finished)") == 1)
        assert renderer.output.read_text().endswith("value good\n# end\n")
    finally:
        renderer.stop()


def test_without_notifications_the_periodic_render_still_brings_changes(
    redis_factory, tmp_path: Path
) -> None:
    """A Redis whose notify-keyspace-events is off (no agent set it): the renderer says so
    and its --interval re-render is the safety net."""
    server = redis_factory("alone")
    stop = threading.Event()

    def heartbeat() -> None:
        with server.client() as conn:
            while not stop.wait(0.1):
                conn.set(HEARTBEAT_KEY, f"{time.time():.6f}")

    beat = threading.Thread(target=heartbeat)
    renderer = start_alone(tmp_path, server, heartbeat_age=0)
    beat.start()
    try:
        wait_until(lambda: "value good\n" in renderer.output.read_text(), ignore=(OSError,))
        wait_until(lambda: renderer.log_count("no keyspace notification arrives") == 1)
        with server.client() as conn:
            conn.set("render:value", "polled")
        wait_until(lambda: "value polled\n" in renderer.output.read_text())
    finally:
        stop.set()
        beat.join()
        renderer.stop()


def test_a_failing_template_or_command_does_not_stop_the_others(
    redis_factory, tmp_path: Path
) -> None:
    server = redis_factory("alone", config={"notify-keyspace-events": "KA"})
    (tmp_path / "bad.j2").write_text("fine\n{{ no_such_name }}\n")
    (tmp_path / "good.j2").write_text("{{ get('render:value') }}\n")
    good = tmp_path / "good.conf"
    templates = [f"{tmp_path}/bad.j2:{tmp_path}/bad.conf", f"{tmp_path}/good.j2:{good}:exit 3"]
    port = free_port()
    extra = [arg for t in templates for arg in ("--template", t)]
    extra += ["--metrics-port", str(port)]
    renderer = start_alone(tmp_path, server, heartbeat_age=0, extra=extra)
    try:
        wait_until(lambda: good.exists() and good.read_text() == "good\n")
        with server.client() as conn:
            conn.set("render:value", "still rendering")
        wait_until(lambda: good.read_text() == "still rendering\n")
        log = renderer.log_path.read_text()
        assert f"template error: {tmp_path}/bad.j2:2: 'no_such_name' is undefined" in log
        wait_until(lambda: renderer.log_count("outcome='exit 3") == 2)
        assert not (tmp_path / "bad.conf").exists()
        assert renderer.running
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            metrics = page.read().decode()
        bad, fine = f'template="{tmp_path}/bad.conf"', f'template="{good}"'
        assert re.search(rf"prodstate_render_failures_total\{{{bad}\}} [1-9]", metrics)
        assert f'prodstate_render_commands_total{{outcome="failed",{fine}}} 2.0' in metrics
        assert f"prodstate_render_writes_total{{{fine}}} 2.0" in metrics
        age = re.search(rf"prodstate_render_data_age_seconds\{{{fine}\}} (\S+)", metrics)
        assert age and 0 <= float(age.group(1)) < 5
        assert "prodstate_render_notifications_up 1.0" in metrics
    finally:
        renderer.stop()


def test_watch_prints_the_new_value(redis_factory) -> None:
    server = redis_factory("alone", config={"notify-keyspace-events": "KA"})
    argv = [sys.executable, "-c", MAIN, "watch", "--redis", server.address, "--timeout", "20"]
    watcher = subprocess.Popen(
        [*argv, "db:*"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        with server.client() as conn:
            wait_until(lambda: conn.pubsub_numpat() == 1)
            conn.set(HEARTBEAT_KEY, "1")  # the tree's own keys are not reported
            conn.set("other", "x")
            conn.hset("db:foobar", "dsn", "postgres://db7/foobar")
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert out == 'db:foobar {"dsn": "postgres://db7/foobar"}\n'
    quiet = subprocess.run(
        [*argv[:-2], "--timeout", "0.2", "nothing"], capture_output=True, text=True
    )
    assert quiet.returncode == 1 and quiet.stderr == "prodstate: nothing: no change in 0.2s\n"


def test_render_across_a_root_failover_and_a_branch_loss(tree: LocalCluster, tmp_path: Path):
    """Writes go on while the root dies, then the leaf's branch: every version written is
    complete, the last holds the last write, and the command ran once per version."""
    leaf = tree.redis["leaf1"]
    agent = tree.agents["leaf1"].metrics_url.removeprefix("http://")
    renderer = Renderer(tmp_path, leaf.address, "--agent", agent, "--wait", "50ms:300ms").start()
    try:
        tree.confirmed_write("render:value", "0")
        wait_until(
            lambda: "value 0\n" in renderer.output.read_text(), timeout=10, ignore=(OSError,)
        )
        epoch = tree.inspect().root.epoch  # type: ignore[union-attr]
        root = tree.root_name()
        assert root is not None
        tree.agents[root].kill()
        tree.redis[root].kill()
        for i in range(1, 6):
            tree.confirmed_write("render:value", str(i), timeout=30)
        tree.wait_for_new_root(epoch)
        tree.wait_for_tree(timeout=30)  # the leaf on a branch that is not the root
        parent = leaf.info("replication")["master_port"]
        branch = next(n for n, s in tree.redis.items() if s.running and s.port == int(parent))
        tree.agents[branch].kill()
        tree.redis[branch].kill()
        for i in range(6, 11):
            tree.confirmed_write("render:value", str(i), timeout=30)
        wait_until(lambda: "value 10\n" in renderer.output.read_text(), timeout=30)
        wait_until(renderer.settled)
        wrote = renderer.log_count("wrote the file")
        wait_until(lambda: renderer.log_count("ran the command") == wrote)  # logged as it ends
        versions = renderer.written()
        assert len(versions) == wrote  # the command ran once per version written
        assert all(complete(v) for v in versions), versions
        values = [v.splitlines()[-2].split()[1] for v in versions]
        steps = [int(v) for v in values[values.index("0") :]]
        assert steps == sorted(steps) and steps[-1] == 10  # never an older version after a newer
    finally:
        renderer.stop()
        for name in list(tree.redis):
            if not tree.redis[name].running:
                tree.redis[name].start()
                tree.agents[name].start(wait=False)
