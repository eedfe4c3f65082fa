"""Violations listing and replay (SPEC §3.4), in the event-schema dialect.

A rejected event waits in the quarantine with its payload; ``replay``
re-validates it against today's schemas and, if it now passes, stores it
with its original id, source and timestamps. The claim on the violation
commits in the same transaction as the event, so a violation is replayed
at most once, even by two workers at the same moment.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from eventdock.config import Limits
from eventdock.core.errors import FieldError, InvalidInput, NotFound, SchemaViolation
from eventdock.core.events import Draft, Event, format_ms, normalise
from eventdock.dialects import event_schemas_forms as forms
from eventdock.dialects.drf import json_response, page, page_params
from eventdock.dialects.event_schemas import READ, WRITE, route
from eventdock.http.services import services
from eventdock.store import violations as store
from eventdock.store.violations import AlreadyReplayed, ReplayClaim


def violation_out(row: dict[str, Any]) -> dict[str, Any]:
    event = row["event"]
    if event is not None:
        event = {k: v for k, v in event.items() if k in ("id", "name", "timestamp", "received_at", "source", "profile_id", "properties")}
    return {
        "id": row["id"],
        "event_name": row["event_name"],
        "event_id": row["event_id"],
        "action": row["action"],
        "errors": row["errors"],
        "source": row["source"],
        "received_at": format_ms(row["received_at"]),
        "event": event,
        "replayed": row["replayed_at"] is not None,
        "replayed_at": format_ms(row["replayed_at"]) if row["replayed_at"] is not None else None,
    }


@route("/violations", ["GET"], "List quarantined (rejected) and flagged events")
async def list_violations(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    action = request.query_params.get("action") or None
    if action is not None and action not in store.ACTIONS:
        raise InvalidInput(errors=[FieldError(("action",), f'"{action}" is not a valid choice.', action, code="invalid_choice")])
    limit, offset = page_params(request)
    count, rows = await store.list_violations(
        services(request).db, project_id, event=request.query_params.get("event") or None, action=action, limit=limit, offset=offset
    )
    return json_response(page(request, [violation_out(r) for r in rows], count, limit, offset))


@route("/violations/{violation_id}", ["GET"], "Retrieve a violation")
async def get_violation(project_id: str, violation_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    row = await store.get_violation(services(request).db, project_id, violation_id)
    if row is None:
        raise NotFound("Not found.")
    return json_response(violation_out(row))


def _event(project_id: str, payload: dict[str, Any], limits: Limits) -> Event:
    """The quarantined event as it arrived, normalised again like any other
    (its id is the client's: it may have been stored since, by a retry that passed)."""
    draft = Draft(name=payload["name"], properties=payload["properties"], id=payload["id"], timestamp_ms=payload["timestamp_ms"])
    return normalise(draft, project_id=project_id, source=payload["source"], limits=limits, received_at_ms=payload["received_at_ms"])


@route("/violations/{violation_id}/replay", ["POST"], "Re-validate a rejected event and store it if it passes")
async def replay(project_id: str, violation_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    svc = services(request)
    row = await store.get_violation(svc.db, project_id, violation_id)
    if row is None:
        raise NotFound("Not found.")
    if row["action"] != "rejected" or row["event"] is None:
        raise InvalidInput(errors=[FieldError((), "Only rejected events can be replayed; a flagged event is already stored.", code="not_replayable")])
    if row["replayed_at"] is not None:
        raise AlreadyReplayed()
    event = _event(project_id, row["event"], svc.settings.limits)
    governance = svc.pipeline.governance
    await governance.reload(project_id)  # today's schemas, whatever the poll has seen
    verdict = await governance.evaluate([event])
    if verdict.rejected:
        raise SchemaViolation("The event still violates its schema.", errors=verdict.rejected[0])
    await svc.writer.submit(verdict.accepted, [*verdict.records, ReplayClaim(project_id, violation_id)])
    return json_response({"replayed": True, "event_id": event.id})
