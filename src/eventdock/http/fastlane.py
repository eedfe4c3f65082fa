"""The lean lane for the two hottest routes (issue 6).

Profiling single-event ingest showed ~55 % of a worker's time in the stack
*around* the handler — seven middleware layers, FastAPI's route matching
and dependency solving — for handlers that need none of it. ``FastLane``
recognises ``POST /platform/ingest/v1/events`` and
``POST /v1/projects/{projectUuid}/events`` by plain string checks and calls
the very same handler functions directly, rendering errors through the
same dialect renderers and recording the same latency histogram.

Nothing else changes: the FastAPI routes stay registered (they document the
API in ``/openapi.json`` and serve every other method and path), and a
request the lane does not recognise goes down the normal stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from eventdock.core.errors import EventdockError
from eventdock.dialects import cdp, generic_ingest
from eventdock.http import metrics

log = logging.getLogger("eventdock")

GENERIC_PATH = "/platform/ingest/v1/events"
CDP_ROUTE = "/v1/projects/{projectUuid}/events"

Handler = Callable[[Request], Awaitable[Response]]


def match(scope: Scope) -> tuple[str, Handler, Callable[[EventdockError], Response]] | None:
    """The route template, handler and error renderer for a hot request, or None."""
    if scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if path == GENERIC_PATH:
        return GENERIC_PATH, generic_ingest.ingest_events, generic_ingest.render_error
    # /v1/projects/{projectUuid}/events
    if path.startswith("/v1/projects/") and path.endswith("/events"):
        project = path[13:-7]
        if project and "/" not in project:
            scope["path_params"] = {"projectUuid": project}

            async def handler(request: Request) -> Response:
                return await cdp.create_event(project, request)

            return CDP_ROUTE, handler, cdp.render_error
    return None


class _Observed:
    """Latency histogram children, cached by (route, status): labels() is not free."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, int], Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._children.get((route, status))
        if child is None:
            child = self._children[(route, status)] = metrics.REQUEST_LATENCY.labels("POST", route, str(status))
        child.observe(seconds)


_observed = _Observed()


async def serve(app: Any, scope: Scope, receive: Receive, send: Send, hit: tuple[str, Handler, Callable[[EventdockError], Response]]) -> None:
    route, handler, render = hit
    started = time.perf_counter()
    scope["app"] = app
    request = Request(scope, receive)
    try:
        response = await handler(request)
    except EventdockError as exc:
        response = render(exc)
    except Exception:  # noqa: BLE001 - the dialect's 500, never a bare traceback
        log.exception("unhandled error on POST %s", scope["path"])
        response = render(EventdockError("Internal server error."))
    status = response.status_code

    await response(scope, receive, send)
    _observed.observe(route, status, time.perf_counter() - started)



