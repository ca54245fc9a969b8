"""``prodstate get`` and ``check`` as real processes against real redis-servers: their own
small RESP client, plain and over TLS as an ACL user."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.testing import RedisServer, free_port
from prodstate.testing.secure import SecureSetup


def prodstate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRODSTATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "prodstate", *args],
        env={**base, **(env or {})},
        capture_output=True,
        timeout=60,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr
    return proc


def test_get_outcomes(redis_server):
    where = ["--redis", redis_server.address]
    with redis_server.client() as conn:
        conn.set("colour", "blue")
        conn.set("raw", b"\xff\x00\r\nend")
        conn.hset("hash", "a", "b")
        conn.set(HEARTBEAT_KEY, f"{time.time() - 20:.6f}")
    got = prodstate("get", "colour", *where)
    assert (got.returncode, got.stdout, got.stderr) == (0, b"blue\n", b"")
    raw = prodstate("get", "raw", *where)
    assert (raw.returncode, raw.stdout) == (0, b"\xff\x00\r\nend\n")  # the bytes, as stored
    missing = prodstate("get", "nope", *where)
    assert (missing.returncode, missing.stderr) == (1, b"prodstate: nope: no such key\n")
    wrong = prodstate("get", "hash", *where)
    assert wrong.returncode == 1 and b"refused the read: WRONGTYPE" in wrong.stderr
    fresh = prodstate("get", "colour", "--max-staleness", "60", *where)
    assert (fresh.returncode, fresh.stdout) == (0, b"blue\n")
    stale = prodstate("get", "colour", *where, env={"PRODSTATE_MAX_STALENESS": "5"})
    assert stale.returncode == 2 and b"s old (limit 5s)" in stale.stderr
    assert stale.stdout == b""
    down = prodstate("get", "colour", "--redis", f"127.0.0.1:{free_port()}")
    assert down.returncode == 2 and b"cannot read from Redis at 127.0.0.1:" in down.stderr
    usage = prodstate("get", "colour", "--max-staleness", "-1")
    assert usage.returncode == 2 and usage.stderr.count(b"\n") == 1


@pytest.fixture
def secured_redis(tmp_path):
    """A Redis on TLS only, its default user off, with the reader user the agent would make."""
    security = SecureSetup(tmp_path, tls=True, zk=False)
    reader = security.user("reader")
    port = free_port()
    config = security.redis_config(port)
    config[f"user {reader.user}"] = f"on >{reader.password} ~* +get"
    server = RedisServer(
        tmp_path, name="tls", port=port, config=config, client_options=security.client_options()
    ).start()
    yield server, security
    server.stop()


def test_check_and_get_over_tls_as_the_reader(secured_redis):
    server, security = secured_redis
    with server.client() as conn:
        conn.set("colour", "blue")
        conn.set(HEARTBEAT_KEY, f"{time.time():.6f}")
    tls = security.tls
    assert tls is not None and tls.cert_file and tls.key_file
    files = ["--tls-ca-file", tls.ca_file, "--tls-cert-file", tls.cert_file]
    files += ["--tls-key-file", tls.key_file]
    creds = ["--credentials-file", str(security.credentials_file)]
    where = ["--redis", server.address]

    got = prodstate("get", "colour", *where, *files, *creds)
    assert (got.returncode, got.stdout) == (0, b"blue\n"), got.stderr
    checked = prodstate("check", *where, *files, *creds)
    assert checked.returncode == 0 and checked.stdout.startswith(b"PRODSTATE OK - "), checked

    anonymous = prodstate("check", *where, *files)
    assert anonymous.returncode == 3
    assert anonymous.stdout.startswith(b"PRODSTATE UNKNOWN - Redis requires authentication: ")
    refused = prodstate("get", "colour", *where, *files)
    assert refused.returncode == 2 and b"NOAUTH" in refused.stderr
    reader = security.user("reader")
    from_env = {"PRODSTATE_REDIS_READER_USER": reader.user}
    from_env["PRODSTATE_REDIS_READER_PASSWORD"] = reader.password
    by_env = prodstate("get", "colour", *where, *files, env=from_env)
    assert (by_env.returncode, by_env.stdout) == (0, b"blue\n"), by_env.stderr
    plain = prodstate("check", *where, *creds, "-t", "5")  # TLS port, spoken to in clear
    assert plain.returncode == 3 and plain.stdout.startswith(b"PRODSTATE UNKNOWN - ")
