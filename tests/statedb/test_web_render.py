"""The dashboard's HTML (pure): every record shown escaped, pages hold what they show."""

from __future__ import annotations

from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.locks import new_lock
from prodstate.statedb.machines import Machine
from prodstate.statedb.web import Dashboard
from prodstate.statedb.web_render import (
    deploys_page,
    errors_page,
    locks_page,
    machines_page,
    services_page,
    tree_page,
)

NOW = 1_800_000_000.0
EVIL = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def test_every_page_escapes_records():
    deploy = Deploy("d1", "web", "v1", ["h1"], EVIL, "ops", NOW, output=EVIL, command=EVIL)
    pages = [
        deploys_page([deploy], {"service": EVIL}, None),
        deploys_page([], {}, EVIL),
        locks_page([new_lock("web", "ann", EVIL, NOW)], NOW),
        machines_page([Machine("h1", {"os": EVIL, "disks": [{"mount": EVIL}]}, 5.0, False)]),
        services_page({"web": {"version": "v1", "deployed_by": EVIL}}, {"web": {"h1": {}}}),
        errors_page({"web": [ErrorEntry("web", NOW, "h1", EVIL)]}, NOW, 86400),
        tree_page(None, EVIL),
    ]
    for html in pages:
        assert "<script>" not in html
        assert ESCAPED in html


def test_deploys_page_shows_outcomes_and_keeps_the_search():
    ok = Deploy("a", "web", "v1", ["h1", "h2"], "ann", "ops", NOW, "succeeded", 0, NOW + 1)
    bad = Deploy("b", "web", "v2", [], "bob", "ops", NOW, "failed", 3, NOW + 1)
    html = deploys_page([bad, ok], {"service": "web", "since": "2h"}, None)
    assert 'id="search-service" value="web"' in html and 'value="2h"' in html
    assert "failed (exit 3)" in html and "succeeded" in html and "h1 h2" in html


def test_empty_pages_say_so_and_stale_machines_are_marked():
    assert 'id="locks-empty"' in locks_page([], NOW)
    assert "No errors" in errors_page({}, NOW, 86400)
    html = machines_page([Machine("old", {}, 100_000.0, True)])
    assert "STALE (1d)" in html


def test_locks_page_marks_expired_locks():
    html = locks_page([new_lock("web", "ann", "r", NOW - 100, ttl=10)], NOW)
    assert '<span class="ok">expired</span>' in html


def _call(app, method, path):
    seen = []
    body = app({"REQUEST_METHOD": method, "PATH_INFO": path}, lambda s, h: seen.append(s))
    return seen[0], b"".join(body).decode()


def test_unknown_pages_and_writes_are_refused():
    app = Dashboard(None, "dev", "127.0.0.1:1")
    assert _call(app, "GET", "/nope") == ("404 Not Found", "no page /nope\n")
    assert _call(app, "POST", "/locks")[0] == "405 Method Not Allowed"
    status, body = _call(app, "GET", "/")
    assert status == "200 OK" and "no ZooKeeper given" in body


def test_an_unreadable_redis_is_a_page_saying_why():
    status, body = _call(Dashboard(None, "dev", "127.0.0.1:1"), "GET", "/locks")
    assert status == "503 Service Unavailable" and "Error" in body and "127.0.0.1:1" in body
