"""Generic ingest, Dynatrace OpenPipeline-compatible (SPEC §7, seed 003).

``POST /platform/ingest/v1/events`` takes one JSON object, an array of
objects, or NDJSON; answers 202 with no body once every event is stored,
deduplicated or quarantined (``X-Eventdock-Quarantined`` and
``X-Eventdock-Duplicates`` count the last two); and refuses the whole
request with a ``constraintViolation`` document naming each bad path
otherwise.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core.errors import (
    EventdockError,
    EventTooLarge,
    FieldError,
    InvalidInput,
    MalformedJSON,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UnsupportedMediaType,
    retry_after_header,
)
from eventdock.core.events import Draft, new_event_id, parse_time
from eventdock.core.pipeline import Pipeline
from eventdock.http.body import decode_json, media_type, read_ingest_body
from eventdock.http.services import authorise, services

router = APIRouter(tags=["generic ingest (OpenPipeline)"])

SOURCE = "ingest"
MAX_ID_LENGTH = 256
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


# -- errors -----------------------------------------------------------------


def format_path(path: tuple[str | int, ...]) -> str:
    """``(3, "event.id")`` → ``[3].event.id`` (keys may contain dots)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def render_error(exc: EventdockError) -> Response:
    error: dict[str, Any] = {"code": exc.status, "message": exc.message}
    headers = {}
    if isinstance(exc, InvalidInput):
        error["message"] = "The input is invalid." if exc.errors else exc.message
        violations = [
            {"path": format_path(e.path), "message": e.message, "parameterLocation": "PAYLOAD_BODY"} for e in exc.errors
        ] or [{"path": "", "message": exc.message, "parameterLocation": "PAYLOAD_BODY"}]
        error["details"] = {"type": "constraintViolation", "constraintViolations": violations}
    elif isinstance(exc, PermissionDenied) and exc.missing_scope:
        error["details"] = {"missingScopes": ["openpipeline.events"]}
    elif isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = retry_after_header(exc.retry_after)
    return Response(_encode({"error": error}), status_code=exc.status, media_type="application/json", headers=headers)


# -- parsing ----------------------------------------------------------------


def _parse_body(body: bytes, ndjson: bool) -> list[Any]:
    if ndjson:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(decode_json(line, _decode))
                except msgspec.DecodeError as exc:
                    raise MalformedJSON(f"Malformed JSON on line {number}: {exc}") from None
        if not items:
            raise InvalidInput(errors=[FieldError((), "the request contains no events")])
        return items
    try:
        parsed = decode_json(body, _decode)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"Malformed JSON: {exc}") from None
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        if not parsed:
            raise InvalidInput(errors=[FieldError((), "the array of events must not be empty")])
        return parsed
    raise InvalidInput(errors=[FieldError((), "the body must be an event object or an array of event objects")])


def to_draft(index: int, item: Any, errors: list[FieldError]) -> Draft | None:
    """One element of the request as a draft; problems are appended to ``errors``."""
    if not isinstance(item, dict):
        errors.append(FieldError((index,), "must be a JSON object"))
        return None
    event_id: str | None = None
    raw_id = item.get("event.id")
    if raw_id is not None:
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            errors.append(FieldError((index, "event.id"), "must be a string or an integer", raw_id))
            return None
        event_id = str(raw_id)
        if not event_id.strip():
            errors.append(FieldError((index, "event.id"), "must not be blank", raw_id))
            return None
        if len(event_id) > MAX_ID_LENGTH:
            errors.append(FieldError((index, "event.id"), f"must be at most {MAX_ID_LENGTH} characters"))
            return None
    name, name_key = _name_of(item)
    # The parsed object is ours: it becomes the properties as it is.
    timestamp = parse_time(item.pop("timestamp")) if "timestamp" in item else None
    generated = event_id is None
    if generated:
        # "else generated and added": the id is part of the stored event.
        event_id = item["event.id"] = new_event_id()
    return Draft(
        name=name,
        properties=item,
        id=event_id,
        generated_id=generated,
        timestamp_ms=timestamp,
        name_path=(index, name_key),
        properties_path=(index,),
    )


def _name_of(item: dict[str, Any]) -> tuple[str, str]:
    for key in ("event.name", "event.type"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value, key
    return "event", "event.name"


# -- the route --------------------------------------------------------------

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "additionalProperties": True},
                        {"type": "array", "minItems": 1, "items": {"type": "object", "additionalProperties": True}},
                    ]
                },
                "example": [{"event.id": 1, "additionalProp1": "bar"}, {"event.id": 2, "additionalProp1": 123.45}],
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
_ERROR_DOC = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenPipelineError"}}}}


@router.post(
    "/platform/ingest/v1/events",
    status_code=202,
    summary="Ingest generic events",
    openapi_extra=_BODY_DOC,
    response_class=Response,
    responses={
        202: {
            "description": "Accepted. Response doesn't have a body.",
            "headers": {
                "X-Eventdock-Quarantined": {"description": "Events quarantined by a reject-mode schema.", "schema": {"type": "integer"}},
                "X-Eventdock-Duplicates": {
                    "description": "Events not stored again because their id was already stored (a retry, or a repeat within the request).",
                    "schema": {"type": "integer"},
                },
            },
        },
        **{code: {"description": text, **_ERROR_DOC} for code, text in (
            (400, "Failed. The input is invalid."),
            (401, "Missing or invalid token."),
            (403, "The token lacks the openpipeline.events scope."),
            (404, "Failed. Endpoint not found."),
            (413, "Failed. Content too large."),
            (415, "Unsupported media type."),
            (429, "Failed. Too many requests."),
            (503, "Server-side error."),
        )},
    },
)
async def ingest_events(request: Request) -> Response:
    svc = services(request)
    principal = await authorise(request, "events:write", None)
    if principal.project_id is None:
        raise PermissionDenied("Generic ingest needs a key bound to a project; its project receives the events.")
    principal.require("events:write", principal.project_id)
    kind, params = media_type(request)
    if kind not in ("application/json", "application/x-ndjson") or params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("Use Content-Type application/json (or application/x-ndjson) with UTF-8.")
    body = await read_ingest_body(request, svc.settings.limits.max_body_bytes, svc.pipeline.ensure_room, svc.reading)
    drafts = _drafts(body, kind == "application/x-ndjson", svc.pipeline, principal.project_id)
    del body  # not held while the events wait for their commit
    result = await svc.pipeline.ingest(principal.project_id, drafts, SOURCE)
    return Response(status_code=202, headers={"X-Eventdock-Quarantined": str(result.quarantined), "X-Eventdock-Duplicates": str(result.duplicates)})


def _drafts(body: bytes, ndjson: bool, pipeline: Pipeline, project_id: str) -> list[Draft]:
    """The request's events as drafts, or ``InvalidInput`` naming every bad one.

    The parsed list stays in this frame: while the request waits for its
    commit, it holds only what ``Pipeline.ingest`` keeps.
    """
    items = _parse_body(body, ndjson=ndjson)
    pipeline.check_count(len(items))  # before any per-event work
    errors: list[FieldError] = []
    drafts = [d for i, item in enumerate(items) if (d := to_draft(i, item, errors)) is not None]
    if errors:
        # Name every bad path at once: the limit checks of the other events too.
        try:
            pipeline.normalise(project_id, drafts, SOURCE)
        except EventTooLarge as exc:
            errors.extend(exc.errors)
        errors.sort(key=lambda e: e.path[0] if e.path and isinstance(e.path[0], int) else -1)
        raise InvalidInput(errors=errors)
    return drafts
