"""Event definitions in the event-schema dialect (SPEC §3.3, §5).

    event_definitions/                    list (PostHog's filters and order), create (planned)
    event_definitions/by_name/?name=      one by name
    event_definitions/typescript|python/  the project's typed SDK wrapper (JSON)
    event_definitions/{id}/               retrieve, update, delete
    event_definitions/{id}/typescript|python   one event's property types (text)

The fixed paths register before ``{id}``, so ``typescript`` is never an id.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from eventdock.core import typegen, typegen_project
from eventdock.core.errors import FieldError, InvalidInput
from eventdock.dialects import event_schemas_forms as forms
from eventdock.dialects.drf import json_response, page, page_params
from eventdock.dialects.event_schemas import READ, WRITE, check_fields, definition_out, not_found, registry, route, schemas_changed
from eventdock.http.services import services

# PostHog's EventDefinitionType; eventdock has no actions, so action_event lists nothing.
EVENT_TYPES = ("all", "event", "action_event", "event_posthog", "event_custom")
# PostHog's ordering fields (``-`` for descending), and eventdock's own volume.
ORDERING_FIELDS = ("name", "last_seen_at", "last_seen_at::date", "volume")


def _ordering(values: list[str]) -> list[tuple[str, bool]]:
    """Unknown fields are ignored, as PostHog ignores them."""
    out = []
    for value in values:
        field = value.lstrip("-")
        if field in ORDERING_FIELDS:
            out.append((field, value.startswith("-")))
    return out


@route("/event_definitions", ["GET"], "List event definitions")
async def list_definitions(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    query = request.query_params
    event_type = query.get("event_type") or "event"
    if event_type not in EVENT_TYPES:
        raise InvalidInput(errors=[FieldError(("event_type",), f'"{event_type}" is not a valid choice.', event_type, code="invalid_choice")])
    limit, offset = page_params(request)
    count, rows = await registry(request).list_definitions(
        project_id,
        words=(query.get("search") or "").split(),
        names=[n for n in query.getlist("names") if n],
        event_type=event_type,
        ordering=_ordering(query.getlist("ordering")),
        limit=limit,
        offset=offset,
    )
    return json_response(page(request, [definition_out(r) for r in rows], count, limit, offset))


@route("/event_definitions", ["POST"], "Create a (planned) event definition")
async def create_definition(project_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    principal = await forms.authorise_body(request, WRITE, project_id, body)
    errors: list[FieldError] = []
    limit = services(request).settings.limits.max_name_length
    name = forms.text(body.data, "name", (), errors, required=True, max_length=limit)
    description = forms.text(body.data, "description", (), errors, required=False, max_length=10_000, blank=True, allow_null=True) or ""
    mode = forms.choice(body.data, "enforcement_mode", forms.ENFORCEMENT_MODES, (), errors, required=False) or "allow"
    check_fields(errors)
    assert name is not None
    reg = registry(request)
    new_id = await reg.create_definition(project_id, name=name, description=description, mode=mode, created_by=forms.created_by(principal))
    schemas_changed(services(request), project_id)
    row = await reg.get_definition(project_id, new_id)
    assert row is not None
    return json_response(definition_out(row), 201)


@route("/event_definitions/by_name", ["GET"], "Retrieve an event definition by its name")
async def definition_by_name(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    name = request.query_params.get("name")
    if not name:
        raise InvalidInput(errors=[FieldError(("name",), "This field is required.", code="required")])
    row = await registry(request).definition_by_name(project_id, name)
    if row is None:
        raise not_found()
    return json_response(definition_out(row))


async def _project_types(request: Request, project_id: str, language: str) -> Response:
    await forms.authorise_body(request, READ, project_id)
    events = [
        typegen_project.EventTypes(
            name,
            tuple(typegen.TypedProperty(p["name"], p["property_type"], bool(p["is_required"]), bool(p["is_optional_in_types"]), p["description"]) for p in props),
        )
        for name, props in await registry(request).typed_events(project_id)
        if typegen_project.included(name)
    ]
    return json_response(typegen_project.generated(language, events))


@route("/event_definitions/typescript", ["GET"], "TypeScript module typing posthog-js capture for every event of the project")
async def project_typescript(project_id: str, request: Request) -> Response:
    return await _project_types(request, project_id, "TypeScript")


@route("/event_definitions/python", ["GET"], "Python module: a Posthog client with a typed capture method per event")
async def project_python(project_id: str, request: Request) -> Response:
    return await _project_types(request, project_id, "Python")


@route("/event_definitions/{definition_id}", ["GET"], "Retrieve an event definition")
async def get_definition(project_id: str, definition_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    row = await registry(request).get_definition(project_id, definition_id)
    if row is None:
        raise not_found()
    return json_response(definition_out(row))


@route("/event_definitions/{definition_id}", ["PATCH"], "Update an event definition's description or enforcement mode")
async def update_definition(project_id: str, definition_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    reg = registry(request)
    if await reg.get_definition(project_id, definition_id) is None:
        raise not_found()  # DRF looks the object up before it validates the body
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if "description" in body.data:
        changes["description"] = forms.text(body.data, "description", (), errors, required=False, max_length=10_000, blank=True, allow_null=True) or ""
    if "enforcement_mode" in body.data:
        changes["enforcement_mode"] = forms.choice(body.data, "enforcement_mode", forms.ENFORCEMENT_MODES, (), errors, required=True)
    check_fields(errors)
    if not await reg.update_definition(project_id, definition_id, changes):
        raise not_found()
    if "enforcement_mode" in changes:
        schemas_changed(services(request), project_id)
    row = await reg.get_definition(project_id, definition_id)
    if row is None:
        raise not_found()
    return json_response(definition_out(row))


@route("/event_definitions/{definition_id}", ["DELETE"], "Delete an event definition and its schemas")
async def delete_definition(project_id: str, definition_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_definition(project_id, definition_id):
        raise not_found()
    schemas_changed(services(request), project_id)
    return Response(status_code=204)


async def _typed_properties(request: Request, project_id: str, definition_id: str) -> tuple[str, list[typegen.TypedProperty]]:
    await forms.authorise_body(request, READ, project_id)
    reg = registry(request)
    row = await reg.get_definition(project_id, definition_id)
    if row is None:
        raise not_found()
    _, schemas = await reg.list_schemas(project_id, definition_id=definition_id, limit=10_000, offset=0)
    props = [
        typegen.TypedProperty(p["name"], p["property_type"], bool(p["is_required"]), bool(p["is_optional_in_types"]), p["description"])
        for s in schemas
        if s["property_group"]
        for p in s["property_group"]["properties"]
    ]
    return row["name"], props


@route("/event_definitions/{definition_id}/typescript", ["GET"], "TypeScript type definitions for the event's properties")
async def definition_typescript(project_id: str, definition_id: str, request: Request) -> Response:
    name, props = await _typed_properties(request, project_id, definition_id)
    return Response(typegen.typescript(name, props), media_type="text/plain; charset=utf-8")


@route("/event_definitions/{definition_id}/python", ["GET"], "Python TypedDict for the event's properties")
async def definition_python(project_id: str, definition_id: str, request: Request) -> Response:
    name, props = await _typed_properties(request, project_id, definition_id)
    return Response(typegen.python(name, props), media_type="text/plain; charset=utf-8")
