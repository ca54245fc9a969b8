"""The HTTP side of the dashboard: a request as a page sees it, a reply, the headers every
reply carries (a strict content security policy), and the front-end files it serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import quote

StartResponse = Callable[..., Any]
#: The only content a page may load: its own scripts and styles, no inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: The files under static/ that are served, and their types.
STATIC = {
    "htmx.min.js": "text/javascript",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}


@dataclass(frozen=True)
class Request:
    """What a page is asked for: its path, query, and whether only its live part."""

    path: str
    query: dict[str, str]
    fragment: bool

    @property
    def here(self) -> str:
        """The path with its query, as the page refreshes itself from."""
        if not self.query:
            return quote(self.path)
        pairs = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.query.items())
        return f"{quote(self.path)}?{pairs}"


@dataclass(frozen=True)
class Reply:
    """A response: status line, body and content type."""

    status: str
    body: bytes
    kind: str = "text/html; charset=utf-8"
    cache: str = "no-store"


def static_file(name: str) -> Reply:
    """A front-end file shipped in the package."""
    kind = STATIC.get(name)
    if kind is None:
        return Reply("404 Not Found", f"no file {name}\n".encode(), "text/plain")
    data = (files("prodstate.statedb.dashboard") / "static" / name).read_bytes()
    return Reply("200 OK", data, f"{kind}; charset=utf-8", "public, max-age=3600")


def send(start_response: StartResponse, reply: Reply) -> list[bytes]:
    start_response(
        reply.status,
        [
            ("Content-Type", reply.kind),
            ("Content-Length", str(len(reply.body))),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", reply.cache),
        ],
    )
    return [reply.body]
