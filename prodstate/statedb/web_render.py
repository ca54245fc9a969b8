"""The dashboard's pages as HTML, from records already read (pure). Every value shown is
escaped: records are user input."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from prodstate.core.tree import TreeStatus
from prodstate.statedb.deploys import Deploy
from prodstate.statedb.errors import ErrorEntry, histogram, sparkline
from prodstate.statedb.keys import fmt_time
from prodstate.statedb.locks import LockRecord
from prodstate.statedb.machines import Machine, human_age, human_bytes

PAGES = [
    ("/", "Tree"),
    ("/machines", "Machines"),
    ("/services", "Services"),
    ("/deploys", "Deploys"),
    ("/locks", "Locks"),
    ("/errors", "Errors"),
]

_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
nav a { margin-right: 1em; } nav a.here { font-weight: bold; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
.bad { color: #b00; font-weight: bold; } .ok { color: #070; }
pre { margin: 0; white-space: pre-wrap; max-width: 60em; }
"""


def e(value: Any) -> str:
    """``value`` as escaped HTML text (``-`` for None)."""
    return html.escape("-" if value is None else str(value), quote=True)


def page(title: str, path: str, body: str) -> str:
    """A whole page: navigation, title and ``body`` (already HTML)."""
    links = " ".join(
        f'<a href="{href}"{" class=here" if href == path else ""}>{name}</a>'
        for href, name in PAGES
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>prodstate: {e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><nav>{links}</nav><h1>{e(title)}</h1>"
        f"{body}</body></html>"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    """A table of already-HTML cells (or a note that there is nothing)."""
    if not rows:
        return f'<p id="{table_id}-empty">None.</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def tree_page(status: TreeStatus | None, error: str | None) -> str:
    """The replication tree with each node's health."""
    if status is None:
        return page("Tree", "/", f'<p class="bad">{e(error)}</p>')
    health = "healthy" if status.healthy else "PROBLEMS"
    root = status.root.node_id if status.root else None
    rows = [
        [
            e(n.node_id) + (" (root)" if n.node_id == root else ""),
            e(n.tier),
            e(n.address),
            e(n.role),
            e(n.parent),
            f'<span class="{"bad" if n.problems else "ok"}">{e(n.link)}</span>',
            e(n.lag),
            e(None if n.staleness is None else f"{n.staleness:.1f}s"),
            e("; ".join(n.problems) or "ok"),
        ]
        for n in status.nodes
    ]
    problems = "".join(f"<li>{e(p)}</li>" for p in status.problems)
    body = (
        f'<p id="health" class="{"ok" if status.healthy else "bad"}">{health}: root '
        f"{e(root)}, epoch {e(status.epoch)}</p>"
        + (
            f'<p id="maintenance" class="bad">MAINTENANCE: {e(status.pause_text)} '
            "(no failover, no moves)</p>"
            if status.pause_text
            else ""
        )
        + (f'<ul id="problems">{problems}</ul>' if problems else "")
        + table(
            ["node", "tier", "address", "role", "parent", "link", "lag", "staleness", "health"],
            rows,
            "nodes",
        )
    )
    return page("Tree", "/", body)


def machines_page(found: Sequence[Machine]) -> str:
    """Every machine with its hardware and how fresh its report is."""
    rows = [
        [
            e(m.host),
            e(m.facts.get("cpus")),
            e(human_bytes(m.facts.get("memory_bytes"))),
            e(
                ", ".join(
                    f"{d.get('mount')} {human_bytes(d.get('size_bytes'))}"
                    for d in m.facts.get("disks", [])
                )
            ),
            e(m.facts.get("os")),
            e(m.facts.get("kernel")),
            e(", ".join(a.get("address", "") for a in m.facts.get("addresses", []))),
            (
                f'<span class="bad">STALE ({e(human_age(m.age))})</span>'
                if m.stale
                else e(human_age(m.age)) + " ago"
            ),
        ]
        for m in found
    ]
    headers = ["host", "CPUs", "memory", "disks", "OS", "kernel", "addresses", "reported"]
    return page("Machines", "/machines", table(headers, rows, "machines"))


def services_page(
    registry: Mapping[str, Mapping[str, Any]], hosts: Mapping[str, Mapping[str, Any]]
) -> str:
    """Every service: current version, when and by whom deployed, where it runs."""
    rows = []
    for name, current in registry.items():
        running = hosts.get(name, {})
        where = ", ".join(
            f"{h}" + (f" ({r.get('version')})" if r.get("version") else "")
            for h, r in running.items()
        )
        rows.append(
            [
                e(name),
                e(current.get("version")),
                e(fmt_time(current.get("deployed_at"))),
                e(current.get("deployed_by")),
                e(where or None),
            ]
        )
    headers = ["service", "current version", "deployed (UTC)", "by", "running on"]
    return page("Services", "/services", table(headers, rows, "services"))


def deploys_page(found: Sequence[Deploy], form: Mapping[str, str], error: str | None) -> str:
    """The deploy log with its search form."""
    fields = [
        ("service", "service"),
        ("machine", "machine"),
        ("version", "version"),
        ("since", "since (2h, 2026-05-01)"),
        ("until", "until"),
        ("q", "text"),
    ]
    inputs = "".join(
        f'<label>{e(label)} <input name="{name}" id="search-{name}" '
        f'value="{e(form.get(name, ""))}" size=12></label> '
        for name, label in fields
    )
    search = (
        f'<form method="get" action="/deploys" id="search">{inputs}'
        '<button type="submit" id="search-go">Search</button></form>'
    )
    if error:
        return page(
            "Deploys", "/deploys", search + f'<p class="bad" id="search-error">{e(error)}</p>'
        )
    rows = [
        [
            e(fmt_time(d.started_at)),
            e(d.service),
            e(d.version),
            f'<span class="{"ok" if d.outcome == "succeeded" else "bad"}">'
            f"{e(d.describe_outcome())}</span>",
            e(d.who),
            e(" ".join(d.targets) or None),
            f"<pre>{e(d.command)}</pre>",
            f"<pre>{e(d.output)}</pre>",
        ]
        for d in found
    ]
    headers = [
        "started (UTC)",
        "service",
        "version",
        "outcome",
        "who",
        "targets",
        "command",
        "output (tail)",
    ]
    return page("Deploys", "/deploys", search + table(headers, rows, "deploys"))


def locks_page(found: Sequence[LockRecord], now: float) -> str:
    """The locks mirrored into the dataset (expired ones marked)."""
    rows = [
        [
            e(r.name),
            e(r.holder),
            e(r.reason),
            e(fmt_time(r.acquired_at)),
            '<span class="ok">expired</span>' if r.expired(now) else e(fmt_time(r.expires_at)),
        ]
        for r in found
    ]
    headers = ["lock", "holder", "reason", "since (UTC)", "expires"]
    return page("Locks", "/locks", table(headers, rows, "locks"))


def errors_page(found: Mapping[str, Sequence[ErrorEntry]], now: float, span: float) -> str:
    """Recent errors per service, with their counts over the period."""
    bucket = span / 24
    parts = []
    for name, items in found.items():
        counts = histogram(items, now, bucket, 24)
        rows = [[e(fmt_time(x.at)), e(x.host), f"<pre>{e(x.message)}</pre>"] for x in items[:50]]
        parts.append(
            f"<h2>{e(name)}</h2><p>{len(items)} error(s), per hour: "
            f'<span class="spark" title="{e(counts)}">{e(sparkline(counts))}</span></p>'
            + table(["time (UTC)", "host", "message"], rows, f"errors-{e(name)}")
        )
    body = "".join(parts) or '<p id="errors-empty">No errors in the last 24 hours.</p>'
    return page("Errors", "/errors", body)
