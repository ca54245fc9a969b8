"""The dashboard's pages (pure rendering) and routes (no servers: its Redis is a closed
port): records escaped, long fields folded, parts that cannot be read saying why, the
refresh getting only the live part, the security headers, the files it serves."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from prodstate.core.model import RootRecord
from prodstate.core.tree import NodeStatus, TreeStatus
from prodstate.settings.history import Change
from prodstate.settings.records import ABSENT, Namespace, SchemaRecord, Setting, Stamp
from prodstate.statedb.dashboard import charts, summary
from prodstate.statedb.dashboard.app import Dashboard
from prodstate.statedb.dashboard.namespaces import Listing, NamespaceRow, history_page
from prodstate.statedb.dashboard.read import Part, Shared
from prodstate.statedb.dashboard.render import render
from prodstate.statedb.dashboard.replies import CSP, STATIC
from prodstate.statedb.dashboard.tree import tree_view
from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import Machine

NOW = 1_800_000_000.0
EVIL = '<script>alert("x")</script>\x1b[2J'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
CLOSED = "127.0.0.1:1"
#: What a search form gives back as typed (escaped, control characters kept as typed).
TYPED = '<script>alert("x")</script>'


def _pages() -> dict[str, str]:
    deploy = Deploy("d<1>", "web", "v1", ["h1"], EVIL, "ops", NOW, output=EVIL * 50, command=EVIL)
    error = ErrorEntry("web", NOW, "h1", EVIL)
    node = NodeStatus(EVIL, "leaf", EVIL, True, True, "slave", "up", "b:1", None, None, True,
                      1, 0, 0.1, problems=(EVIL,))  # fmt: skip
    tree = TreeStatus(RootRecord("b", "b:1", 1, "r" * 40), 1, (node,), (EVIL,))
    machine = Machine(
        "h1", {"os": EVIL, "disks": [{"mount": EVIL}], "kernel": "x" * 500}, 5.0, False
    )
    common = {"now": NOW, "section": "/", "title": EVIL, "here": "/?q=" + quote(EVIL)}
    lock = LockRecord("web", "ann", EVIL, NOW)  # as a record not written by the commands
    by = Stamp(EVIL, EVIL, NOW, EVIL)
    namespace = Namespace("web", 2, SchemaRecord(None, 1, by), {"k": Setting("k", EVIL, 2, by)})
    changes = [Change(1, "schema", "", ABSENT, None, by), Change(2, "set", "k", ABSENT, EVIL, by)]
    return {
        "overview": render(
            "overview.html",
            tree=Part(tree),
            view=tree_view(tree),
            copy_age=Part(0.5),
            tiles=summary.tiles(None, None, None, None, None),
            feed=[],
            feed_error=Part(None, EVIL),
            errors_chart=charts.errors_chart({"web": [error]}, NOW),
            deploys_chart=charts.deploys_chart([deploy], NOW),
            **common,
        ),
        "machines": render(
            "machines.html",
            machines=Part([machine]),
            picked=summary.pick_machines([machine], None, False, 10),
            form={},
            **common,
        ),
        "machine": render(
            "machine.html",
            host="h1",
            machine=Part(machine),
            services=Part({"web": {"state": "running", "version": EVIL}}),
            deploys=Part([deploy]),
            errors=Part([error]),
            **common,
        ),
        "service": render(
            "service.html",
            name="web",
            current=Part({"version": "v1", "deployed_by": EVIL}),
            instances=Part({"h1": {"state": "running", "version": EVIL}}),
            versions=[(EVIL, ["h1"])],
            locks=Part([lock]),
            deploys=Part([deploy]),
            errors=Part([error]),
            errors_chart=None,
            **common,
        ),
        "services": render(
            "services.html",
            services=Part([("web", {"deployed_by": EVIL}, {"h1": {"version": EVIL}})]),
            **common,
        ),
        "deploys": render(
            "deploys.html",
            fields=[("service", "service")],
            form={"service": TYPED},
            error=EVIL,
            deploys=Part([deploy]),
            chart=None,
            truncated=False,
            **common,
        ),
        "locks": render("locks.html", locks=Part([lock]), **common),
        "settings": render(
            "settings.html",
            listing=Part(Listing([NamespaceRow("web", namespace, changes[-1])], 1)),
            **common,
        ),
        "namespace": render(
            "namespace.html",
            name="web",
            kept=200,
            error=EVIL,
            namespace=Part(namespace),
            page=history_page(changes, None, None, 50),
            key=None,
            before=None,
            **common,
        ),
        "errors": render(
            "errors.html",
            fields=[("q", "text")],
            form={"q": TYPED},
            error=None,
            errors=Part({"web": [error]}),
            chart=None,
            **common,
        ),
    }


def test_every_page_escapes_records_and_marks_control_characters():
    for name, html in _pages().items():
        assert "<script>alert" not in html and 'alert("x")' not in html, name
        assert ESCAPED in html, name
        assert '<span class="ctl" title="control character">\\e</span>' in html, name
        assert "\x1b" not in html, name
        inline = [t for t in re.findall(r"<script[^>]*>", html) if "src=" not in t]
        assert inline == [] and not re.search(r"\sstyle=|\son[a-z]+=", html), name


def test_long_fields_are_folded():
    html = _pages()["machine"]
    assert '<details class="fold" id="fold-d_1_-output">' in html
    assert '<details class="fold" id="fold-fact-kernel">' in html and "500 characters" in html


def test_a_part_that_cannot_be_read_says_why_and_the_rest_shows():
    html = render(
        "service.html",
        name="web",
        current=Part(None, "cannot read the service: Connection refused"),
        instances=Part({"h1": {"state": "running", "version": "v1"}}),
        versions=[("v1", ["h1"])],
        locks=Part(None, "cannot read locks: Connection refused"),
        deploys=Part([]),
        errors=Part([]),
        errors_chart=None,
        now=NOW,
    )
    assert '<p class="unavailable">cannot read the service: Connection refused</p>' in html
    assert "cannot read locks" in html and 'href="/machines/h1"' in html
    assert 'id="deploys-empty"' in html and "service-missing" not in html


def test_a_refresh_gets_only_the_live_part():
    whole = render("locks.html", locks=Part([]), title="Locks", section="/locks", now=NOW)
    live = render(
        "locks.html", fragment=True, locks=Part([]), title="Locks", section="/locks", now=NOW
    )
    assert whole.startswith("<!DOCTYPE html>") and 'hx-trigger="every 5s"' in whole
    assert 'id="locks-empty"' in live and "<html" not in live and "<nav" not in live


def _call(app, path, method="GET", query="", headers=None):
    seen = []
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        **(headers or {}),
    }
    body = b"".join(app(environ, lambda status, hdrs: seen.append((status, dict(hdrs)))))
    return seen[0][0], seen[0][1], body.decode(errors="replace")


@pytest.fixture
def app() -> Dashboard:
    return Dashboard(None, "dev", CLOSED)


def test_unknown_pages_and_writes_are_refused(app):
    assert _call(app, "/nope")[0] == "404 Not Found"
    assert _call(app, "/locks", "POST")[0] == "405 Method Not Allowed"
    assert _call(app, "/machines/<b>")[0] == "404 Not Found"
    assert _call(app, "/machines/%41")[0] == "404 Not Found"  # PATH_INFO is decoded once
    status, _, body = _call(app, "/errors", query="since=yesterday")
    assert status == "400 Bad Request" and 'id="search-error"' in body and "yesterday" in body


def test_every_reply_carries_the_strict_policy(app):
    for path in ("/", "/locks", "/metrics", "/static/dashboard.js", "/nope"):
        headers = _call(app, path)[1]
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert "script-src 'self'" in CSP and "default-src 'none'" in CSP


def test_only_the_shipped_files_are_served(app):
    for name, kind in STATIC.items():
        status, headers, body = _call(app, f"/static/{name}")
        assert status == "200 OK" and headers["Content-Type"].startswith(kind) and body
    assert _call(app, "/static/../app.py")[0] == "404 Not Found"
    assert _call(app, "/static/htmx.LICENSE")[0] == "404 Not Found"


def test_head_sends_no_body(app):
    status, headers, body = _call(app, "/static/dashboard.css", "HEAD")
    assert status == "200 OK" and int(headers["Content-Length"]) > 0 and body == ""


def test_a_redis_that_cannot_be_read_leaves_the_pages_saying_why(app):
    status, _, body = _call(app, "/")
    assert status == "200 OK" and "no ZooKeeper given" in body
    assert f"cannot read the local Redis: Error 111 connecting to {CLOSED}" in body
    assert body.count("Connection refused") == 1  # the parts after it are not tried
    status, _, body = _call(app, "/services/web", headers={"HTTP_HX_REQUEST": "true"})
    assert status == "200 OK" and "cannot read the service" in body and "<nav" not in body
    status, headers, body = _call(app, "/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'prodstate_statedb_read_ok{part="locks"} 0.0' in body


def test_a_shared_value_is_read_once_per_period():
    readings = iter(range(100))
    shared = Shared(3600.0, lambda: next(readings))
    assert [shared.get() for _ in range(5)] == [0] * 5
    always = Shared(0.0, lambda: next(readings))
    assert always.get() != always.get()
