"""The one app factory, used by the CLI, the tests and the benchmark.

``create_app(settings)`` wires the store, the pipeline and the dialects;
start-up (migrations, the writer task, background jobs) runs in the ASGI
lifespan, so every worker process of the server builds its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventdock import __version__
from eventdock.config import Settings
from eventdock.core import live
from eventdock.core.auth import Authenticator
from eventdock.core.errors import (
    EventdockError,
    FieldError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    StoreUnavailable,
)
from eventdock.core.events import NUL_MESSAGE
from eventdock.core.pipeline import IngestResult, Pipeline
from eventdock.core.ratelimit import RateLimiter
from eventdock.core.suppression import Suppressions
from eventdock.dialects import (
    cdp,
    cdp_lifecycle,
    cdp_profiles,
    drf,
    event_schemas,
    generic_ingest,
    live_events,
    query,
)
from eventdock.http import admin, apidocs, console, fastlane, metrics, ops
from eventdock.http.body import ReadingBudget
from eventdock.http.services import Services
from eventdock.store import key_revocations, lifecycle, profiles, query_tail, schemas, violations
from eventdock.store.database import Database
from eventdock.store.tenancy import Tenancy
from eventdock.store.writer import GroupCommitWriter

log = logging.getLogger("eventdock")

# Which dialect renders an error, by path prefix (first match wins).
ERROR_RENDERERS: list[tuple[str, Callable[[EventdockError], Response]]] = [
    ("/v1/", cdp.render_error),
    ("/platform/", generic_ingest.render_error),
    ("/api/v2/", live_events.render_error),
    ("/api/", event_schemas.render_error),
]


def render_error(path: str, exc: EventdockError) -> Response:
    for prefix, render in ERROR_RENDERERS:
        if path.startswith(prefix):
            return render(exc)
    return drf.render_error(exc)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, sqlite_max_bytes=settings.sqlite_max_bytes)
    tenancy = Tenancy(db)
    writer = GroupCommitWriter(
        db,
        settings.writer,
        before_insert=[profiles.resolve_profiles],
        after_insert=[violations.record_violations],
        on_batch=metrics.observe_batch,
    )
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst, share=int(os.environ.get("EVENTDOCK_WORKERS", "1")))
    pipeline = Pipeline(committer=writer, limits=settings.limits, rate_limiter=limiter, governance=schemas.governance(db, writer), on_ingest=_count_ingest, on_reject=_count_rejected, suppressions=Suppressions())
    return Services(
        settings=settings,
        db=db,
        tenancy=tenancy,
        authenticator=Authenticator(tenancy.key_by_hash, ttl=settings.key_cache_seconds),
        writer=writer,
        pipeline=pipeline,
        rate_limiter=limiter,
        reading=ReadingBudget(settings.writer.max_reading_bytes),
    )


_ingested_counters: dict[tuple[str, str], Any] = {}


def _count_ingest(project_id: str, source: str, result: IngestResult) -> None:
    stored = result.stored
    if stored:
        counter = _ingested_counters.get((project_id, source))
        if counter is None:  # labels() locks and hashes: once per (project, source), not per request
            counter = _ingested_counters[(project_id, source)] = metrics.EVENTS_INGESTED.labels(project_id, source)
        counter.inc(stored)
    if result.quarantined:
        _count_rejected(project_id, source, "schema", result.quarantined)


def _count_rejected(project_id: str, source: str, reason: str, count: int) -> None:
    metrics.EVENTS_REJECTED.labels(project_id, source, reason).inc(count)


async def _every(seconds: float, job: Callable[[], Any], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except StoreUnavailable:
            pass  # the store says so in the log, once per outage
        except Exception:  # noqa: BLE001 - a background job logs and goes on
            log.exception("background job %s failed", name)


def nul_in_request(scope: Scope) -> EventdockError | None:
    """A NUL character in the path or the query string, as the error to answer.

    Nothing stored can hold U+0000 (PostgreSQL text cannot), so a path that
    holds one names nothing (404) and a query parameter holding one is
    invalid (400). Checked once here, before any route reaches the database.
    """
    if "\x00" in scope["path"]:
        return NotFound("Not found.")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return InvalidInput(errors=[FieldError((name.replace("\x00", "\\u0000"),), NUL_MESSAGE, code="invalid")])
    return None


class EventdockApp(FastAPI):
    """FastAPI, with the two hottest routes served by ``http.fastlane``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = nul_in_request(scope)
            if refused is not None:
                await render_error(scope["path"], refused)(scope, receive, send)
                return
            hit = fastlane.match(scope)
            if hit is not None:
                await fastlane.serve(self, scope, receive, send, hit)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    svc = build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await asyncio.to_thread(svc.db.migrate)
        svc.writer.start()
        await svc.writer.opened()
        jobs = [asyncio.create_task(_every(1.0, svc.writer.flush_usage, "usage"), name="eventdock-usage")]
        for starter in STARTUP_HOOKS:
            jobs.extend(await starter(svc))
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await svc.writer.stop()  # commits what is queued and writes the usage counters
            with contextlib.suppress(Exception):
                await svc.writer.flush_usage()  # only if stop() could not write them
            await svc.db.dispose()

    app = EventdockApp(
        title="eventdock",
        version=__version__,
        description="Self-hosted event platform: CDP events, PostHog event schemas, Monterosa live events and OpenPipeline generic ingest.",
        lifespan=lifespan,
        docs_url=None,  # apidocs serves both pages from the package, not a CDN
        redoc_url=None,
    )
    app.state.services = svc
    app.add_middleware(RouteMetricsMiddleware)

    async def eventdock_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EventdockError)
        return render_error(request.url.path, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            mapped: EventdockError = NotFound("Not found.")
        elif exc.status_code == 405:
            mapped = MethodNotAllowed(f'Method "{request.method}" not allowed.')
        else:
            mapped = EventdockError(str(exc.detail))
            mapped.status = exc.status_code
        return render_error(request.url.path, mapped)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [FieldError(tuple(str(p) for p in e.get("loc", ())[1:]), e.get("msg", "invalid")) for e in exc.errors()]
        return render_error(request.url.path, InvalidInput(errors=errors))

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(request.url.path, EventdockError("Internal server error."))

    app.add_exception_handler(EventdockError, eventdock_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)

    for router in ROUTERS:
        app.include_router(router)
    apidocs.install(app)
    console.install(app)
    _document_envelopes(app)
    return app


# Feature modules append here: routers, and start-up hooks that return the
# background tasks they started (cancelled at shutdown).
ROUTERS = [
    ops.router,
    admin.router,
    cdp.router,
    cdp_profiles.router,
    cdp_lifecycle.router,
    generic_ingest.router,
    event_schemas.router,
    live_events.router,
    query.router,
]


async def _start_lifecycle(svc: Services) -> list[asyncio.Task[None]]:
    return await lifecycle.start(svc, observer=metrics.LifecycleMetrics())


STARTUP_HOOKS: list[Callable[[Services], Any]] = [
    live.start_clock,
    query_tail.start_live_tail,
    schemas.start_schema_poll,
    key_revocations.start,
    _start_lifecycle,
]


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` in each worker process."""
    settings = Settings.from_env()
    app = create_app(settings)
    tune_gc(settings.gc_gen0_threshold)
    return app


def tune_gc(gen0_threshold: int) -> None:
    """The garbage collector of a server worker (issue 6).

    A request allocates container objects by the thousand (a 500-event
    batch: a dict, a Draft and an Event per event, and more). With CPython's
    default of a young collection every 700 allocations, the objects of
    requests still in flight are scanned, survive into the older generations
    and make the full collections long. With 50,000 most of them are freed
    by reference counting before any collection sees them: the bench's
    batches got 40-65 % faster and the single-event p99 several times lower
    (bench/PROFILE.md, "admission under overload, and the garbage collector").

    ``gc.freeze()`` then moves what start-up built (modules, the app and its
    routes: ~97,000 tracked objects) out of every future collection; a full
    collection walking them took ~79 ms here, frozen ~0. Process-wide, so
    only the server's entry point calls this, not ``create_app``.
    """
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
    gc.freeze()


class RouteMetricsMiddleware:
    """Request latency by route template (not raw path: bounded label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.REQUEST_LATENCY.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


def _document_envelopes(app: FastAPI) -> None:
    """Add the dialects' error envelopes to the OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ResponseWrapper"] = {
            "type": "object",
            "required": ["success"],
            "properties": {
                "success": {"type": "boolean"},
                "data": {},
                "error": {
                    "type": ["object", "null"],
                    "properties": {
                        "errorId": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                        "fieldErrors": {"type": "array", "items": {"type": "object"}},
                        "timestamp": {"type": "integer"},
                        "meta": {"type": "object"},
                    },
                },
            },
        }
        components["OpenPipelineError"] = {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "details": {"type": "object"}},
                }
            },
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
