"""Live events API, Monterosa-compatible JSON:API (SPEC §6, seed 002).

    POST   /api/v2/events                          201 + Location
    GET    /api/v2/events/{id}?include=stats,project
    PATCH  /api/v2/events/{id}                     204 (attributes, action start|stop)
    DELETE /api/v2/events/{id}                     204
    GET    /api/v2/events/{id}/elements            an empty collection (eventdock has no elements)
    GET    /api/v2/projects/{project_id}/events    filter[state], page[count], page[cursor], sort

Responses are ``application/vnd.api+json``; every error is a JSON:API
``errors`` document. The rules of the lifecycle live in ``core.live``; this
module parses, authorises, and renders.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core import live
from eventdock.core.auth import Principal
from eventdock.core.errors import FieldError, InvalidInput, NotFound
from eventdock.core.live import LiveEvent
from eventdock.core.paging import decode_cursor, encode_cursor
from eventdock.core.params import int_param
from eventdock.dialects import live_events_input as parse
from eventdock.dialects import live_events_output as out
from eventdock.dialects import live_events_wire as wire
from eventdock.dialects.live_events_wire import render_error
from eventdock.http.body import read_body
from eventdock.http.services import Services, authorise, services
from eventdock.store.live_events import LiveEventStore

router = APIRouter(tags=["live events (JSON:API)"])

READ = "live_events:read"
WRITE = "live_events:write"
INCLUDES = ("stats", "project")
SORTS = {"start_time": False, "-start_time": True}
__all__ = ["render_error", "router"]


async def _document(request: Request, svc: Services) -> dict[str, Any]:
    return parse.document_data(await read_body(request, svc.settings.limits.max_body_bytes))


# -- helpers -----------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _store(svc: Services) -> LiveEventStore:
    store = svc.extras.get("live_store")
    if store is None:
        store = svc.extras["live_store"] = LiveEventStore(svc.db)
    return store  # type: ignore[no-any-return]


async def _load(svc: Services, principal: Principal, live_id: str, scope: str) -> LiveEvent:
    """The live event, looked up within the key's own project (any project for an admin key)."""
    ev = await _store(svc).get(live_id, principal.project_id)
    if ev is None:
        raise NotFound(f"Event '{live_id}' not found.", resource="event")
    principal.require(scope, ev.project_id)
    return ev


def _includes(request: Request) -> list[str]:
    raw = request.query_params.get("include")
    if raw is None:
        return []
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in INCLUDES]
    if unknown:
        raise InvalidInput(
            f"Unknown include {unknown[0]!r}; supported: {', '.join(INCLUDES)}.",
            errors=[FieldError(("include",), f"{unknown[0]!r} is not a supported relationship (stats, project)", code="parameter")],
        )
    return list(dict.fromkeys(names))


async def _included(svc: Services, events: list[LiveEvent], names: list[str], now: int) -> list[dict[str, Any]]:
    included: list[dict[str, Any]] = []
    if "stats" in names:
        for ev in events:
            start, end = out.stats_window(ev, now)
            included.append(out.stats_resource(ev, await _store(svc).count_events(ev.project_id, start, end)))
    if "project" in names:
        for project_id in dict.fromkeys(ev.project_id for ev in events):
            project = await svc.tenancy.get_project(project_id)
            if project is not None:
                included.append(out.project_resource(project))
    return included


# -- routes ------------------------------------------------------------------------

_JSONAPI = {"content": {out.MEDIA_TYPE: {"schema": {"type": "object"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, **_JSONAPI}
    for code, text in (
        (400, "Bad JSON or query parameter"),
        (401, "No or invalid token"),
        (403, "Missing scope, or another project"),
        (404, "Unknown event or project"),
        (409, "data.type or data.id mismatch"),
        (415, "Unsupported media type"),
        (422, "Invalid attributes, one error per attribute with source.pointer"),
    )
}


@router.post(
    "/api/v2/events",
    summary="Create event",
    description="Create a live event in the project named by `relationships.project`; `action: start` starts a manual event at once.",
    response_class=Response,
    status_code=201,
    responses={201: {"description": "The event; `Location` is its `links.self`.", **_JSONAPI}, **_ERRORS},
)
async def create_event(request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    wire.check_content_type(request)
    await authorise(request, WRITE, None)
    data = await _document(request, svc)
    project_id = parse.project_id_of(data)
    await authorise(request, WRITE, project_id)
    attrs = data["attributes"]
    errors: list[FieldError] = []
    plan = parse.plan_of(attrs, errors)
    action = parse.action_of(attrs, parse.ACTIONS_ON_CREATE, errors)
    if errors or plan is None:
        raise parse.Unprocessable("The event is invalid.", errors=errors)
    clock = live.engine(svc)
    now = clock.now()
    ev = live.create(project_id, plan, now)
    if action == "start":
        ev = live.start(ev, now)
    await _store(svc).insert(ev)
    if action == "start":
        await clock.settle(project_id, ev.id)
    body = out.resource(ev, clock.now(), _base(request))
    return out.document({"data": body}, 201, headers={"Location": body["links"]["self"]})


@router.get(
    "/api/v2/events/{event_id}",
    summary="Get event",
    description="`include=stats,project` adds the stats (`ingested_events`) and the project to `included`.",
    response_class=Response,
    responses={200: {"description": "The event.", **_JSONAPI}, **_ERRORS},
)
async def get_event(event_id: str, request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    principal = await authorise(request, READ, None)
    names = _includes(request)
    ev = await _load(svc, principal, event_id, READ)
    now = live.engine(svc).now()
    body: dict[str, Any] = {"data": out.resource(ev, now, _base(request))}
    if names:
        body["included"] = await _included(svc, [ev], names, now)
    return out.document(body)


@router.patch(
    "/api/v2/events/{event_id}",
    summary="Update event",
    description=(
        "Any attribute may change while the event is `future`; afterwards only `name`, `settings` (replaced key by key; "
        "`values: null` removes a key) and `action` (`start` | `stop`)."
    ),
    response_class=Response,
    status_code=204,
    responses={204: {"description": "Updated."}, **_ERRORS},
)
async def update_event(event_id: str, request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    wire.check_content_type(request)
    principal = await authorise(request, WRITE, None)
    ev = await _load(svc, principal, event_id, WRITE)
    data = await _document(request, svc)
    parse.check_id(data, event_id)
    attrs = data["attributes"]
    relationships = data.get("relationships")
    if isinstance(relationships, dict) and "project" in relationships and parse.project_id_of(data) != ev.project_id:
        raise parse.Unprocessable("An event cannot move to another project.", errors=[FieldError(("data", "relationships", "project"), "can't be changed")])
    clock = live.engine(svc)
    now = clock.now()

    def decide(row: LiveEvent) -> tuple[LiveEvent | None, list[LiveEvent]]:
        errors: list[FieldError] = []
        action = parse.action_of(attrs, parse.ACTIONS_ON_UPDATE, errors)
        changed = row
        if live.state(row, now) == "future" and row.started_written is None:
            if any(name in attrs for name in parse.PLAN_ATTRIBUTES):
                plan = parse.patched_plan(row, attrs, errors)
                if plan is not None and not errors:
                    changed = live.edit_future(row, plan, now)
        else:
            name, settings = parse.running_changes(row, attrs, errors)
            if not errors and (name is not None or settings is not None):
                changed = live.edit_running(row, now, name=name, settings=settings)
        if errors:
            raise parse.Unprocessable("The event is invalid.", errors=errors)
        if action == "start":
            changed = live.start(changed, now)
        elif action == "stop":
            changed = live.stop(changed, now)
        return (changed if changed is not row else None), []

    after = await _store(svc).change(event_id, ev.project_id, decide)
    if after is None:
        raise NotFound(f"Event '{event_id}' not found.", resource="event")
    # A start or stop (or a start moved into the past) owes the stream its
    # system events now, not at the next poll.
    await clock.settle(ev.project_id, event_id)
    return Response(status_code=204)


@router.delete(
    "/api/v2/events/{event_id}",
    summary="Delete event",
    response_class=Response,
    status_code=204,
    responses={204: {"description": "Deleted."}, **_ERRORS},
)
async def delete_event(event_id: str, request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    principal = await authorise(request, WRITE, None)
    ev = await _load(svc, principal, event_id, WRITE)
    if not await _store(svc).delete(event_id, ev.project_id):
        raise NotFound(f"Event '{event_id}' not found.", resource="event")
    return Response(status_code=204)


@router.get(
    "/api/v2/events/{event_id}/elements",
    summary="List event elements",
    description="eventdock has no interactive elements: an existing event answers an empty collection.",
    response_class=Response,
    responses={200: {"description": "An empty collection.", **_JSONAPI}, **_ERRORS},
)
async def list_elements(event_id: str, request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    principal = await authorise(request, READ, None)
    await _load(svc, principal, event_id, READ)
    return out.document({"data": [], "links": {"self": str(request.url)}, "meta": {"count": 0}})


def _page_count(request: Request) -> int:
    errors: list[FieldError] = []
    count = int_param(request.query_params.get("page[count]"), "page[count]", errors, default=20, minimum=1, maximum=100, code="parameter")
    if errors:
        raise InvalidInput("page[count] must be an integer from 1 to 100.", errors=errors)
    return count


def _states(request: Request) -> list[str] | None:
    raw = request.query_params.get("filter[state]")
    if raw is None or not raw.strip():
        return None
    states = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in states if s not in live.STATES]
    if unknown:
        raise InvalidInput(
            f"Unknown state {unknown[0]!r}.",
            errors=[FieldError(("filter[state]",), f"{unknown[0]!r} is not one of {', '.join(live.STATES)}", raw, code="parameter")],
        )
    return states


@router.get(
    "/api/v2/projects/{project_id}/events",
    summary="List events of a project",
    description="`filter[state]=future,current,on_demand,past`, `page[count]` 1–100 (default 20), `page[cursor]`, `sort=start_time|-start_time`.",
    response_class=Response,
    responses={200: {"description": "`{data, links: {self, next}, meta: {count}}`", **_JSONAPI}, **_ERRORS},
)
async def list_events(project_id: str, request: Request) -> Response:
    svc = services(request)
    wire.check_accept(request)
    await authorise(request, READ, project_id)
    sort = request.query_params.get("sort", "start_time")
    if sort not in SORTS:
        raise InvalidInput(f"Unknown sort {sort!r}.", errors=[FieldError(("sort",), "must be start_time or -start_time", sort, code="parameter")])
    count = _page_count(request)
    states = _states(request)
    names = _includes(request)
    cursor = request.query_params.get("page[cursor]")
    after = None
    if cursor:
        try:
            after = decode_cursor(cursor, "page[cursor]")
        except InvalidInput:
            raise InvalidInput("page[cursor] is not a cursor this server gave.", errors=[FieldError(("page[cursor]",), "is invalid", cursor, code="parameter")]) from None
    now = live.engine(svc).now()
    rows, total = await _store(svc).page(project_id, now=now, states=states, descending=SORTS[sort], after=after, limit=count + 1)
    more = len(rows) > count
    rows = rows[:count]
    next_url = None
    if more and rows:
        next_url = str(request.url.include_query_params(**{"page[cursor]": encode_cursor(rows[-1].start_at, rows[-1].id)}))
    base = _base(request)
    body: dict[str, Any] = {
        "data": [out.resource(ev, now, base) for ev in rows],
        "links": {"self": str(request.url), "next": next_url},
        "meta": {"count": total},
    }
    if names:
        body["included"] = await _included(svc, rows, names, now)
    return out.document(body)
