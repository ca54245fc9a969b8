"""The dashboard's routes: a WSGI application that reads what a page needs (each part on
its own, see :mod:`.read`) and renders it (:mod:`.render`). Read-only: ``GET`` and
``HEAD`` only. A request from the page's own refresh (``HX-Request``) gets only the page's
live part."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from kazoo.client import KazooClient

from prodstate.cli.exits import describe
from prodstate.cli.security import Security
from prodstate.client import Client
from prodstate.core.tree import TreeStatus
from prodstate.ops.status import collect_status
from prodstate.settings.keys import HISTORY_MAX, check_key
from prodstate.statedb.dashboard import charts, feed, summary
from prodstate.statedb.dashboard.metrics import Reading, exposition
from prodstate.statedb.dashboard.namespaces import history_page
from prodstate.statedb.dashboard.read import Part, Reads, Records, Shared, attempt
from prodstate.statedb.dashboard.render import render
from prodstate.statedb.dashboard.replies import Reply, Request, StartResponse, send, static_file
from prodstate.statedb.dashboard.tree import Change, tree_changes, tree_view
from prodstate.statedb.deploys import Deploy, DeploySearch
from prodstate.statedb.errors import ErrorEntry
from prodstate.statedb.keys import NAME_RE, check_span, parse_when
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import STALE_AFTER, Machine
from prodstate.statedb.services import running
from prodstate.zk.client import ZK_ERRORS

HOUR, DAY = 3600.0, 86400.0
#: How far back the machine and service pages look for deploys, and for errors.
HISTORY_SPAN, ERRORS_SPAN = 30 * DAY, 7 * DAY
#: The tree's changes kept for the feed.
CHANGES_KEPT = 100
#: Most machines the machines page lists (a search narrows them).
MACHINES_SHOWN = 500
#: Most deploys and errors a page lists.
DEPLOYS_SHOWN, ERRORS_READ = 200, 1000
#: Most settings namespaces listed, and changes of one shown at a time.
NAMESPACES_SHOWN, CHANGES_SHOWN = 500, 50
#: Seconds a namespace page waits for its history to match its settings (a change landing).
HISTORY_WAIT = 1.0
DEPLOY_FIELDS = [
    ("service", "service"),
    ("machine", "machine"),
    ("version", "version"),
    ("since", "since (2h, 2026-05-01)"),
    ("until", "until"),
    ("q", "text"),
]
ERROR_FIELDS = [
    ("service", "service"),
    ("host", "host"),
    ("since", "since (24h, 7d)"),
    ("q", "text"),
]


@dataclass(frozen=True)
class OverviewReads:
    """What the overview reads of the records, at ``now``."""

    now: float
    copy_age: Part[float | None]
    machines: Part[list[Machine]]
    locks: Part[list[LockRecord]]
    deploys: Part[list[Deploy]]
    errors: Part[dict[str, list[ErrorEntry]]]
    events: Part[list[tuple[str, dict[str, str]]]]


class Dashboard:
    """The WSGI application. ``security``: the local Redis is read as its ``reader``
    identity, every node's Redis (the tree) as ``admin`` if it is there (as ``prodstate
    status`` does), over TLS if it has the files. ``refresh``: seconds between a page's
    refreshes (the tree is read at most once in that time, whoever asks)."""

    def __init__(
        self,
        zk: KazooClient | None,
        cluster: str,
        redis: str,
        stale_after: float = STALE_AFTER,
        security: Security | None = None,
        refresh: float = 5.0,
    ) -> None:
        self.zk = zk
        self.cluster = cluster
        self.redis = redis
        self.stale_after = stale_after
        self.security = security or Security()
        self.refresh = refresh
        self._last_status: TreeStatus | None = None
        self._tree = Shared(refresh * 0.8, self._note_tree)
        self._overview = Shared(refresh * 0.8, self._read_overview)
        self.changes: tuple[Change, ...] = ()
        self.pages: dict[str, Callable[[Request], Reply]] = {
            "/": self.overview,
            "/machines": self.machines,
            "/services": self.services,
            "/deploys": self.deploys,
            "/locks": self.locks,
            "/errors": self.errors,
            "/settings": self.settings,
            "/metrics": self.metrics,
        }
        self.prefixed: dict[str, Callable[[Request, str], Reply]] = {
            "/machines/": self.machine,
            "/services/": self.service,
            "/settings/": self.namespace,
            "/static/": lambda request, name: static_file(name),
        }

    # --- routing ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return send(
                start_response, Reply("405 Method Not Allowed", b"read-only\n", "text/plain")
            )
        path = environ.get("PATH_INFO") or "/"
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        request = Request(path, query, environ.get("HTTP_HX_REQUEST") == "true")
        reply = self.route(request)
        body = send(start_response, reply)
        return [] if method == "HEAD" else body

    def route(self, request: Request) -> Reply:
        """The reply to ``request``."""
        page = self.pages.get(request.path)
        if page is not None:
            return page(request)
        for prefix, handler in self.prefixed.items():
            if request.path.startswith(prefix):
                # PATH_INFO is already decoded (PEP 3333): decoding it again would read
                # /machines/%2541 as machine A.
                return handler(request, request.path[len(prefix) :])
        return Reply("404 Not Found", f"no page {request.path}\n".encode(), "text/plain")

    def _page(self, request: Request, template: str, section: str, title: str, **ctx: Any) -> Reply:
        html = render(
            template,
            fragment=request.fragment,
            here=request.here,
            section=section,
            title=title,
            refresh=self.refresh,
            cluster=self.cluster,
            now=ctx.pop("now", time.time()),
            **ctx,
        )
        return Reply("200 OK", html.encode())

    def _missing(self, request: Request, what: str) -> Reply:
        html = render("error.html", title="Not found", section="", message=what, here=request.here)
        return Reply("404 Not Found", html.encode())

    @contextmanager
    def _records(self) -> Iterator[Records]:
        reader = self.security.credentials.redis_user("reader")
        client = Client(None, "-", local=self.redis, reader=reader, tls=self.security.tls)
        try:
            yield Records(client)
        finally:
            client.close()

    # --- the tree --------------------------------------------------------------------------

    def tree(self) -> Part[TreeStatus]:
        """The tree as last read, read again if older than the refresh period."""
        return self._tree.get()

    def _note_tree(self) -> Part[TreeStatus]:
        part = self._read_tree()
        if part.value is not None:
            seen = tree_changes(self._last_status, part.value, time.time())
            # Replaced, never changed in place: a page may be reading the previous tuple.
            self.changes = (*self.changes, *seen)[-CHANGES_KEPT:]
            self._last_status = part.value
        return part

    def _read_tree(self) -> Part[TreeStatus]:
        if self.zk is None:
            return Part(None, "no ZooKeeper given (--zk)")
        if not self.zk.connected:
            return Part(None, "cannot read the tree: not connected to ZooKeeper (retrying)")
        users = self.security.credentials
        user = users.redis_user("admin") or users.redis_user("reader")
        options = {"user": user, "tls": self.security.tls}
        try:
            return Part(collect_status(self.zk, self.cluster, redis_options=options))
        except ZK_ERRORS as exc:
            return Part(None, f"cannot read ZooKeeper: {describe(exc)}")

    # --- pages -----------------------------------------------------------------------------

    def overview(self, request: Request) -> Reply:
        """The tree with each node's health, the numbers, the charts, the recent changes."""
        tree = self.tree()
        got = self._overview.get()
        now, copy_age, machines, locks = got.now, got.copy_age, got.machines, got.locks
        deploys, errors, events = got.deploys, got.errors, got.events
        recent = feed.merged(
            feed.change_events(self.changes),
            feed.service_events(events.value or []),
            feed.deploy_events(deploys.value or []),
            feed.lock_events(locks.value or []),
            feed.error_events(errors.value or {}),
        )
        status = tree.value
        view = tree_view(status) if status else None
        tiles = summary.tiles(
            view.tally if view else None,
            None if machines.value is None else summary.machines_by_freshness(machines.value),
            None if locks.value is None else summary.locks_by_state(locks.value, now),
            None if deploys.value is None else summary.deploys_by_outcome(deploys.value),
            None if errors.value is None else summary.errors_by_service(errors.value, now - HOUR),
        )
        # Shown once: a Redis found down is said by the first part.
        feed_error = next((p for p in (events, deploys, errors) if p.error), Part())
        if feed_error.error == copy_age.error:
            feed_error = Part()
        return self._page(
            request,
            "overview.html",
            "/",
            "Overview",
            now=now,
            tree=tree,
            view=view,
            copy_age=copy_age,
            tiles=tiles,
            feed=recent,
            feed_error=feed_error,
            errors_chart=None if errors.value is None else charts.errors_chart(errors.value, now),
            deploys_chart=None
            if deploys.value is None
            else charts.deploys_chart(deploys.value, now),
        )

    def _read_overview(self) -> OverviewReads:
        now = time.time()
        reads = Reads()
        with self._records() as rec:
            return OverviewReads(
                now,
                reads.attempt("the local Redis", lambda: rec.copy_age(now)),
                reads.attempt("machines", lambda: rec.machines(now, self.stale_after)),
                reads.attempt("locks", rec.locks),
                reads.attempt("deploys", lambda: rec.deploys(DeploySearch(since=now - DAY))),
                reads.attempt("errors", lambda: rec.errors(None, now - DAY, ERRORS_READ)),
                reads.attempt("service events", lambda: rec.service_events(feed.FEED_LENGTH)),
            )

    def machines(self, request: Request) -> Reply:
        """The machines, stale ones first, searched by name."""
        now, query = time.time(), request.query
        with self._records() as rec:
            found = attempt("machines", lambda: rec.machines(now, self.stale_after))
        picked = None
        if found.value is not None:
            stale_only = query.get("stale") == "1"
            picked = summary.pick_machines(found.value, query.get("q"), stale_only, MACHINES_SHOWN)
        return self._page(
            request,
            "machines.html",
            "/machines",
            "Machines",
            machines=found,
            picked=picked,
            form=query,
        )

    def machine(self, request: Request, host: str) -> Reply:
        """One machine: its facts, services, deploys and errors."""
        if not NAME_RE.fullmatch(host):
            return self._missing(request, f"no machine can be named {host!r}")
        now = time.time()
        reads = Reads()
        with self._records() as rec:
            machine = reads.attempt("facts", lambda: rec.machine(host, now, self.stale_after))
            services = reads.attempt("services", lambda: rec.services_on(host))
            search = DeploySearch(machine=host, since=now - HISTORY_SPAN)
            deploys = reads.attempt("deploys", lambda: rec.deploys(search)[:DEPLOYS_SHOWN])
            errors = reads.attempt(
                "errors",
                lambda: _on_host(rec.errors(None, now - ERRORS_SPAN, ERRORS_READ), host),
            )
        return self._page(
            request,
            "machine.html",
            "/machines",
            f"Machine {host}",
            host=host,
            machine=machine,
            services=services,
            deploys=deploys,
            errors=errors,
        )

    def services(self, request: Request) -> Reply:
        """Every service, its version and where it runs."""

        def read(rec: Records) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
            registry = rec.registry()
            return [
                (name, current, running(rec.instances(name))) for name, current in registry.items()
            ]

        with self._records() as rec:
            found = attempt("services", lambda: read(rec))
        return self._page(request, "services.html", "/services", "Services", services=found)

    def service(self, request: Request, name: str) -> Reply:
        """One service: where it runs, its versions, deploy history, errors and locks."""
        if not NAME_RE.fullmatch(name):
            return self._missing(request, f"no service can be named {name!r}")
        now = time.time()
        reads = Reads()
        with self._records() as rec:
            current = reads.attempt("the service", lambda: rec.service(name))
            instances = reads.attempt("instances", lambda: rec.instances(name))
            locks = reads.attempt("locks", lambda: summary.locks_of(rec.locks(), name))
            search = DeploySearch(service=name, since=now - HISTORY_SPAN)
            deploys = reads.attempt("deploys", lambda: rec.deploys(search)[:DEPLOYS_SHOWN])
            errors = reads.attempt(
                "errors", lambda: rec.errors(name, now - ERRORS_SPAN, ERRORS_READ).get(name, [])
            )
        chart = None
        if errors.value is not None:
            chart = charts.errors_chart({name: errors.value}, now, chart_id="service-errors-chart")
        return self._page(
            request,
            "service.html",
            "/services",
            f"Service {name}",
            now=now,
            name=name,
            current=current,
            instances=instances,
            versions=summary.versions(instances.value or {}),
            locks=locks,
            deploys=deploys,
            errors=errors,
            errors_chart=chart,
        )

    def deploys(self, request: Request) -> Reply:
        """The deploy log, searched by the form's fields."""
        query, now = request.query, time.time()
        context: dict[str, Any] = {"fields": DEPLOY_FIELDS, "form": query, "error": None}
        context.update(deploys=Part([]), chart=None, truncated=False)
        try:
            search = DeploySearch(
                service=query.get("service") or None,
                machine=query.get("machine") or None,
                version=query.get("version") or None,
                since=parse_when(query["since"]) if query.get("since") else None,
                until=parse_when(query["until"]) if query.get("until") else None,
                text=query.get("q") or None,
            )
        except ValueError as exc:
            context["error"] = describe(exc)
            return self._reply_400(request, "deploys.html", "/deploys", "Deploys", context)
        with self._records() as rec:
            found = attempt("the deploy log", lambda: rec.deploys(search))
        if found.value is not None:
            context["chart"] = charts.deploys_chart(found.value, now)
            context["truncated"] = len(found.value) > DEPLOYS_SHOWN
            found = Part(found.value[:DEPLOYS_SHOWN])
        context["deploys"] = found
        return self._page(request, "deploys.html", "/deploys", "Deploys", now=now, **context)

    def locks(self, request: Request) -> Reply:
        """The locks as mirrored into the dataset."""
        with self._records() as rec:
            found = attempt("locks", rec.locks)
        return self._page(request, "locks.html", "/locks", "Locks", locks=found)

    def errors(self, request: Request) -> Reply:
        """Errors, searched by service, host, text and time, with their counts per hour."""
        query, now = request.query, time.time()
        context: dict[str, Any] = {"fields": ERROR_FIELDS, "form": query, "error": None}
        context.update(errors=Part({}), chart=None)
        try:
            service = query.get("service") or None
            if service is not None and not NAME_RE.fullmatch(service):
                raise ValueError(f"no service can be named {service!r}")
            span = check_span(query.get("since") or "24h")
        except ValueError as exc:
            context["error"] = describe(exc)
            return self._reply_400(request, "errors.html", "/errors", "Errors", context)
        with self._records() as rec:
            found = attempt("errors", lambda: rec.errors(service, now - span, ERRORS_READ))
        if found.value is not None:
            matching = summary.matching_errors(found.value, query.get("host"), query.get("q"))
            hours = max(1, min(168, int(-(-span // HOUR))))
            context["chart"] = charts.errors_chart(matching, now, hours)
            found = Part(matching)
        context["errors"] = found
        return self._page(request, "errors.html", "/errors", "Errors", now=now, **context)

    def settings(self, request: Request) -> Reply:
        """Every settings namespace: how it is checked, its keys, version and last change."""
        with self._records() as rec:
            found = attempt("the settings", lambda: rec.namespaces(NAMESPACES_SHOWN))
        return self._page(request, "settings.html", "/settings", "Settings", listing=found)

    def namespace(self, request: Request, name: str) -> Reply:
        """One namespace: its schema, keys and values, and its history (newest first, a
        page at a time, ``key`` for one key's)."""
        if not NAME_RE.fullmatch(name):
            return self._missing(request, f"no settings namespace can be named {name!r}")
        title = f"Settings: {name}"
        context: dict[str, Any] = {"name": name, "kept": HISTORY_MAX, "error": None}
        context.update(namespace=Part(), page=None, key=None, before=None)
        try:
            key = request.query.get("key") or None
            context["key"] = None if key is None else check_key(key)
            before = request.query.get("before")
            context["before"] = None if before is None else _version(before)
        except ValueError as exc:
            context["error"] = describe(exc)
            return self._reply_400(request, "namespace.html", "/settings", title, context)
        with self._records() as rec:
            found = attempt(f"namespace {name}", lambda: rec.namespace(name, HISTORY_WAIT))
        if found.value is None:
            context["namespace"] = Part(None, found.error)
        elif found.value[0] is None:
            return self._missing(request, f"there is no settings namespace {name}")
        else:
            current, changes = found.value
            context["namespace"] = Part(current)
            page = history_page(changes, context["key"], context["before"], CHANGES_SHOWN)
            context["page"] = page
        return self._page(request, "namespace.html", "/settings", title, **context)

    def _reply_400(
        self, request: Request, template: str, section: str, title: str, context: dict[str, Any]
    ) -> Reply:
        reply = self._page(request, template, section, title, **context)
        return Reply("400 Bad Request", reply.body)

    def metrics(self, request: Request) -> Reply:
        """The state database's metrics in Prometheus's text format."""
        now = time.time()
        reads = Reads()
        with self._records() as rec:
            copy_age = reads.attempt("the local Redis", lambda: rec.copy_age(now))
            machines = reads.attempt("machines", lambda: rec.machines(now, self.stale_after))
            locks = reads.attempt("locks", rec.locks)
            deploys = reads.attempt("deploys", lambda: rec.deploys(DeploySearch(since=now - DAY)))
            errors = reads.attempt("errors", lambda: rec.errors(None, now - HOUR, ERRORS_READ))
        reading = Reading(
            None if machines.value is None else summary.machines_by_freshness(machines.value),
            None if locks.value is None else summary.locks_by_state(locks.value, now),
            None if deploys.value is None else summary.deploys_by_outcome(deploys.value),
            None if errors.value is None else summary.errors_by_service(errors.value, now - HOUR),
            copy_age.value,
        )
        return Reply("200 OK", exposition(reading), "text/plain; version=0.0.4; charset=utf-8")


def _version(text: str) -> int:
    """A version given in a query (1 or more); ValueError saying why not."""
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) >= 1):
        raise ValueError(f"{text!r} is not a version (1, 2, ...)")
    return int(text)


def _on_host(found: dict[str, list[Any]], host: str) -> list[Any]:
    """The errors of every service that happened on ``host``, newest first."""
    every = [e for items in found.values() for e in items if e.host == host]
    return sorted(every, key=lambda e: e.at, reverse=True)
