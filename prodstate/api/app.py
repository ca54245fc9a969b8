"""The FastAPI application: routes, the identity each route needs, and the JSON errors.

Every route but ``/openapi.json`` needs ``Authorization: Bearer TOKEN`` of an identity
with its right (``read``, ``report`` or ``write``); each identity has its own rate limit,
and so has each caller address for its requests without a known token.
Every refusal is ``{"error": "..."}`` with its status, and a refused request writes
nothing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from prodstate import __version__
from prodstate.api import models
from prodstate.api.access import READ, REPORT, WRITE, RateLimit, Tokens
from prodstate.api.limits import MAX_BODY, BodyLimit
from prodstate.api.records import Records
from prodstate.client import (
    ProdstateError,
    StaleData,
    WriteFailed,
    WriteRejected,
    WriteUncertain,
)
from prodstate.security.credentials import ApiToken
from prodstate.settings.records import UnknownNamespace
from prodstate.statedb.deploys import DeploySearch, Outcome
from prodstate.statedb.keys import check_span, parse_when
from prodstate.statedb.services import RUNNING, STOPPED

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.Error, "description": why}
    for status, why in {
        400: "Malformed request, or a value the records refuse: nothing written",
        401: "Missing or unknown token",
        403: "The identity lacks the right",
        404: "No such record",
        413: "Body larger than the limit",
        422: "Body or query of the wrong shape: nothing written",
        429: "The identity's rate limit: retry after Retry-After seconds",
        503: "Local copy too old, Redis unreachable, or the write not applied",
        504: "Written but not confirmed: it may have been applied",
    }.items()
}

Staleness = Annotated[
    float | None,
    Query(ge=0, description="Refuse (503) if the local copy is older (seconds)."),
]
Name = Annotated[str, Path(max_length=64)]


def create_app(
    records: Records,
    tokens: Tokens,
    limit: RateLimit,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The API over ``records``, for the identities of ``tokens``."""
    app = FastAPI(
        title="prodstate API",
        version=__version__,
        description="Reads of the local copy and phone-home writes, fenced and confirmed.",
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,
    )
    app.add_middleware(BodyLimit, limit=max_body)
    _handle_errors(app)
    bearer = HTTPBearer(auto_error=False, description="A token of [api.tokens].")
    #: Requests without a known token, per caller address, limited as an identity's are.
    failures = RateLimit(limit.rate, limit.burst)

    def right(needed: str) -> Callable[..., ApiToken]:
        def identity(
            request: Request,
            given: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> ApiToken:
            found = None if given is None else tokens.identify(given.credentials)
            if found is None:
                peer = request.client.host if request.client else "?"
                wait = failures.allow(peer)
                if wait:
                    raise _too_many(f"too many refused tokens from {peer}", wait)
                if given is None:
                    raise _unauthorized("missing token: send Authorization: Bearer TOKEN")
                raise _unauthorized("unknown token")
            wait = limit.allow(found.name)
            if wait:
                raise _too_many(f"rate limit of {found.name!r}", wait)
            if needed not in found.rights:
                raise HTTPException(403, f"identity {found.name!r} has no {needed!r} right")
            return found

        return identity

    reader = [Depends(right(READ))]
    reporter = [Depends(right(REPORT))]
    writer = [Depends(right(WRITE))]

    @app.get("/v1/keys/{key:path}", dependencies=reader, tags=["read"])
    def get_key(key: Annotated[str, Path(max_length=512)], max_staleness: Staleness = None):
        """A key's type and whole value (string, hash, set or list)."""
        age = records.age(max_staleness)
        found = records.key(key)
        if found is None:
            raise HTTPException(404, f"no key {key!r}")
        return {"staleness": age, "key": key, "type": found[0], "value": found[1]}

    @app.put("/v1/keys/{key:path}", dependencies=writer, tags=["write"])
    def set_key(
        key: Annotated[str, Path(max_length=512)], body: models.KeyValue
    ) -> models.Recorded:
        """SET a key through the root, fenced and confirmed."""
        return models.Recorded(epoch=records.set_key(key, body.value))

    @app.get("/v1/machines", dependencies=reader, tags=["read"])
    def list_machines(max_staleness: Staleness = None):
        """Every machine's facts and the age of its last report."""
        age = records.age(max_staleness)
        return {"staleness": age, "machines": records.machines()}

    @app.get("/v1/machines/{host}", dependencies=reader, tags=["read"])
    def show_machine(host: Name, max_staleness: Staleness = None):
        """One machine's facts."""
        age = records.age(max_staleness)
        found = records.machine(host)
        if found is None:
            raise HTTPException(404, f"unknown machine {host}: it has never reported")
        return {"staleness": age, "machine": found}

    @app.post("/v1/machines/{host}/report", dependencies=reporter, tags=["phone home"])
    def report_machine(host: Name, facts: models.MachineFacts) -> models.Recorded:
        """Record a machine's facts (replacing its last report)."""
        return models.Recorded(
            epoch=records.machine_report(host, facts.model_dump(exclude_none=True))
        )

    @app.get("/v1/services", dependencies=reader, tags=["read"])
    def list_services(max_staleness: Staleness = None):
        """Every service: its deployed version and the machines running it."""
        age = records.age(max_staleness)
        return {"staleness": age, "services": records.services()}

    @app.get("/v1/services/{name}", dependencies=reader, tags=["read"])
    def show_service(name: Name, max_staleness: Staleness = None):
        """One service and its instance on each machine."""
        age = records.age(max_staleness)
        found = records.service(name)
        if found is None:
            raise HTTPException(404, f"unknown service {name}")
        return {"staleness": age, "service": found}

    @app.post("/v1/services/{name}/started", dependencies=reporter, tags=["phone home"])
    def service_started(name: Name, body: models.ServiceStarted) -> models.Recorded:
        """Record that service NAME started on a machine."""
        return models.Recorded(epoch=records.service_state(name, body.host, RUNNING, body.version))

    @app.post("/v1/services/{name}/stopped", dependencies=reporter, tags=["phone home"])
    def service_stopped(name: Name, body: models.ServiceStopped) -> models.Recorded:
        """Record that service NAME stopped on a machine (400 if never recorded there)."""
        return models.Recorded(epoch=records.service_state(name, body.host, STOPPED, None))

    @app.get("/v1/deploys", dependencies=reader, tags=["read"])
    def list_deploys(
        service: str | None = None,
        machine: str | None = None,
        version: str | None = None,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
        max_staleness: Staleness = None,
    ):
        """The deploy log, newest first (since/until: 2h, 3d or an ISO date)."""
        search = DeploySearch(
            service=service,
            machine=machine,
            version=version,
            since=None if since is None else parse_when(since),
            until=None if until is None else parse_when(until),
            text=q,
        )
        age = records.age(max_staleness)
        return {"staleness": age, "deploys": records.deploys(search, limit)}

    @app.post("/v1/deploys", dependencies=reporter, tags=["phone home"])
    def record_deploy(body: models.DeployRecord):
        """Record a deploy done elsewhere, once it ended; its id and the epoch."""
        outcome = Outcome(-body.signal if body.signal else body.exit_code)
        deploy_id, epoch = records.deploy_record(
            body.service,
            body.version,
            body.targets,
            body.who,
            body.host,
            outcome,
            body.output,
            body.command,
        )
        return {"recorded": True, "epoch": epoch, "id": deploy_id, "outcome": outcome.name}

    @app.get("/v1/errors", dependencies=reader, tags=["read"])
    def list_errors(
        service: str | None = None,
        since: str = "24h",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        max_staleness: Staleness = None,
    ):
        """Errors since ``since`` (30m, 24h, 7d) by service, newest first."""
        start = time.time() - check_span(since)
        age = records.age(max_staleness)
        return {"staleness": age, "errors": records.errors(service, start, limit)}

    @app.post("/v1/errors", dependencies=reporter, tags=["phone home"])
    def report_error(body: models.ErrorReport) -> models.Recorded:
        """Record an error of a service."""
        return models.Recorded(epoch=records.error_report(body.service, body.host, body.message))

    @app.get("/v1/locks", dependencies=reader, tags=["read"])
    def list_locks(max_staleness: Staleness = None):
        """The locks, as mirrored into the dataset."""
        age = records.age(max_staleness)
        return {"staleness": age, "locks": records.locks()}

    @app.get("/v1/settings/{namespace}", dependencies=reader, tags=["read"])
    def read_settings(namespace: Name, max_staleness: Staleness = None):
        """A settings namespace's typed values and its revision."""
        age = records.age(max_staleness)
        found = records.settings(namespace)
        return {
            "staleness": age,
            "namespace": namespace,
            "revision": found.revision,
            "settings": dict(found),
        }

    return app


def _too_many(why: str, wait: float) -> HTTPException:
    return HTTPException(429, f"{why}: retry in {wait:.1f}s", {"Retry-After": str(math.ceil(wait))})


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, {"WWW-Authenticate": "Bearer"})


def _error(
    status: int, why: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """``{"error": why, **extra}`` with ``status``."""
    return JSONResponse({"error": why, **extra}, status_code=status, headers=headers)


def _handle_errors(app: FastAPI) -> None:
    """Every failure as ``{"error": ...}`` (and ``applied`` for a write)."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    async def routing_error(request: Request, exc: Exception) -> JSONResponse:
        return _error(getattr(exc, "status_code", 404), str(getattr(exc, "detail", "")))

    for status in (404, 405):  # the router's own: no such path, or not that method
        app.add_exception_handler(status, routing_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return _error(400, "malformed JSON body")
        shown = "; ".join(
            f"{'.'.join(str(x) for x in p.get('loc', ()))}: {p.get('msg', '')}"
            for p in problems[:5]
        )
        return _error(422, shown or "invalid request")

    @app.exception_handler(ValueError)
    async def refused(request: Request, exc: ValueError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(StaleData)
    async def stale(request: Request, exc: StaleData) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(UnknownNamespace)
    async def unknown(request: Request, exc: UnknownNamespace) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(WriteFailed)
    async def not_written(request: Request, exc: WriteFailed) -> JSONResponse:
        if isinstance(exc, WriteUncertain):
            return _error(504, f"NOT CONFIRMED, may have been recorded: {exc}", applied=None)
        if isinstance(exc, WriteRejected):
            return _error(400, f"rejected, not recorded: {exc}", applied=False)
        return _error(503, f"not recorded: {exc}", applied=False)

    @app.exception_handler(ProdstateError)
    async def unreadable(request: Request, exc: ProdstateError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(redis.RedisError)
    async def no_redis(request: Request, exc: redis.RedisError) -> JSONResponse:
        return _error(503, f"cannot read the local Redis: {exc}")
