"""The dashboard's settings pages with no servers: the history paged and filtered, values
shown as the JSON they are, the namespaces read from a Redis stand-in (a malformed one
listed as unreadable), hostile values shown as escaped text, and the routes (bad names and
queries refused, an unknown namespace a 404, a Redis that cannot be read said so)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from prodstate.settings.keys import NAMESPACES, history_key, namespace_key
from prodstate.settings.records import ABSENT, Stamp
from prodstate.statedb.dashboard.app import Dashboard
from prodstate.statedb.dashboard.namespaces import Listing, NamespaceRow, as_json, history_page
from prodstate.statedb.dashboard.read import Part, Records
from prodstate.statedb.dashboard.render import render
from tests.settings.builders import SCHEMA, Replica
from tests.statedb.test_dashboard_pages import CLOSED, _call

#: A reason (or who, or host) as a record not written by the commands might hold it.
EVIL = '<script>alert("x")</script>\x1b[2J\u202eevil'
HOSTILE_BY = Stamp(EVIL, EVIL, 1_800_000_000.0, EVIL)


def _errors() -> Replica:
    """Namespace ``errors``: its schema, then versions 2-6."""
    ns = Replica("errors")
    ns.schema(SCHEMA)
    ns.set("page_threshold", 5)
    ns.set("hosts", ["a", "b"])
    ns.set("page_threshold", 7)
    ns.set("email", "ops@example.com")
    ns.set("email")  # unset
    return ns


def _hostile(ns: Replica, key: str, value: Any, version: int) -> None:
    """``key`` given ``value`` as if written into Redis by hand (no bounds, no schema)."""
    record = {"value": value, "version": version, **vars(HOSTILE_BY)}
    ns.hash[f"value:{key}"] = json.dumps(record)
    ns.hash[f"version:{key}"] = str(version)


class FakeRedis:
    """The reads the settings pages make, answered from Replicas (a stand-in for the local
    Redis behind :class:`Records`)."""

    def __init__(self, *replicas: Replica, extra_names: tuple[str, ...] = ()) -> None:
        self.hashes = {namespace_key(r.name): r.hash for r in replicas}
        self.streams = {history_key(r.name): r.stream for r in replicas}
        self.names = {r.name for r in replicas} | set(extra_names)

    def read(self, *command: Any) -> Any:
        verb, key, *rest = command
        if verb == "SMEMBERS" and key == NAMESPACES:
            return set(self.names)
        if verb == "HGETALL":
            return dict(self.hashes.get(key, {}))
        if verb == "HGET":
            return self.hashes.get(key, {}).get(rest[0])
        entries = [(f"{i}-0", fields) for i, fields in enumerate(self.streams.get(key, []), 1)]
        if verb == "XRANGE":
            return entries
        if verb == "XREVRANGE":
            assert rest == ["+", "-", "COUNT", 1], rest
            return entries[::-1][:1]
        raise AssertionError(f"unexpected read {command}")


def test_the_history_is_paged_newest_first_and_filtered_by_key():
    changes = _errors().changes()
    page = history_page(changes, None, None, 4)
    assert [c.revision for c in page.changes] == [6, 5, 4, 3]
    assert (page.matching, page.older, page.before, page.kept_from) == (6, 2, 3, 1)
    older = history_page(changes, None, page.before, 4)
    assert [c.revision for c in older.changes] == [2, 1] and older.before is None
    one = history_page(changes, "page_threshold", None, 50)
    assert [c.revision for c in one.changes] == [4, 2] and one.matching == 2
    assert [c.revision for c in history_page(changes, "email", 6, 1).changes] == [5]
    assert history_page(changes, "never", None, 50).changes == []
    assert history_page([], None, None, 50).kept_from is None


def test_values_are_shown_as_the_json_they_are():
    assert as_json(5) == "5" and as_json("5") == '"5"' and as_json(None) == "null"
    assert as_json({"b": [1, True], "a": "é"}) == '{"a": "é", "b": [1, true]}'
    assert as_json(ABSENT) == "-"
    assert as_json({1, 2}).startswith("(cannot be shown as JSON")


def test_namespaces_are_read_each_with_its_latest_change():
    errors, web = _errors(), Replica("web")
    web.schema(None)
    broken = Replica("broken")
    broken.schema(None)
    broken.hash["value:k"] = "{"
    fake = FakeRedis(errors, web, broken, extra_names=("bad name<",))
    listing = Records(fake).namespaces(10)  # type: ignore[arg-type]
    assert listing.total == 4
    rows = {row.name: row for row in listing.rows}
    assert rows["errors"].last is not None and rows["errors"].last.revision == 6
    assert rows["errors"].namespace is not None and len(rows["errors"].namespace.settings) == 2
    assert rows["web"].namespace is not None and rows["web"].namespace.schema.free_form
    assert "setting broken/k: malformed" in (rows["broken"].error or "")
    assert "must be 1-64 letters" in (rows["bad name<"].error or "")
    assert [r.name for r in Records(fake).namespaces(2).rows] == ["bad name<", "broken"]  # type: ignore[arg-type]

    found, changes = Records(fake).namespace("errors", 0.1)  # type: ignore[arg-type]
    assert found is not None and found.revision == 6 and len(changes) == 6
    assert Records(fake).namespace("nope", 0.1) == (None, [])  # type: ignore[arg-type]
    errors.stream.pop()  # the history no longer matches the namespace
    with pytest.raises(ValueError, match="does not match its settings"):
        Records(fake).namespace("errors", 0.05)  # type: ignore[arg-type]


def _namespace_page(ns: Replica, **query: Any) -> str:
    found = ns.namespace()
    assert found is not None
    page = history_page(ns.changes(), query.get("key"), query.get("before"), 50)
    return render(
        "namespace.html",
        name=ns.name,
        kept=200,
        error=None,
        namespace=Part(found),
        page=page,
        key=query.get("key"),
        before=query.get("before"),
        title=f"Settings: {ns.name}",
    )


def test_the_namespace_page_shows_schema_values_and_history():
    html = _namespace_page(_errors())
    assert 'id="fold-schema"' in html and "&#34;additionalProperties&#34;: false" in html
    keys = html[html.index('id="settings"') : html.index('id="history-section"')]
    assert re.findall(r'href="(/settings/errors\?key=[a-z_]+)#', keys) == [
        "/settings/errors?key=hosts",
        "/settings/errors?key=page_threshold",
    ]
    assert "[&#34;a&#34;, &#34;b&#34;]" in keys and ">7<" in keys and "email" not in keys
    history = html[html.index('id="history"') :]
    assert re.findall(r'data-label="version">(\d+)<', history) == ["6", "5", "4", "3", "2", "1"]
    assert "6 changes kept; shown: versions 6 back to 1." in html
    assert "history-older" not in html and "history-all" not in html

    one = _namespace_page(_errors(), key="page_threshold")
    assert "2 changes of page_threshold kept" in one and 'id="history-all"' in one
    assert re.findall(r'data-label="version">(\d+)<', one[one.index('id="history"') :]) == [
        "4",
        "2",
    ]


def test_a_long_history_says_how_many_more_and_links_to_them():
    ns = Replica("busy")
    ns.schema(None)
    for i in range(60):
        ns.set("n", i)
    html = _namespace_page(ns)
    assert "61 changes kept; shown: versions 61 back to 12." in html
    assert '<a id="history-older" href="/settings/busy?before=12#history-section">11 older</a>' in (
        html
    )
    older = _namespace_page(ns, before=12)
    assert "shown: versions 11 back to 1." in older and 'id="history-newest"' in older


def test_hostile_values_are_escaped_text_and_long_ones_fold():
    ns = _errors()
    _hostile(ns, "markup", EVIL, 7)
    _hostile(ns, "huge", "x" * 100_000, 8)
    _hostile(ns, "deep", json.loads("[" * 500 + "]" * 500), 9)
    ns.hash["revision"] = "9"
    html = _namespace_page(ns)
    assert "<script>alert" not in html and "\x1b" not in html and "\u202e" not in html
    # The value as JSON (its ESC a JSON escape); the stamp's text with marked escapes.
    assert "&#34;&lt;script&gt;alert(\\&#34;x\\&#34;)&lt;/script&gt;\\u001b[2J" in html
    assert '<span class="ctl" title="control character">U+202E</span>evil' in html
    assert '<span class="ctl" title="control character">\\e</span>' in html
    assert 'id="fold-value-huge"' in html and "100,002 characters" in html
    assert 'id="fold-value-deep"' in html and "1,000 characters" in html
    inline = [t for t in re.findall(r"<script[^>]*>", html) if "src=" not in t]
    assert inline == [] and not re.search(r"\sstyle=|\son[a-z]+=", html)


def test_the_list_shows_each_namespace_or_why_not_and_an_empty_state():
    errors = _errors()
    rows = [
        NamespaceRow("errors", errors.namespace(), errors.changes()[-1]),
        NamespaceRow("<b>x", error="setting x/k: malformed record"),
    ]
    html = render("settings.html", listing=Part(Listing(rows, 3)), title="Settings")
    table = html[html.index('id="namespaces"') :]
    assert '<a href="/settings/errors">errors</a>' in table and "unset email" in table
    assert '<span class="pill ok">schema</span>' in table
    assert '<a href="/settings/%3Cb%3Ex">&lt;b&gt;x</a>' in table and "unreadable" in table
    assert "3 namespaces; the first 2 by name shown." in html
    empty = render("settings.html", listing=Part(Listing([], 0)), title="Settings")
    assert 'id="namespaces-empty"' in empty and "prodstate config schema set" in empty
    down = render("settings.html", listing=Part(None, "cannot read the settings: refused"))
    assert '<p class="unavailable">cannot read the settings: refused</p>' in down
    assert 'href="/settings" class="here"' not in down and 'href="/settings"' in down


@pytest.fixture
def app() -> Dashboard:
    return Dashboard(None, "dev", CLOSED)


@pytest.fixture
def served(app: Dashboard) -> Dashboard:
    """The dashboard reading namespace ``errors`` from a stand-in for its Redis."""

    @contextmanager
    def records() -> Iterator[Records]:
        yield Records(FakeRedis(_errors()))  # type: ignore[arg-type]

    app._records = records  # type: ignore[method-assign]
    return app


def test_the_routes_refuse_bad_names_and_queries(app):
    for path in ("/settings/<b>", "/settings/a/b", "/settings/%41"):
        status, _, body = _call(app, path)
        assert status == "404 Not Found" and 'id="page-error"' in body, path
    for query, says in [
        ("key=%3Cb%3E", "setting name"),
        ("before=0", "is not a version"),
        ("before=" + "9" * 5000, "is not a version"),
    ]:
        status, _, body = _call(app, "/settings/web", query=query)
        assert status == "400 Bad Request" and 'id="search-error"' in body and says in body


def test_pages_say_when_the_redis_cannot_be_read(app):
    status, _, body = _call(app, "/settings")
    assert status == "200 OK" and "cannot read the settings: Error 111" in body
    assert '<a href="/settings" class="here">Settings</a>' in body
    status, _, body = _call(app, "/settings/web", headers={"HTTP_HX_REQUEST": "true"})
    assert status == "200 OK" and "cannot read namespace web: Error 111" in body
    assert "<nav" not in body


def test_the_routes_serve_a_namespace_and_404_an_unknown_one(served):
    status, _, body = _call(served, "/settings")
    assert status == "200 OK" and '<a href="/settings/errors">errors</a>' in body
    status, _, body = _call(served, "/settings/errors", query="key=hosts")
    assert status == "200 OK" and "1 change of hosts kept" in body
    assert "<title>Settings: errors · prodstate dev</title>" in body
    status, _, body = _call(served, "/settings/nope")
    assert status == "404 Not Found" and "there is no settings namespace nope" in body
