"""``prodstate api`` as a process against the shared cluster, called over HTTP: it refuses
missing and wrong tokens, oversized and malformed bodies and an identity writing beyond
its rights (writing nothing), and a phone-home through it is visible on every node."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.statedb.conftest import make_runner
from prodstate.statedb.keys import MACHINES, instances
from prodstate.testing import free_port, wait_until
from prodstate.testing.secure import CertificateAuthority

READER, REPORTER, WRITER = "reader-token-0123456789", "phone-token-0123456789", "w" * 24
CREDENTIALS = f"""
[api.tokens.dashboards]
token = "{READER}"
rights = ["read"]

[api.tokens.kiosks]
token = "{REPORTER}"
rights = ["read", "report"]

[api.tokens.release]
token = "{WRITER}"
rights = ["read", "report", "write"]
"""


def serve(infra, workdir: Path, *args: str, context: ssl.SSLContext | None = None):
    """``prodstate api`` reading the leaf's Redis, with ``args``: (process, base URL), once
    it answers."""
    path = workdir / "credentials.toml"
    path.write_text(CREDENTIALS)
    path.chmod(0o600)
    port = free_port()
    env = {**os.environ, "PRODSTATE_ZK": infra.zk_hosts, "PRODSTATE_CLUSTER": infra.cluster}
    argv = [sys.executable, "-m", "prodstate", "api", "--port", str(port), *args]
    argv += ["--redis", infra.redis["leaf1"].address, "--credentials-file", str(path)]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"{'https' if context else 'http'}://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: (
                urllib.request.urlopen(f"{base}/openapi.json", timeout=2, context=context).status
                == 200
            ),
            timeout=30,
            what="the API to serve",
            ignore=(OSError,),
        )
    except Exception:
        server.kill()
        raise AssertionError(server.communicate(timeout=10)[1].decode()) from None
    return server, base


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    _, err = server.communicate(timeout=10)
    assert "Traceback" not in err.decode() and READER not in err.decode(), err


@pytest.fixture(scope="module")
def api(infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over plain HTTP (as on 127.0.0.1); its base URL."""
    server, base = serve(infra, tmp_path_factory.mktemp("api"), "--max-body", "4096")
    try:
        yield base
    finally:
        stop(server)


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one request (``body``: bytes as they are, else JSON)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_refusals_are_json_and_write_nothing(infra, api):
    started = "/v1/services/api-refused/started"
    cases = [
        (None, {"host": "kiosk-1"}, 401),
        ("not-a-token-at-all-000", {"host": "kiosk-1"}, 401),
        (READER, {"host": "kiosk-1"}, 403),
        (REPORTER, b'{"host": "kiosk-1"', 400),
        (REPORTER, {"host": "kiosk 1"}, 400),
        (REPORTER, {"host": "kiosk-1", "extra": 1}, 422),
        (REPORTER, {"host": "kiosk-1", "version": "v" * 5000}, 413),
    ]
    for token, body, status in cases:
        got, doc = request(api, "POST", started, body, token)
        assert (got, list(doc)) == (status, ["error"]), (token, body, doc)
    got, doc = request(api, "PUT", "/v1/keys/api:motd", {"value": "hi"}, REPORTER)
    assert got == 403 and "'write'" in doc["error"]
    root = infra.redis[infra.root_name()].client()
    epoch = root.get("prodstate:epoch")
    got, doc = request(api, "PUT", "/v1/keys/prodstate:epoch", {"value": "1"}, WRITER)
    assert got == 400 and doc["applied"] is False, doc  # the client's own refusal
    assert root.get("prodstate:epoch") == epoch
    assert root.exists(instances("api-refused"), "api:motd") == 0


def test_a_phone_home_is_visible_on_every_node(infra, api):
    got, doc = request(
        api,
        "POST",
        "/v1/services/api-shop/started",
        {"host": "kiosk-1", "version": "3.1"},
        REPORTER,
    )
    assert got == 200 and doc["recorded"] is True and doc["epoch"] >= 1, doc
    for name, server in infra.redis.items():
        node = server.client()
        wait_until(
            lambda node=node: node.hget(instances("api-shop"), "kiosk-1") is not None,
            timeout=10,
            what=f"the instance record on {name}",
        )
    got, doc = request(api, "GET", "/v1/services/api-shop?max_staleness=30", token=READER)
    assert got == 200 and doc["staleness"] < 30
    assert doc["service"]["instances"]["kiosk-1"]["version"] == "3.1"
    assert doc["service"]["instances"]["kiosk-1"]["source"] == "phone-home"


def test_reports_and_reads_round_trip(infra, api):
    facts = {"cpus": 4, "memory_bytes": 8 << 30, "os": "Debian GNU/Linux 13", "kernel": "6.1"}
    assert request(api, "POST", "/v1/machines/kiosk-2/report", facts, REPORTER)[0] == 200
    error = {"service": "api-shop", "host": "kiosk-2", "message": "printer jammed"}
    assert request(api, "POST", "/v1/errors", error, REPORTER)[0] == 200
    deploy = {
        "service": "api-shop",
        "version": "3.2",
        "targets": ["kiosk-2"],
        "who": "ann",
        "host": "ci-1",
        "exit_code": 0,
        "output": "done",
    }
    got, doc = request(api, "POST", "/v1/deploys", deploy, REPORTER)
    assert got == 200 and doc["outcome"] == "succeeded"
    assert request(api, "PUT", "/v1/keys/api:motd", {"value": "hello"}, WRITER)[0] == 200
    leaf = infra.redis["leaf1"].client()
    wait_until(lambda: leaf.get("api:motd") == "hello", what="the last write on the leaf")
    assert leaf.hexists(MACHINES, "kiosk-2")

    got, doc = request(api, "GET", "/v1/machines/kiosk-2", token=READER)
    assert got == 200 and doc["machine"]["cpus"] == 4 and doc["machine"]["stale"] is False
    got, doc = request(api, "GET", "/v1/errors?service=api-shop", token=READER)
    assert [e["message"] for e in doc["errors"]["api-shop"]] == ["printer jammed"]
    got, doc = request(api, "GET", "/v1/deploys?service=api-shop", token=READER)
    assert doc["deploys"][0]["version"] == "3.2" and doc["deploys"][0]["output"] == "done"
    got, doc = request(api, "GET", "/v1/services", token=READER)
    assert doc["services"]["api-shop"]["version"] == "3.2"
    assert request(api, "GET", "/v1/keys/api:motd", token=READER)[1]["value"] == "hello"


def test_settings_are_read_typed(infra, api, tmp_path):
    run = make_runner(infra)
    assert (
        run("config", "schema", "set", "api-kiosk", "--free-form", "--reason", "r").returncode == 0
    )
    done = run("config", "set", "api-kiosk", "page_threshold", "5", "--reason", "start low")
    assert done.returncode == 0, done.stderr

    def read() -> dict[str, Any]:
        return request(api, "GET", "/v1/settings/api-kiosk", token=READER)[1]

    wait_until(lambda: read().get("settings") == {"page_threshold": 5}, what="the setting")
    assert request(api, "GET", "/v1/settings/api-nothing", token=READER)[0] == 404


def test_mutual_tls_admits_only_clients_with_a_certificate(infra, tmp_path):
    ca = CertificateAuthority(tmp_path)
    cert, key = ca.issue("api", "127.0.0.1", client=False)
    files = ["--https-cert-file", cert, "--https-key-file", key, "--https-client-ca-file"]
    client = ssl.create_default_context(cafile=ca.ca_file)
    client.load_cert_chain(*ca.issue("kiosk", "kiosk-3", server=False))
    server, base = serve(infra, tmp_path, *files, ca.ca_file, context=client)
    try:
        got, doc = request(base, "GET", "/v1/machines", token=READER, context=client)
        assert got == 200 and "machines" in doc
        # The certificate lets a client in; its token still decides what it may do.
        assert request(base, "GET", "/v1/machines", context=client)[0] == 401
        anonymous = ssl.create_default_context(cafile=ca.ca_file)
        with pytest.raises(OSError):  # the handshake fails: no certificate
            request(base, "GET", "/v1/machines", token=READER, context=anonymous)
    finally:
        stop(server)
