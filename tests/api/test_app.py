"""The API's HTTP layer over its real records code and an in-memory client: who may call
what, the JSON errors, the body bound, the rate limit, staleness, and the OpenAPI
description. A refused request writes nothing."""

from __future__ import annotations

import json

import pytest

from prodstate.api.access import RateLimit, Tokens
from prodstate.api.app import create_app
from prodstate.api.records import Records
from prodstate.client import WriteFailed, WriteRejected, WriteUncertain
from prodstate.security.credentials import ApiToken
from prodstate.statedb.keys import MACHINES, SERVICES, instances
from tests.api.asgi import call
from tests.api.fake_client import FakeClient

READER, REPORTER, WRITER = "r" * 20, "p" * 20, "w" * 20
TOKENS = {
    "ro": ApiToken("ro", READER, frozenset({"read"})),
    "phone": ApiToken("phone", REPORTER, frozenset({"read", "report"})),
    "admin": ApiToken("admin", WRITER, frozenset({"read", "report", "write"})),
}


def build(client: FakeClient, burst: int = 1000, max_body: int = 1024):
    return create_app(Records(client), Tokens(TOKENS), RateLimit(1.0, burst), max_body)


def started(host: str = "web1", **more: object) -> bytes:
    return json.dumps({"host": host, **more}).encode()


@pytest.fixture
def client() -> FakeClient:
    return FakeClient({"db:foo": {"dsn": "postgres://db7/foo"}, "motd": "hello"})


def test_missing_and_wrong_tokens_are_refused_with_401(client):
    app = build(client)
    for token in (None, "x" * 20, READER[:-1]):
        reply = call(app, "POST", "/v1/services/shop/started", started(), token=token)
        assert reply.status == 401, token
        assert reply.headers["www-authenticate"] == "Bearer"
        assert "token" in reply.json()["error"]
    reply = call(app, "GET", "/v1/keys/motd", headers={"authorization": f"Basic {READER}"})
    assert reply.status == 401
    assert client.written == []


def test_an_identity_writing_beyond_its_rights_gets_403(client):
    app = build(client)
    reply = call(app, "POST", "/v1/services/shop/started", started(), token=READER)
    assert reply.status == 403 and "'report'" in reply.json()["error"]
    reply = call(app, "PUT", "/v1/keys/motd", b'{"value": "hi"}', token=REPORTER)
    assert reply.status == 403 and "'write'" in reply.json()["error"]
    assert client.written == []
    assert call(app, "PUT", "/v1/keys/motd", b'{"value": "hi"}', token=WRITER).status == 200
    assert client.written == [[("SET", "motd", "hi")]]
    # A key may hold slashes; the reserved keys stay prodstate's own.
    assert call(app, "PUT", "/v1/keys/cfg/a/b", b'{"value": "1"}', token=WRITER).status == 200
    assert client.written[-1] == [("SET", "cfg/a/b", "1")]


def test_oversized_bodies_get_413_before_they_are_parsed(client):
    app = build(client, max_body=1024)
    big = started(version="v" * 2000)
    reply = call(app, "POST", "/v1/services/shop/started", big, token=REPORTER)
    assert reply.status == 413 and "1024 bytes" in reply.json()["error"]
    # Sent in chunks without a length, and not even JSON: refused once past the bound.
    chunked = [b"x" * 600, b"x" * 600]
    reply = call(app, "POST", "/v1/services/shop/started", chunked, token=REPORTER)
    assert reply.status == 413
    # A lying Content-Length is no way around it either.
    reply = call(app, "POST", "/v1/services/shop/started", big, REPORTER, {"content-length": "10"})
    assert reply.status == 413
    reply = call(app, "POST", "/v1/errors", b"{}", REPORTER, {"content-length": "-1"})
    assert reply.status == 400
    assert client.written == []


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"host": "web1"', 400, "malformed JSON"),
        (b"[1, 2]", 422, "body"),
        (b'{"host": 7}', 422, "host"),
        (b'{"host": "web1", "colour": "red"}', 422, "colour"),
        (b"{}", 422, "host"),
        (b'{"host": "web 1"}', 400, "host name"),
        (b'{"host": "web1", "version": "v 1"}', 400, "version"),
    ],
)
def test_malformed_and_invalid_bodies_get_a_json_4xx_and_write_nothing(client, body, status, says):
    reply = call(build(client), "POST", "/v1/services/shop/started", body, token=REPORTER)
    assert reply.status == status
    assert says in reply.json()["error"]
    assert client.written == []


def test_a_phone_home_writes_what_the_command_writes(client):
    app = build(client)
    reply = call(app, "POST", "/v1/services/shop/started", started(version="v7"), REPORTER)
    assert (reply.status, reply.json()) == (200, {"recorded": True, "epoch": 7})
    (commands,) = client.written
    assert commands[0][:3] == ("HSET", instances("shop"), "web1")
    assert json.loads(commands[0][3])["version"] == "v7"
    assert ("HSETNX", SERVICES, "shop", "{}") in commands


def test_a_stop_never_started_is_refused_and_writes_nothing(client):
    reply = call(build(client), "POST", "/v1/services/shop/stopped", started(), token=REPORTER)
    assert reply.status == 400 and "never recorded" in reply.json()["error"]
    assert client.written == []


def test_a_machine_report_is_bounded_and_stamped_by_the_server(client):
    facts = {
        "cpus": 8,
        "os": "Debian",
        "disks": [{"device": "/dev/sda1", "mount": "/", "fs": "ext4"}],
    }
    reply = call(
        build(client), "POST", "/v1/machines/web1/report", json.dumps(facts).encode(), REPORTER
    )
    assert reply.status == 200
    ((command,),) = client.written
    assert command[:3] == ("HSET", MACHINES, "web1")
    record = json.loads(command[3])
    assert record["host"] == "web1" and record["cpus"] == 8 and record["reported_at"] > 0


def test_error_and_deploy_records(client):
    app = build(client)
    error = {"service": "shop", "host": "web1", "message": "boom"}
    assert call(app, "POST", "/v1/errors", json.dumps(error).encode(), REPORTER).status == 200
    deploy = {
        "service": "shop",
        "version": "v8",
        "targets": ["web1"],
        "who": "ann",
        "host": "ci1",
        "exit_code": 0,
    }
    reply = call(app, "POST", "/v1/deploys", json.dumps(deploy).encode(), REPORTER)
    assert reply.status == 200 and reply.json()["outcome"] == "succeeded"
    assert any(c[:3] == ("HSET", SERVICES, "shop") for c in client.written[-1])
    bad = {**deploy, "targets": [f"m{i}" for i in range(40)]}
    reply = call(app, "POST", "/v1/deploys", json.dumps(bad).encode(), REPORTER)
    assert reply.status == 400 and "at most 32" in reply.json()["error"]
    assert len(client.written) == 2


@pytest.mark.parametrize(
    ("failure", "status", "applied"),
    [
        (WriteUncertain("lost the root mid-write"), 504, None),
        (WriteFailed("no root is published"), 503, False),
        (WriteRejected("reserved key"), 400, False),
    ],
)
def test_unconfirmed_writes_say_whether_they_may_have_been_applied(
    client, failure, status, applied
):
    client.fail = failure
    reply = call(build(client), "POST", "/v1/services/shop/started", started(), REPORTER)
    assert reply.status == status
    assert reply.json()["applied"] is applied and str(failure) in reply.json()["error"]


def test_reads_give_the_heartbeat_age_and_refuse_an_older_copy(client):
    app = build(client)
    reply = call(app, "GET", "/v1/keys/db:foo", token=READER)
    assert reply.status == 200
    assert reply.json()["type"] == "hash" and reply.json()["value"] == {"dsn": "postgres://db7/foo"}
    assert 0 <= reply.json()["staleness"] < 60
    assert call(app, "GET", "/v1/keys/motd", token=READER, query="max_staleness=60").status == 200
    reply = call(app, "GET", "/v1/keys/motd", token=READER, query="max_staleness=0.1")
    assert reply.status == 503 and "limit 0.1s" in reply.json()["error"]
    no_beat = build(FakeClient({"motd": "hi"}, beat_age=None))
    reply = call(no_beat, "GET", "/v1/machines", token=READER, query="max_staleness=5")
    assert reply.status == 503 and "no heartbeat" in reply.json()["error"]
    assert call(app, "GET", "/v1/keys/nope", token=READER).status == 404
    assert call(app, "GET", "/v1/settings/nope", token=READER).status == 404
    assert call(app, "GET", "/v1/machines/web2", token=READER).status == 404  # never reported
    assert call(app, "GET", "/v1/machines/web 1", token=READER).status == 400


def test_each_identity_has_its_own_rate_limit(client):
    app = build(client, burst=2)
    statuses = [call(app, "GET", "/v1/keys/motd", token=READER).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    reply = call(app, "GET", "/v1/keys/motd", token=READER)
    assert int(reply.headers["retry-after"]) >= 1 and "rate limit" in reply.json()["error"]
    assert call(app, "GET", "/v1/keys/motd", token=WRITER).status == 200


def test_unknown_routes_and_methods_answer_json(client):
    app = build(client)
    assert call(app, "GET", "/v1/nothing", token=READER).json() == {"error": "Not Found"}
    reply = call(app, "DELETE", "/v1/keys/motd", token=WRITER)
    assert reply.status == 405 and "error" in reply.json()


def test_the_openapi_description_names_every_route_its_auth_and_errors(client):
    reply = call(build(client), "GET", "/openapi.json")
    assert reply.status == 200
    doc = reply.json()
    assert doc["info"]["title"] == "prodstate API"
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    routes = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert {
        ("/v1/keys/{key}", "get"),
        ("/v1/keys/{key}", "put"),
        ("/v1/settings/{namespace}", "get"),
        ("/v1/machines/{host}/report", "post"),
        ("/v1/services/{name}/started", "post"),
        ("/v1/services/{name}/stopped", "post"),
        ("/v1/errors", "post"),
        ("/v1/deploys", "post"),
    } <= routes
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"HTTPBearer": []}], (path, method)
            assert {"401", "413", "429"} <= set(operation["responses"]), (path, method)
            error = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}, (path, method)


def test_a_write_queued_past_its_timeout_is_not_applied(client):
    records = Records(client, write_timeout=0.05)
    records._writing.acquire()  # an earlier write still waiting for the root
    try:
        with pytest.raises(WriteFailed, match="earlier writes") as refused:
            records.write([("SET", "motd", "later")])
    finally:
        records._writing.release()
    assert refused.value.applied is False and client.written == []
    assert records.write([("SET", "motd", "later")]) == 7


def test_refused_tokens_are_rate_limited_per_address_not_the_identities(client):
    app = build(client, burst=2)
    statuses = [call(app, "GET", "/v1/keys/motd", token="x" * 20).status for _ in range(3)]
    assert statuses == [401, 401, 429]
    reply = call(app, "GET", "/v1/keys/motd")
    assert reply.status == 429 and "127.0.0.1" in reply.json()["error"]
    assert call(app, "GET", "/v1/keys/motd", token=READER).status == 200
