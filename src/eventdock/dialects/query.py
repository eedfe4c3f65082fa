"""Query, trend, live tail and export (SPEC §8), scope ``events:read``.

Under ``/api/`` errors are DRF-style (``{"type", "code", "detail", "attr"}``,
rendered by the app for this prefix). Listings are keyset pages newest first
(``next`` is an absolute URL carrying an opaque cursor); exports are NDJSON,
oldest first, streamed page by page; the live tail is Server-Sent Events fed
by ``store.query_tail``.

Both streams are run up to their first chunk before the response starts
(``_started``), so a database that cannot be reached is answered with the
DRF 503 and ``Retry-After`` like any other route. Once streaming began, the
status is sent: the live tail then ends with an ``unavailable`` event (an
EventSource reconnects by itself), and an export ends without its last
chunk, so the client sees an incomplete body rather than a complete-looking
file that lacks events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from eventdock.core.errors import FieldError, InvalidInput, StoreUnavailable, Unavailable
from eventdock.core.events import format_ms, now_ms, parse_time, public
from eventdock.core.paging import read_cursor, split_page
from eventdock.core.params import int_param
from eventdock.dialects.drf import json_response
from eventdock.http.services import authorise, services
from eventdock.store.query import (
    INTERVALS_MS,
    EventFilter,
    iter_oldest_first,
    list_page,
    profile_family,
    trend,
)
from eventdock.store.query_tail import LiveTail

router = APIRouter(tags=["query"])

SCOPE = "events:read"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BUCKETS = 10_000
# Without ``after``, a trend covers this many buckets before ``before``.
DEFAULT_SPAN = {"minute": 60, "hour": 24, "day": 30}
HEARTBEAT_SECONDS = 15.0
_encode = msgspec.json.Encoder().encode


def _time(request: Request, name: str, errors: list[FieldError]) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_time(raw)
    if value is None:
        errors.append(FieldError((name,), f"'{name}' must be an RFC 3339 date-time or a unix timestamp.", raw))
    return value


async def _filter(request: Request, project_id: str, errors: list[FieldError]) -> EventFilter:
    after = _time(request, "after", errors)
    before = _time(request, "before", errors)
    if after is not None and before is not None and after >= before:
        errors.append(FieldError(("before",), "'before' must be later than 'after'.", request.query_params.get("before")))
    name = request.query_params.get("event") or None
    profile_ids = None
    raw_profile = request.query_params.get("profile_id")
    if raw_profile:
        profile_ids = await profile_family(services(request).db, project_id, raw_profile)
    return EventFilter(project_id, name=name, after_ms=after, before_ms=before, profile_ids=profile_ids)


def _raise(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors[0].message, errors=errors)


async def _started(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream``, already run up to its first chunk: what fails before any
    byte is sent (the database) raises here, while an error status can still
    be answered."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""

    async def chained() -> AsyncIterator[bytes]:
        yield first
        async for chunk in stream:
            yield chunk

    return chained()


class ExportResponse(StreamingResponse):
    """Starlette's stream, except that the database going away mid-way ends
    it without the terminating chunk: an export cut short must not look
    complete (curl exits 18, httpx raises ``RemoteProtocolError``)."""

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except StoreUnavailable:
            return  # the store has logged the outage; the server closes the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.get(
    "/api/projects/{project_id}/events",
    summary="List events",
    description="Newest first. Filters: `event` (name), `after` (inclusive), `before` (exclusive), `profile_id` "
    "(includes profiles merged into it). `limit` 1–1000 (default 100); follow `next` for the following page.",
)
async def list_events(
    project_id: str,
    request: Request,
    event: str | None = None,
    after: str | None = None,
    before: str | None = None,
    profile_id: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> Response:
    await authorise(request, SCOPE, project_id)
    errors: list[FieldError] = []
    size = int_param(limit, "limit", errors, default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT, message=f"'limit' must be an integer from 1 to {MAX_LIMIT}.")
    position = read_cursor(cursor, errors, "Invalid cursor.")
    f = await _filter(request, project_id, errors)
    _raise(errors)
    page, next_cursor = split_page(await list_page(services(request).db, f, cursor=position, limit=size + 1), size)
    next_url = str(request.url.include_query_params(cursor=next_cursor, limit=size)) if next_cursor else None
    return json_response({"results": [public(r) for r in page], "next": next_url})


@router.get(
    "/api/projects/{project_id}/events/trend",
    summary="Event counts per time bucket",
    description="`interval` minute|hour|day (default day); buckets aligned to UTC from the one holding `after` "
    f"up to `before` (exclusive, default now), empty ones included; at most {MAX_BUCKETS} buckets. "
    "Without `after`: 60 minutes, 24 hours or 30 days before `before`.",
)
async def event_trend(
    project_id: str,
    request: Request,
    event: str | None = None,
    interval: str = "day",
    after: str | None = None,
    before: str | None = None,
) -> Response:
    await authorise(request, SCOPE, project_id)
    errors: list[FieldError] = []
    width = INTERVALS_MS.get(interval)
    if width is None:
        errors.append(FieldError(("interval",), f"'{interval}' is not a valid choice: use minute, hour or day.", interval, code="invalid_choice"))
        width = INTERVALS_MS["day"]
    f = await _filter(request, project_id, errors)
    _raise(errors)
    before_ms = f.before_ms if f.before_ms is not None else now_ms()
    after_ms = f.after_ms if f.after_ms is not None else before_ms - DEFAULT_SPAN.get(interval, 30) * width
    origin = after_ms - after_ms % width  # floor, also for times before 1970
    buckets = max(0, -(-(before_ms - origin) // width))
    if buckets > MAX_BUCKETS:
        _raise([FieldError(("interval",), f"{buckets} buckets requested; at most {MAX_BUCKETS}: use a wider interval or a shorter range.", interval)])
    bounded = EventFilter(project_id, name=f.name, after_ms=origin, before_ms=before_ms, profile_ids=f.profile_ids)
    counts = await trend(services(request).db, bounded, interval_ms=width, origin_ms=origin, buckets=buckets)
    return json_response({"series": [{"bucket": format_ms(origin + i * width), "count": n} for i, n in enumerate(counts)]})


@router.get(
    "/api/projects/{project_id}/events/stream",
    summary="Live tail (Server-Sent Events)",
    description="One `data:` line (JSON, the listing shape) per event as it is committed, from any worker; "
    "optional `event` filter. A comment line `: connected` says the subscription is live. A subscriber too slow "
    "to keep up receives `event: overflow` and the stream ends (reconnect).",
    response_class=StreamingResponse,
)
async def event_stream(project_id: str, request: Request, event: str | None = None) -> Response:
    await authorise(request, SCOPE, project_id)
    tail = services(request).extras.get("live_tail")
    if not isinstance(tail, LiveTail):
        raise Unavailable("The live tail is not running.")
    name = event or None

    async def frames() -> AsyncIterator[bytes]:
        async with tail.subscribe(project_id, name) as sub:
            yield b": connected\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(sub.queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield data
                if sub.closed and sub.queue.empty():
                    return

    return StreamingResponse(
        await _started(frames()), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get(
    "/api/projects/{project_id}/events/export",
    summary="Export events as NDJSON",
    description="One event per line (the listing shape), oldest first, streamed in pages. Filters `after`, `before`, `event`.",
    response_class=StreamingResponse,
)
async def export_events(
    project_id: str, request: Request, event: str | None = None, after: str | None = None, before: str | None = None
) -> Response:
    await authorise(request, SCOPE, project_id)
    errors: list[FieldError] = []
    f = await _filter(request, project_id, errors)
    _raise(errors)
    db = services(request).db

    async def lines() -> AsyncIterator[bytes]:
        async for rows in iter_oldest_first(db, f):
            yield b"".join(_encode(public(r)) + b"\n" for r in rows)

    stamp = format_ms(now_ms()).replace(":", "").replace(".", "")
    return ExportResponse(
        await _started(lines()),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="events-{project_id}-{stamp}.ndjson"'},
    )

