"""Event schemas API, PostHog-compatible (SPEC §5, seed 001).

    /api/projects/{project_id}/event_definitions/...      (event_schemas_definitions)
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


def not_found() -> NotFound:
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
        "created_by": forms.user_basic(row["created_by"]),
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
        "created_by": forms.user_basic(row["created_by"]),
    }


def schema_out(row: dict[str, Any]) -> dict[str, Any]:
    """Exactly the seed's keys (PostHog's EventSchemaSerializer has no ``created_by``)."""
    return {
        "id": row["id"],
        "event_definition": row["event_definition_id"],
        "property_group": group_out(row["property_group"]) if row["property_group"] else None,
        "property_group_id": row["property_group_id"],
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
    }


def check_fields(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors=errors)


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
    check_fields(errors)
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
        raise not_found()
    return json_response(group_out(row))


@route("/schema_property_groups/{group_id}", ["PUT", "PATCH"], "Update a property group (properties replace the list)")
async def update_group(project_id: str, group_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    reg = registry(request)
    if await reg.get_group(project_id, group_id) is None:
        raise not_found()  # DRF looks the object up before it validates the body
    fields = _group_fields(body.data, partial=request.method == "PATCH")
    if not await reg.update_group(project_id, group_id, fields):
        raise not_found()
    if "properties" in fields:
        schemas_changed(services(request), project_id)
    row = await reg.get_group(project_id, group_id)
    if row is None:
        raise not_found()
    return json_response(group_out(row))


@route("/schema_property_groups/{group_id}", ["DELETE"], "Delete a property group, its properties and schemas")
async def delete_group(project_id: str, group_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_group(project_id, group_id):
        raise not_found()
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
    check_fields(errors)
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
        raise not_found()
    return json_response(schema_out(row))


@route("/event_schemas/{schema_id}", ["PUT", "PATCH"], "Update an event schema")
async def update_schema(project_id: str, schema_id: str, request: Request) -> Response:
    body = await forms.read_form(request)
    await forms.authorise_body(request, WRITE, project_id, body)
    reg = registry(request)
    if await reg.get_schema(project_id, schema_id) is None:
        raise not_found()  # DRF looks the object up before it validates the body
    errors: list[FieldError] = []
    required = request.method == "PUT"
    changes: dict[str, Any] = {}
    for key in ("event_definition", "property_group_id"):
        if required or key in body.data:
            value = forms.pk(body.data, key, errors, required=True)
            if value is not None:
                changes[key] = value
    check_fields(errors)
    if not await reg.update_schema(project_id, schema_id, changes):
        raise not_found()
    schemas_changed(services(request), project_id)
    row = await reg.get_schema(project_id, schema_id)
    if row is None:
        raise not_found()
    return json_response(schema_out(row))


@route("/event_schemas/{schema_id}", ["DELETE"], "Detach a property group from an event definition")
async def delete_schema(project_id: str, schema_id: str, request: Request) -> Response:
    await forms.authorise_body(request, WRITE, project_id)
    if not await registry(request).delete_schema(project_id, schema_id):
        raise not_found()
    schemas_changed(services(request), project_id)
    return Response(status_code=204)


# Event definitions and violations register on this router too.
from eventdock.dialects import event_schemas_definitions as _definitions  # noqa: E402,F401
from eventdock.dialects import event_schemas_violations as _violations  # noqa: E402,F401
