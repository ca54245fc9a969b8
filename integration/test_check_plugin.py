"""``prodstate check`` run as a real process against a real redis-server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from prodstate.redis.control import HEARTBEAT_KEY
from prodstate.testing import RedisServer, free_port, wait_until

PERFDATA = re.compile(r" \| staleness=(\d+\.\d{3})s;(\S*);(\S*);0$")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def line(self) -> str:
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        return lines[0]

    def staleness(self) -> float:
        match = PERFDATA.search(self.line)
        assert match, self.line
        return float(match.group(1))


def run_check(*args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run the plugin as Nagios would: a fresh process, status from exit code and stdout."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRODSTATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "prodstate", "check", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def set_heartbeat(server: RedisServer, age: float) -> None:
    """Write the heartbeat the root would have written ``age`` seconds ago."""
    with server.client() as conn:
        conn.set(HEARTBEAT_KEY, f"{time.time() - age:.6f}")


def test_fresh_heartbeat_is_ok(redis_server):
    set_heartbeat(redis_server, 0)
    out = run_check("--redis", redis_server.address)
    assert out.code == 0, out
    assert out.line.startswith("PRODSTATE OK - heartbeat ")
    assert f"old ({redis_server.address}) | staleness=" in out.line
    assert out.line.endswith(";5;30;0")
    assert 0 <= out.staleness() < 5


def test_old_heartbeat_is_warning(redis_server):
    set_heartbeat(redis_server, 10)
    out = run_check("--redis", redis_server.address, "--warning", "5", "--critical", "30")
    assert out.code == 1, out
    assert out.line.startswith("PRODSTATE WARNING - heartbeat 1")
    assert 10 <= out.staleness() < 30


def test_very_old_heartbeat_is_critical(redis_server):
    set_heartbeat(redis_server, 600)
    out = run_check("--redis", redis_server.address, "--warning", "5", "--critical", "30")
    assert out.code == 2, out
    assert re.match(
        rf"PRODSTATE CRITICAL - heartbeat 10m \d+s old \({redis_server.address}\)", out.line
    )
    assert 600 <= out.staleness() < 630


def test_options_from_the_environment(redis_server):
    set_heartbeat(redis_server, 10)
    env = {"PRODSTATE_REDIS": redis_server.address, "PRODSTATE_CRITICAL": "8"}
    out = run_check(env=env)
    assert out.code == 2, out
    assert out.line.endswith(";;8;0")  # -c alone: no warning threshold


def test_missing_heartbeat_is_unknown(redis_server):
    out = run_check("--redis", redis_server.address)
    assert out.code == 3, out
    assert out.line == (
        f"PRODSTATE UNKNOWN - heartbeat key {HEARTBEAT_KEY} is missing ({redis_server.address})"
    )


def test_garbage_heartbeat_is_unknown(redis_server):
    with redis_server.client() as conn:
        conn.set(HEARTBEAT_KEY, "yesterday")
    out = run_check("--redis", redis_server.address)
    assert out.code == 3, out
    assert out.line.startswith(f"PRODSTATE UNKNOWN - heartbeat {HEARTBEAT_KEY} is not a number")
    assert "'yesterday'" in out.line


def test_redis_down_is_unknown():
    address = f"127.0.0.1:{free_port()}"
    out = run_check("--redis", address)
    assert out.code == 3, out
    assert out.line.startswith("PRODSTATE UNKNOWN - cannot connect to Redis: ")
    assert "refused" in out.line.lower()
    assert out.line.endswith(f"({address})")


def test_redis_requiring_a_password_is_unknown(redis_server):
    set_heartbeat(redis_server, 0)
    with redis_server.client() as conn:
        conn.config_set("requirepass", "secret")
    out = run_check("--redis", redis_server.address)
    assert out.code == 3, out
    assert out.line.startswith("PRODSTATE UNKNOWN - Redis requires authentication")


def test_replica_reports_the_replicated_heartbeat(redis_factory):
    root = redis_factory("root")
    replica = redis_factory("replica", config={"replicaof": f"{root.host} {root.port}"})
    set_heartbeat(root, 20)
    with replica.client() as conn:
        wait_until(lambda: conn.get(HEARTBEAT_KEY), what="heartbeat replicated")
    out = run_check("--redis", replica.address, "--warning", "15", "--critical", "60")
    assert out.code == 1, out
    assert 20 <= out.staleness() < 60


def test_replica_refusing_stale_reads_is_unknown(redis_server):
    with redis_server.client() as conn:
        conn.config_set("replica-serve-stale-data", "no")
        conn.replicaof("127.0.0.1", free_port())  # nothing listens there: the link stays down
    out = run_check("--redis", redis_server.address)
    assert out.code == 3, out
    assert out.line.startswith(f"PRODSTATE UNKNOWN - Redis refused GET {HEARTBEAT_KEY}: ")
    assert "Link with MASTER is down" in out.line


def test_ranges_and_either_threshold_alone(redis_server):
    set_heartbeat(redis_server, 10)
    only_critical = run_check("--redis", redis_server.address, "-c", "3")
    assert only_critical.code == 2, only_critical
    assert only_critical.line.endswith(";;3;0")
    inverted = run_check("--redis", redis_server.address, "-w", "@5:15", "-c", "~:60")
    assert inverted.code == 1, inverted
    assert inverted.line.endswith(";@5:15;~:60;0")


def test_a_hung_redis_is_unknown_once_the_timeout_passes(redis_server):
    """A Redis that accepts connections but never answers (stopped with SIGSTOP: the kernel
    still completes the handshake) must not hang the check past ``-t``."""
    set_heartbeat(redis_server, 0)
    redis_server.pause()
    try:
        started = time.monotonic()
        out = run_check("--redis", redis_server.address, "-t", "1.5")
        took = time.monotonic() - started
    finally:
        redis_server.resume()
    assert out.code == 3, out
    assert out.line.startswith("PRODSTATE UNKNOWN - ")
    assert "1.5s" in out.line
    assert 1.5 <= took < 10, took


def test_version_and_usage_errors():
    version = run_check("-V")
    assert version.code == 0 and version.line.startswith("prodstate check ")
    out = run_check("--redis", "127.0.0.1:1", "-w", "31:30")
    assert out.code == 3, out
    assert out.line == (
        "PRODSTATE UNKNOWN - usage error: argument -w/--warning: '31:30' is not a range: "
        "its start is above its end"
    )
    assert out.stderr == ""
