"""CDP events API (SPEC §4, seed 000).

``POST /v1/projects/{projectUuid}/events`` takes a ``CreateEventRequestDTO``
and answers in the ``ResponseWrapper`` ``{success, data, error}``; every
error under ``/v1/`` uses the same wrapper with a ``CdpErrorResponse``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core.errors import (
    EventdockError,
    FieldError,
    InvalidInput,
    MalformedJSON,
    NotFound,
    RateLimited,
    SchemaViolation,
    Unavailable,
    UnsupportedMediaType,
    retry_after_header,
)
from eventdock.core.events import NUL_MESSAGE, Draft, format_ms, now_ms, parse_time
from eventdock.core.paging import read_cursor, split_page
from eventdock.core.params import int_param
from eventdock.http.body import decode_json, media_type, read_ingest_body
from eventdock.http.services import authorise, services
from eventdock.store import events as event_store
from eventdock.store.query import EventFilter, list_page

router = APIRouter(tags=["CDP events"])

SOURCE = "cdp"
MAX_ID_LENGTH = 256
# The DTO's optional, nullable string fields; each lands in properties under its own name.
OPTIONAL_FIELDS = (
    "tagManagerUUID",
    "uuidLink",
    "uuidPixel",
    "uuidVisitor",
    "customerUUID",
    "softId",
    "email",
    "phone",
    "firstName",
    "lastName",
    "link",
    "fingerprint",
)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "SCHEMA_VIOLATION",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
    500: "INTERNAL_ERROR",
}


# -- envelope ---------------------------------------------------------------


def _field_name(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def render_error(exc: EventdockError) -> Response:
    code = _CODES.get(exc.status, "INTERNAL_ERROR")
    if isinstance(exc, MalformedJSON):
        code = "MALFORMED_JSON"
    elif isinstance(exc, NotFound) and exc.resource == "project":
        code = "PROJECT_NOT_FOUND"
    field_errors = []
    if isinstance(exc, (InvalidInput, SchemaViolation)):
        for e in exc.errors:
            field_errors.append(
                {"field": _field_name(e.path), "message": e.message, "rejectedValue": e.rejected_value if e.has_value else None}
            )
    error = {
        "errorId": str(uuid.uuid4()),
        "code": code,
        "message": exc.message,
        "details": {},
        "fieldErrors": field_errors,
        "timestamp": now_ms(),
        "meta": {},
    }
    headers = {}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = retry_after_header(exc.retry_after)
    return Response(
        _encode({"success": False, "data": None, "error": error}), status_code=exc.status, media_type="application/json", headers=headers
    )


def ok(data: Any) -> Response:
    return Response(_encode({"success": True, "data": data, "error": None}), media_type="application/json")


# -- parsing ----------------------------------------------------------------


def to_draft(body: Any, idempotency_key: str | None) -> Draft:
    """Validate a CreateEventRequestDTO; one field error per bad field."""
    if not isinstance(body, dict):
        raise MalformedJSON("Request body must be a JSON object (CreateEventRequestDTO).")
    errors: list[FieldError] = []
    name = body.get("nameEvent")
    if name is None:
        errors.append(FieldError(("nameEvent",), "must not be null", None))
    elif not isinstance(name, str):
        errors.append(FieldError(("nameEvent",), "must be a string", name))
    elif not name.strip():
        errors.append(FieldError(("nameEvent",), "must not be blank", name))
    properties: dict[str, Any] = {}
    if "attributes" in body:
        attributes = body["attributes"]
        if not isinstance(attributes, dict):
            errors.append(FieldError(("attributes",), "must not be null" if attributes is None else "must be an object of strings", attributes))
        else:
            for key, value in attributes.items():
                if not isinstance(value, str):
                    errors.append(FieldError(("attributes", key), "must be a string", value))
            properties.update(attributes)
    for field in OPTIONAL_FIELDS:
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(FieldError((field,), "must be a string", value))
        elif "\x00" in value:
            # Named here: in properties it would read as an attribute.
            errors.append(FieldError((field,), NUL_MESSAGE, value))
        else:
            properties[field] = value
    if idempotency_key is not None and not idempotency_key.isascii():
        # The server hands header bytes over as latin-1; the key is UTF-8, as
        # every other id (a generic event.id in JSON) is, so the same id is
        # the same event whichever dialect sent it.
        raw = idempotency_key.encode("latin-1")
        try:
            idempotency_key = raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(FieldError(("Idempotency-Key",), "must be UTF-8 text", raw.decode("utf-8", "backslashreplace")))
            idempotency_key = None
    if idempotency_key is not None and (not idempotency_key.strip() or len(idempotency_key) > MAX_ID_LENGTH):
        errors.append(FieldError(("Idempotency-Key",), f"must be 1 to {MAX_ID_LENGTH} non-blank characters", idempotency_key))
    if errors:
        raise InvalidInput("Validation failed.", errors=errors)
    assert isinstance(name, str)
    return Draft(name=name, properties=properties, id=idempotency_key, name_path=("nameEvent",), properties_path=("attributes",))


# -- routes -----------------------------------------------------------------

_DTO = {
    "type": "object",
    "required": ["nameEvent"],
    "properties": {
        "nameEvent": {"type": "string", "minLength": 1, "maxLength": 200},
        **{f: {"type": ["string", "null"]} for f in OPTIONAL_FIELDS},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
WRAPPED = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResponseWrapper"}}}}
ERROR_RESPONSES = {
    code: {"description": text, **WRAPPED}
    for code, text in (
        (400, "VALIDATION_ERROR or MALFORMED_JSON"),
        (401, "UNAUTHORIZED"),
        (403, "FORBIDDEN"),
        (404, "PROJECT_NOT_FOUND"),
        (413, "PAYLOAD_TOO_LARGE"),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        (422, "SCHEMA_VIOLATION"),
        (429, "RATE_LIMITED"),
        (503, "UNAVAILABLE"),
    )
}


@router.post(
    "/v1/projects/{projectUuid}/events",
    summary="POST events",
    description="Creates an event inside the project.",
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _DTO}}}},
    responses={200: {"description": "The stored event.", **WRAPPED}, **ERROR_RESPONSES},
)
async def create_event(projectUuid: str, request: Request) -> Response:  # noqa: N803 - the wire name
    svc = services(request)
    await authorise(request, "events:write", projectUuid)
    kind, params = media_type(request)
    if kind != "application/json" or params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"Content type '{request.headers.get('content-type', '')}' not supported; use application/json.")
    body = await read_ingest_body(request, svc.settings.limits.max_body_bytes, svc.pipeline.ensure_room, svc.reading)
    try:
        parsed = decode_json(body, _decode)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"Malformed JSON request: {exc}") from None
    draft = to_draft(parsed, request.headers.get("idempotency-key"))
    result = await svc.pipeline.ingest(projectUuid, [draft], SOURCE)
    if result.rejected:
        raise SchemaViolation("The event violates its schema and was quarantined.", errors=result.rejected[0])
    event = result.events[0]
    profile_id = event.profile_id
    name, timestamp, received = event.name, event.timestamp_ms, event.received_at_ms
    if not event.stored:
        # An idempotent retry: answer with what was stored the first time.
        original = await event_store.get_event(svc.db, projectUuid, event.id)
        if original is not None:
            profile_id, name = original.profile_id, original.name
            timestamp, received = original.timestamp_ms, original.received_at_ms
    return ok(
        {
            "id": event.id,
            "projectUuid": projectUuid,
            "nameEvent": name,
            "profileId": profile_id,
            "timestamp": format_ms(timestamp),
            "receivedAt": format_ms(received),
        }
    )


def item(e: event_store.StoredEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "projectUuid": e.project_id,
        "nameEvent": e.name,
        "timestamp": format_ms(e.timestamp_ms),
        "receivedAt": format_ms(e.received_at_ms),
        "source": e.source,
        "profileId": e.profile_id,
        "properties": e.properties,
    }


def time_param(request: Request, name: str, errors: list[FieldError]) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_time(raw)
    if value is None:
        errors.append(FieldError((name,), "must be an RFC 3339 date-time or epoch milliseconds", raw))
    return value


def limit_param(request: Request, errors: list[FieldError], default: int = 100, maximum: int = 1000) -> int:
    return int_param(request.query_params.get("limit"), "limit", errors, default=default, minimum=1, maximum=maximum)


@router.get(
    "/v1/projects/{projectUuid}/events",
    summary="List events",
    description="Newest first; `nextCursor` pages on.",
    response_class=Response,
    responses={200: {"description": "`data: {items, nextCursor}`", **WRAPPED}, **ERROR_RESPONSES},
)
async def list_events(
    projectUuid: str,  # noqa: N803
    request: Request,
    nameEvent: str | None = None,  # noqa: N803
    after: str | None = None,
    before: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> Response:
    svc = services(request)
    await authorise(request, "events:read", projectUuid)
    errors: list[FieldError] = []
    after_ms = time_param(request, "after", errors)
    before_ms = time_param(request, "before", errors)
    size = limit_param(request, errors)
    position = read_cursor(cursor, errors)
    if errors:
        raise InvalidInput("Validation failed.", errors=errors)
    f = EventFilter(projectUuid, name=nameEvent or None, after_ms=after_ms, before_ms=before_ms)
    return events_page(await list_page(svc.db, f, cursor=position, limit=size + 1), size)


def events_page(rows: Sequence[event_store.StoredEvent], size: int) -> Response:
    """``data: {items, nextCursor}`` for rows fetched with ``limit=size + 1``."""
    page, next_cursor = split_page(rows, size)
    return ok({"items": [item(r) for r in page], "nextCursor": next_cursor})


@router.get(
    "/v1/projects/{projectUuid}/events/{eventId}",
    summary="Get one event",
    response_class=Response,
    responses={200: {"description": "The event.", **WRAPPED}, **ERROR_RESPONSES},
)
async def get_event(projectUuid: str, eventId: str, request: Request) -> Response:  # noqa: N803
    svc = services(request)
    await authorise(request, "events:read", projectUuid)
    found = await event_store.get_event(svc.db, projectUuid, eventId)
    if found is None:
        raise NotFound(f"Event '{eventId}' not found in this project.", resource="event")
    return ok(item(found))
