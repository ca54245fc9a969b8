"""The dashboard's pages as HTML, from what was read (pure): Jinja2 templates with every
value escaped (records are user input), control characters shown as escapes and long
fields folded. A page is rendered whole, or only its live part for a refresh."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from prodstate.statedb.dashboard.namespaces import as_json, what
from prodstate.statedb.dashboard.text import fold, segments
from prodstate.statedb.dashboard.tree import CHIPS_SHOWN
from prodstate.statedb.keys import fmt_time
from prodstate.statedb.machines import human_age, human_bytes

#: The navigation: path and name of each page.
PAGES = [
    ("/", "Overview"),
    ("/machines", "Machines"),
    ("/services", "Services"),
    ("/deploys", "Deploys"),
    ("/locks", "Locks"),
    ("/errors", "Errors"),
    ("/settings", "Settings"),
]


def shown(text: Any) -> Markup:
    """``text`` escaped, each control or invisible character shown as a marked escape."""
    if text is None:
        return Markup("-")
    return Markup("").join(
        Markup('<span class="ctl" title="control character">{}</span>').format(run)
        if control
        else escape(run)
        for run, control in segments(str(text))
    )


def plain(text: Any) -> str:
    """``text`` with each control or invisible character replaced by its escape (for places
    that hold no markup, such as the title); escaped by the template as any value."""
    return "".join(run for run, _ in segments("-" if text is None else str(text)))


_SLUG = re.compile(r"[^A-Za-z0-9_-]")


def slug(text: Any) -> str:
    """``text`` made safe as part of an element id (other characters become ``_``)."""
    return _SLUG.sub("_", str(text))[:80]


def seconds(value: float | None) -> str:
    """``0.4s``, ``12s``, ``3m`` (``-`` for none)."""
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 10 else human_age(value)


_ENV = Environment(
    loader=PackageLoader("prodstate.statedb.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(
    shown=shown,
    plain=plain,
    fold=fold,
    slug=slug,
    when=fmt_time,
    age=human_age,
    bytes=human_bytes,
    seconds=seconds,
    as_json=as_json,
    what=what,
)
_ENV.globals["pages"] = PAGES
_ENV.globals["chips"] = CHIPS_SHOWN


def render(template: str, *, fragment: bool = False, **context: Any) -> str:
    """The page ``template`` (``overview.html``, ...); only its live part if ``fragment``."""
    context.setdefault("here", "/")
    context.setdefault("refresh", 5)
    context.setdefault("cluster", "")
    context.setdefault("title", "")
    context.setdefault("section", "")
    return _ENV.get_template(template).render(fragment=fragment, **context)
