"""Event schemas API, PostHog-compatible (SPEC §5, seed 001).

    /api/projects/{project_id}/event_definitions/[{id}/[typescript|python]]
    /api/projects/{project_id}/schema_property_groups/[{id}/]
    /api/projects/{project_id}/event_schemas/[{id}/]
    /api/projects/{project_id}/violations[/{id}/replay]   (event_schemas_violations)

Trailing slash optional everywhere; bodies JSON, form or multipart
(``event_schemas_forms``); errors and pages in DRF's shapes (``drf``).
Every change that alters enforcement tells this worker's governance and
writer at once; other workers learn it from the schema-version poll.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core import typegen
from eventdock.core.errors import FieldError, InvalidInput, NotFound
from eventdock.core.events import format_ms
from eventdock.dialects import event_schemas_forms as forms
from eventdock.dialects.drf import json_response, page, page_params, render_error
from eventdock.http.services import Services, services
from eventdock.store.schema_registry import SchemaRegistry

router = APIRouter(tags=["event schemas (PostHog)"])
READ, WRITE = "event_definition:read", "event_definition:write"
BASE = "/api/projects/{project_id}"

__all__ = ["render_error", "router", "route", "registry", "schemas_changed"]


def route(path: str, methods: list[str], summary: str) -> Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]]:
    """Register ``path/`` (documented) and ``path`` (hidden): the slash is optional."""

    def register(endpoint: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        for method in methods:  # one route per method: OpenAPI operation ids stay unique
            router.add_api_route(BASE + path + "/", endpoint, methods=[method], summary=summary, response_class=Response)
            router.add_api_route(BASE + path, endpoint, methods=[method], include_in_schema=False, response_class=Response)
        return endpoint

    return register


def registry(request: Request) -> SchemaRegistry:
    svc = services(request)
    found = svc.extras.get("schema_registry")
    if found is None:
        found = svc.extras["schema_registry"] = SchemaRegistry(svc.db)
    return found  # type: ignore[no-any-return]


def schemas_changed(svc: Services, project_id: str) -> None:
    """This worker enforces the change at once (others within a poll)."""
    svc.pipeline.governance.invalidate(project_id)
    svc.writer.forget_definitions(project_id)


def _not_found() -> NotFound:
    return NotFound("Not found.")


def _time(ms: int | None) -> str | None:
    return format_ms(ms) if ms is not None else None


# -- renderers ----------------------------------------------------------------


def definition_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "created_at": _time(row["created_at"]),
        "last_seen_at": _time(row["last_seen_at"]),
        "volume": row["volume"],
        "enforcement_mode": row["enforcement_mode"],
        "created_by": row["created_by"],
    }


def group_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "properties": [
            {
                "id": p["id"],
                "name": p["name"],
                "property_type": p["property_type"],
                "is_required": bool(p["is_required"]),
                "is_optional_in_types": bool(p["is_optional_in_types"]),
                "description": p["description"],
                "validation_rules": p["validation_rules"],
                "created_at": _time(p["created_at"]),
                "updated_at": _time(p["updated_at"]),
            }
            for p in row["properties"]
        ],
        "events": row["events"],
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        "created_by": row["created_by"],
    }


def schema_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_definition": row["event_definition_id"],
        "property_group": group_out(row["property_group"]) if row["property_group"] else None,
        "property_group_id": row["property_group_id"],
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        "created_by": row["created_by"],
    }


def _check(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors=errors)


# -- event definitions --------------------------------------------------------


@route("/event_definitions", ["GET"], "List event definitions")
async def list_definitions(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    limit, offset = page_params(request)
    count, rows = await registry(request).list_definitions(project_id, search=request.query_params.get("search") or None, limit=limit, offset=offset)
    return json_response(page(request, [definition_out(r) for r in rows], count, limit, offset))


@route("/event_definitions", ["POST"], "Create a (planned) event definition")
async def create_definition(project_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    principal = await forms.authorise_body(request, WRITE, project_id, body)
    errors: list[FieldError] = []
    limit = services(request).settings.limits.max_name_length
    name = forms.text(body.data, "name", (), errors, required=True, max_length=limit)
    description = forms.text(body.data, "description", (), errors, required=False, max_length=10_000, blank=True) or ""
    mode = forms.choice(body.data, "enforcement_mode", forms.ENFORCEMENT_MODES, (), errors, required=False) or "allow"
    _check(errors)
    assert name is not None
    reg = registry(request)
    new_id = await reg.create_definition(project_id, name=name, description=description, mode=mode, created_by=forms.created_by(principal))
    schemas_changed(services(request), project_id)
    row = await reg.get_definition(project_id, new_id)
    assert row is not None
    return json_response(definition_out(row), 201)


@route("/event_definitions/{definition_id}", ["GET"], "Retrieve an event definition")
async def get_definition(project_id: str, definition_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    row = await registry(request).get_definition(project_id, definition_id)
    if row is None:
        raise _not_found()
    return json_response(definition_out(row))


@route("/event_definitions/{definition_id}", ["PATCH"], "Update an event definition's description or enforcement mode")
async def update_definition(project_id: str, definition_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if "description" in body.data:
        changes["description"] = forms.text(body.data, "description", (), errors, required=False, max_length=10_000, blank=True) or ""
    if "enforcement_mode" in body.data:
        changes["enforcement_mode"] = forms.choice(body.data, "enforcement_mode", forms.ENFORCEMENT_MODES, (), errors, required=True)
    _check(errors)
    reg = registry(request)
    if not await reg.update_definition(project_id, definition_id, changes):
        raise _not_found()
    if "enforcement_mode" in changes:
        schemas_changed(services(request), project_id)
    row = await reg.get_definition(project_id, definition_id)
    if row is None:
        raise _not_found()
    return json_response(definition_out(row))


@route("/event_definitions/{definition_id}", ["DELETE"], "Delete an event definition and its schemas")
async def delete_definition(project_id: str, definition_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_definition(project_id, definition_id):
        raise _not_found()
    schemas_changed(services(request), project_id)
    return Response(status_code=204)


async def _typed_properties(request: Request, project_id: str, definition_id: str) -> tuple[str, list[typegen.TypedProperty]]:
    await forms.authorise_body(request, READ, project_id)
    reg = registry(request)
    row = await reg.get_definition(project_id, definition_id)
    if row is None:
        raise _not_found()
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


# -- property groups ----------------------------------------------------------


def _group_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = forms.text(data, "name", (), errors, required=True, max_length=forms.MAX_NAME)
    if not partial or "description" in data:
        out["description"] = forms.text(data, "description", (), errors, required=False, max_length=10_000, blank=True) or ""
    if not partial or "properties" in data:
        out["properties"] = forms.properties(data.get("properties"), errors)
    _check(errors)
    return out


@route("/schema_property_groups", ["GET"], "List property groups")
async def list_groups(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    limit, offset = page_params(request)
    count, rows = await registry(request).list_groups(project_id, limit=limit, offset=offset)
    return json_response(page(request, [group_out(r) for r in rows], count, limit, offset))


@route("/schema_property_groups", ["POST"], "Create a property group")
async def create_group(project_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    principal = await forms.authorise_body(request, WRITE, project_id, body)
    fields = _group_fields(body.data, partial=False)
    reg = registry(request)
    new_id = await reg.create_group(project_id, created_by=forms.created_by(principal), **fields)
    row = await reg.get_group(project_id, new_id)
    assert row is not None
    return json_response(group_out(row), 201)


@route("/schema_property_groups/{group_id}", ["GET"], "Retrieve a property group")
async def get_group(project_id: str, group_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    row = await registry(request).get_group(project_id, group_id)
    if row is None:
        raise _not_found()
    return json_response(group_out(row))


@route("/schema_property_groups/{group_id}", ["PUT", "PATCH"], "Update a property group (properties replace the list)")
async def update_group(project_id: str, group_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    fields = _group_fields(body.data, partial=request.method == "PATCH")
    reg = registry(request)
    if not await reg.update_group(project_id, group_id, fields):
        raise _not_found()
    if "properties" in fields:
        schemas_changed(services(request), project_id)
    row = await reg.get_group(project_id, group_id)
    if row is None:
        raise _not_found()
    return json_response(group_out(row))


@route("/schema_property_groups/{group_id}", ["DELETE"], "Delete a property group, its properties and schemas")
async def delete_group(project_id: str, group_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_group(project_id, group_id):
        raise _not_found()
    schemas_changed(services(request), project_id)
    return Response(status_code=204)


# -- event schemas ------------------------------------------------------------


@route("/event_schemas", ["GET"], "List event schemas (newest first)")
async def list_schemas(project_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    limit, offset = page_params(request)
    definition = request.query_params.get("event_definition") or None
    count, rows = await registry(request).list_schemas(project_id, definition_id=definition, limit=limit, offset=offset)
    return json_response(page(request, [schema_out(r) for r in rows], count, limit, offset))


@route("/event_schemas", ["POST"], "Attach a property group to an event definition")
async def create_schema(project_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    principal = await forms.authorise_body(request, WRITE, project_id, body)
    errors: list[FieldError] = []
    definition = forms.pk(body.data, "event_definition", errors, required=True)
    group = forms.pk(body.data, "property_group_id", errors, required=True)
    _check(errors)
    assert definition is not None and group is not None
    reg = registry(request)
    new_id = await reg.create_schema(project_id, definition_id=definition, group_id=group, created_by=forms.created_by(principal))
    schemas_changed(services(request), project_id)
    row = await reg.get_schema(project_id, new_id)
    assert row is not None
    return json_response(schema_out(row), 201)


@route("/event_schemas/{schema_id}", ["GET"], "Retrieve an event schema")
async def get_schema(project_id: str, schema_id: str, request: Request) -> Response:
    await forms.authorise_body(request, READ, project_id)
    row = await registry(request).get_schema(project_id, schema_id)
    if row is None:
        raise _not_found()
    return json_response(schema_out(row))


@route("/event_schemas/{schema_id}", ["PUT", "PATCH"], "Update an event schema")
async def update_schema(project_id: str, schema_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    errors: list[FieldError] = []
    required = request.method == "PUT"
    changes: dict[str, Any] = {}
    for key in ("event_definition", "property_group_id"):
        if required or key in body.data:
            value = forms.pk(body.data, key, errors, required=True)
            if value is not None:
                changes[key] = value
    _check(errors)
    reg = registry(request)
    if not await reg.update_schema(project_id, schema_id, changes):
        raise _not_found()
    schemas_changed(services(request), project_id)
    row = await reg.get_schema(project_id, schema_id)
    if row is None:
        raise _not_found()
    return json_response(schema_out(row))


@route("/event_schemas/{schema_id}", ["DELETE"], "Detach a property group from an event definition")
async def delete_schema(project_id: str, schema_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_schema(project_id, schema_id):
        raise _not_found()
    schemas_changed(services(request), project_id)
    return Response(status_code=204)


# The violations routes register on this router too (SPEC §3.4).
from eventdock.dialects import event_schemas_violations as _violations  # noqa: E402,F401
