"""The body bound: a request whose body is larger than the limit is refused with 413
before anything reads or parses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest request body taken by default (bytes).
MAX_BODY = 65_536


class BodyLimit:
    """ASGI middleware: 413 for a declared or received body over ``limit`` bytes (400 for
    a malformed Content-Length); the body, once whole, is handed on to the app."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await _refuse(400, "malformed Content-Length", scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await _refuse(413, self._too_large(), scope, receive, send)
            return
        body, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:  # chunked, or longer than it said
                await _refuse(413, self._too_large(), scope, receive, send)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(body), "more_body": False}
        await self.app(scope, _replay([whole]), send)

    def _too_large(self) -> str:
        return f"request body larger than {self.limit} bytes"


def _replay(messages: list[Message]) -> Receive:
    """A ``receive`` that hands out ``messages``, then waits as the server's would."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    return receive


async def _refuse(status: int, why: str, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"error": why}, status_code=status)(scope, receive, send)
