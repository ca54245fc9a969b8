"""Settings against a real cluster: schema refusals that write nothing, typed values on a
leaf, history and diff, concurrent writers with --if-version, the history's bound, and
hostile values refused in one line."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from prodstate.client import Client, WriteConflict, WriteRejected
from prodstate.settings.changes import stamp, value_change
from prodstate.settings.keys import HISTORY_MAX, VALUE_MAX, history_key, namespace_key
from prodstate.settings.store import commit
from prodstate.testing import wait_until

SCHEMA = {
    "type": "object",
    "properties": {
        "page_threshold": {"type": "integer", "minimum": 1},
        "email_to": {"type": "string", "format": "email"},
    },
    "additionalProperties": False,
}


def _root(infra):
    return infra.redis[infra.root_name()].client()


def _schema(run, tmp_path, name: str, schema: Any) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(schema, indent=2))
    done = run("config", "schema", "set", name, str(path), "--reason", "the error system")
    assert done.returncode == 0, done.stderr


def _leaf_client(infra) -> Client:
    return Client(infra.zk_hosts, infra.cluster, local=infra.redis["leaf1"].address)


def test_values_are_checked_written_with_their_history_and_read_typed(infra, run, tmp_path):
    _schema(run, tmp_path, "alerts", SCHEMA)
    done = run("config", "set", "alerts", "page_threshold", "5", "--reason", "start low")
    assert done.returncode == 0, done.stderr
    assert "page_threshold set to 5: version 2 (was -)" in done.stdout
    root = _root(infra)
    before = (root.hget(namespace_key("alerts"), "revision"), root.xlen(history_key("alerts")))
    for value, says in [
        (
            "0",
            "$.page_threshold: 0 is less than the minimum of 1 (schema rule "
            "/properties/page_threshold/minimum: 1)",
        ),
        ('"9"', "$.page_threshold: '9' is not of type 'integer'"),
    ]:
        refused = run("config", "set", "alerts", "page_threshold", value, "--reason", "r")
        assert refused.returncode == 1, refused.stderr
        assert says in refused.stderr and "nothing written" in refused.stderr
        assert refused.stderr.count("\n") == 1
    typo = run("config", "set", "alerts", "page_treshold", "9", "--reason", "typo")
    assert typo.returncode == 1 and "'page_treshold' was unexpected" in typo.stderr
    after = (root.hget(namespace_key("alerts"), "revision"), root.xlen(history_key("alerts")))
    assert after == before == ("2", 2)  # nothing written: not the value, not the history

    email = run(
        "config",
        "set",
        "alerts",
        "email_to",
        "ops@example.com",
        "--string",
        "--reason",
        "route pages",
    )
    assert email.returncode == 0, email.stderr
    raised = run("config", "set", "alerts", "page_threshold", "8", "--reason", "fewer pages")
    assert raised.returncode == 0, raised.stderr
    with _leaf_client(infra) as client:
        settings = wait_until(
            lambda: (s := client.config("alerts")).revision == 4 and s, what="the leaf's copy"
        )
        assert dict(settings) == {"page_threshold": 8, "email_to": "ops@example.com"}
        assert type(settings["page_threshold"]) is int and settings.version("page_threshold") == 4
        assert settings.record("page_threshold").stamp.reason == "fewer pages"

    got = run("config", "get", "alerts", "page_threshold")
    assert (got.returncode, got.stdout) == (0, "8\n")
    history = json.loads(run("config", "history", "alerts", "page_threshold", "--json").stdout)
    assert [(h["version"], h.get("old"), h["new"]) for h in history] == [(4, 5, 8), (2, None, 5)]
    assert "old" not in history[1]  # not set before: absent, not null
    assert {"who", "host", "at", "reason"} <= set(history[0]) and history[0]["host"]
    diff = run("config", "diff", "alerts", "--from", "1")
    assert diff.stdout.splitlines() == [
        '+ email_to: - -> "ops@example.com"',
        "+ page_threshold: - -> 8",
    ]
    listed = run("config", "list")
    assert any(
        line.split()[:4] == ["alerts", "schema", "2", "4"] for line in listed.stdout.splitlines()
    ), listed.stdout

    back = run(
        "config", "rollback", "alerts", "page_threshold", "--to", "2", "--reason", "too quiet"
    )
    assert back.returncode == 0, back.stderr
    assert "page_threshold set to 5, as at version 2: version 5 (was 8)" in back.stdout
    assert run("config", "get", "alerts", "page_threshold").stdout == "5\n"
    latest = json.loads(run("config", "history", "alerts", "--json", "--limit", "1").stdout)
    assert latest[0]["rollback_to"] == 2 and latest[0]["reason"] == "too quiet"


def test_concurrent_writers_with_if_version_exactly_one_wins(infra, run, tmp_path):
    _schema(run, tmp_path, "race", {"type": "object"})
    assert run("config", "set", "race", "owner", '"none"', "--reason", "r").returncode == 0
    version = json.loads(run("config", "get", "race", "owner", "--json").stdout)["version"]
    assert version == 2

    def contend(i: int) -> Any:
        return run(
            "config",
            "set",
            "race",
            "owner",
            f'"writer-{i}"',
            "--if-version",
            str(version),
            "--reason",
            f"writer {i}",
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(contend, range(4)))
    won = [o for o in outcomes if o.returncode == 0]
    lost = [o for o in outcomes if o.returncode != 0]
    assert len(won) == 1, [o.stderr for o in outcomes]
    for o in lost:
        assert o.returncode == 1 and "is at version 3 at the root" in o.stderr, o.stderr
    winner = json.loads(run("config", "get", "race", "owner").stdout)
    assert won[0].stdout.startswith(f'owner set to "{winner}": version 3 (was "none")')
    history = json.loads(run("config", "history", "race", "owner", "--json").stdout)
    assert [(h["version"], h.get("old"), h["new"]) for h in history] == [
        (3, "none", winner),
        (2, None, "none"),
    ]


def test_concurrent_writers_lose_no_change(infra, run):
    assert run("config", "schema", "set", "tally", "--free-form", "--reason", "r").returncode == 0
    writers, each = 3, 8

    def write(i: int) -> None:
        with _leaf_client(infra) as client:
            by = stamp(f"writer {i}", 0.0)
            for n in range(each):
                commit(
                    client,
                    "tally",
                    lambda ns, _, i=i, n=n: value_change(ns, "tally", "last", [i, n], by),
                    timeout=20,
                )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = json.loads(run("config", "history", "tally", "--json", "--limit", "100").stdout)
    values = [h for h in reversed(history) if h["kind"] == "set"]
    assert len(values) == writers * each
    assert [h["version"] for h in values] == list(range(2, 2 + writers * each))
    for before, after in itertools.pairwise(values):
        assert after["old"] == before["new"]  # each change replaced the one before it


def test_the_history_is_bounded_and_older_versions_refused(infra, run):
    assert run("config", "schema", "set", "busy", "--free-form", "--reason", "r").returncode == 0
    by = stamp("load", 0.0)
    with _leaf_client(infra) as client:
        for n in range(HISTORY_MAX + 10):
            commit(client, "busy", lambda ns, _, n=n: value_change(ns, "busy", "n", n, by), 10)
    leaf = infra.redis["leaf1"].client()
    wait_until(
        lambda: leaf.hget(namespace_key("busy"), "revision") == str(HISTORY_MAX + 11),
        what="the last change on the leaf",
    )
    assert leaf.xlen(history_key("busy")) == HISTORY_MAX
    kept = run("config", "rollback", "busy", "n", "--to", "20", "--reason", "kept")
    assert kept.returncode == 0, kept.stderr
    assert "set to 18, as at version 20" in kept.stdout
    gone = run("config", "rollback", "busy", "n", "--to", "5", "--reason", "too old")
    assert gone.returncode == 1 and "older than its history reaches" in gone.stderr


def test_hostile_input_is_one_line_and_writes_nothing(infra, run, tmp_path):
    _schema(run, tmp_path, "hostile", {"type": "object"})
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps("x" * (VALUE_MAX + 1)))
    bad_schema = tmp_path / "bad.json"
    bad_schema.write_text('{"type": "integr"}')
    cases = [
        (("set", "hostile", "k", "--file", str(huge)), 2, "bytes as compact JSON: at most"),
        (("set", "hostile", "k", "[" * 5000 + "]" * 5000), 2, "nests 5000 levels deep"),
        (("set", "hostile", "k", "x" * 100_000), 2, "bytes long"),
        (("set", "hostile", "k", "NaN"), 2, "NaN is not a JSON number"),
        (("set", "hostile", "k", "page"), 2, "is not JSON"),
        (("set", "hostile", "bad key", "1"), 2, "setting name"),
        (("set", "nowhere", "k", "1"), 1, "there is no namespace nowhere"),
        (("set", "hostile", "k", "1", "--reason", "a\nb"), 2, "one line"),
        (("schema", "set", "hostile", str(bad_schema)), 2, "not valid JSON Schema at /type"),
        (("get", "hostile", "missing"), 1, "hostile/missing is not set"),
        (("rollback", "hostile", "k", "--to", "99"), 1, "there is no version 99"),
    ]
    for args, code, says in cases:
        argv = ["config", *args]
        if "--reason" not in args and args[0] in ("set", "schema", "rollback"):
            argv += ["--reason", "hostile"]
        done = run(*argv)
        assert done.returncode == code, (args[:3], done.stderr)
        assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert _root(infra).xlen(history_key("hostile")) == 1  # only its schema


def test_a_checked_batch_writes_nothing_unless_every_condition_holds(infra):
    with Client(infra.zk_hosts, infra.cluster) as client:
        client.write_batch([("HSET", "cas:h", "v", "1")], expect=[("cas:h", "v", None)])
        root = infra.redis[client.root().node_id].client()
        with pytest.raises(WriteConflict) as conflict:
            client.write_batch(
                [("SET", "cas:other", "x"), ("HSET", "cas:h", "v", "2")],
                expect=[("cas:h", "v", "1"), ("cas:h", "w", "9")],
            )
        assert conflict.value.condition == 1
        assert "cas:h w is (absent), expected 9" in str(conflict.value)
        assert root.get("cas:other") is None and root.hget("cas:h", "v") == "1"
        # A held value that reads like a refusal the client retries on is still a conflict.
        client.write_batch([("HSET", "cas:h", "v", "READONLY LOADING")])
        with pytest.raises(WriteConflict):
            client.write_batch([("SET", "cas:x", "1")], expect=[("cas:h", "v", "1")], timeout=2)
        with pytest.raises(WriteRejected, match="prodstate:"):
            client.write_batch(
                [("SET", "prodstate:epoch", "9")], expect=[("cas:h", "v", "READONLY LOADING")]
            )
        assert root.get("cas:x") is None
