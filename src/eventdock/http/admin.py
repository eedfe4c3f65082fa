"""Admin HTTP API (SPEC §2): projects and their API keys.

Only an admin key (bound to no project) creates or lists projects; a key
bound to a project with ``admin`` or ``*`` manages that project's keys.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core.auth import validate_scopes
from eventdock.core.errors import (
    FieldError,
    InvalidInput,
    MalformedJSON,
    NotFound,
    PermissionDenied,
)
from eventdock.core.events import NUL_MESSAGE, nul_at
from eventdock.dialects.drf import json_response
from eventdock.http.body import decode_json, read_body
from eventdock.http.services import authorise, services

router = APIRouter(tags=["admin"])


class ProjectIn(msgspec.Struct, forbid_unknown_fields=False):
    name: str


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=False):
    """Absent: unchanged; ``null`` rate limit: the global setting applies."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    rate_limit_per_second: int | None | msgspec.UnsetType = msgspec.UNSET
    rate_limit_burst: int | None | msgspec.UnsetType = msgspec.UNSET


class KeyIn(msgspec.Struct, forbid_unknown_fields=False):
    scopes: list[str]
    name: str = ""


async def _json(request: Request) -> Any:
    body = await read_body(request, 64 * 1024)
    try:
        data = decode_json(body)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"JSON parse error - {exc}") from None
    where = nul_at(data, ())
    if where is not None:  # stored text cannot hold it on PostgreSQL
        raise InvalidInput(errors=[FieldError(where, NUL_MESSAGE, code="invalid")])
    return data


def _convert(data: Any, kind: type) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = text.rpartition("`$")[2].rstrip("`") if "`$" in text else ""
        # msgspec says ``$.scopes[0]``; the path is ("scopes", 0).
        path = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", where))
        raise InvalidInput(errors=[FieldError(path, text.split(" - at")[0], code="invalid")]) from None


@router.post("/api/projects", status_code=201, summary="Create a project", response_class=Response)
async def create_project(request: Request) -> Response:
    principal = await authorise(request, "admin", None)
    if not principal.is_admin:
        raise PermissionDenied("Only an admin key may create projects.")
    data = _convert(await _json(request), ProjectIn)
    name = data.name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(errors=[FieldError(("name",), "This field may not be blank and must be at most 200 characters.", code="blank")])
    project = await services(request).tenancy.create_project(name)
    return json_response(project.as_public(), 201)


@router.get("/api/projects", summary="List projects", response_class=Response)
async def list_projects(request: Request) -> Response:
    principal = await authorise(request, "admin", None)
    if not principal.is_admin:
        raise PermissionDenied("Only an admin key may list projects.")
    projects = await services(request).tenancy.list_projects()
    return json_response({"count": len(projects), "next": None, "previous": None, "results": [p.as_public() for p in projects]})


@router.get("/api/projects/{project_id}", summary="Get a project", response_class=Response)
async def get_project(project_id: str, request: Request) -> Response:
    principal = await authorise(request, "admin", project_id)
    if not principal.is_admin:
        raise PermissionDenied("Only an admin key may read project settings.")
    project = await services(request).tenancy.get_project(project_id)
    if project is None:
        raise NotFound("Project not found.", resource="project")
    return json_response(project.as_public())


def _limit_value(data: ProjectPatch, name: str, minimum: int, errors: list[FieldError]) -> Any:
    value = getattr(data, name)
    if isinstance(value, int) and not minimum <= value <= 10**9:
        errors.append(FieldError((name,), f"Ensure this value is between {minimum} and 1000000000, or null for the global setting.", value))
    return value


@router.patch("/api/projects/{project_id}", summary="Change a project (name, ingest rate limit)", response_class=Response)
async def update_project(project_id: str, request: Request) -> Response:
    """``{name?, rate_limit_per_second?, rate_limit_burst?}``; a rate of 0 turns
    the limit off for this project, ``null`` restores the global setting.
    Every worker applies a change within a few seconds; this one at once."""
    principal = await authorise(request, "admin", project_id)
    if not principal.is_admin:
        raise PermissionDenied("Only an admin key may change projects.")
    data = _convert(await _json(request), ProjectPatch)
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if data.name is not msgspec.UNSET:
        name = data.name.strip()
        if not name or len(name) > 200:
            errors.append(FieldError(("name",), "This field may not be blank and must be at most 200 characters.", code="blank"))
        changes["name"] = name
    rate = _limit_value(data, "rate_limit_per_second", 0, errors)
    burst = _limit_value(data, "rate_limit_burst", 1, errors)
    if rate is not msgspec.UNSET:
        changes["rate_limit_per_second"] = rate
        # A burst left out follows the rate (null: as many as the rate).
        changes["rate_limit_burst"] = None if burst is msgspec.UNSET else burst
    elif burst is not msgspec.UNSET:
        changes["rate_limit_burst"] = burst
    if errors:
        raise InvalidInput(errors=errors)
    svc = services(request)
    project = await svc.tenancy.update_project(project_id, **changes)
    if project is None:
        raise NotFound("Project not found.", resource="project")
    svc.project_limits.apply(project.id, project.rate_limit_per_second, project.rate_limit_burst)
    return json_response(project.as_public())


@router.post("/api/projects/{project_id}/keys", status_code=201, summary="Create an API key", response_class=Response)
async def create_key(project_id: str, request: Request) -> Response:
    await authorise(request, "admin", project_id)
    data = _convert(await _json(request), KeyIn)
    try:
        scopes = validate_scopes(data.scopes)
    except ValueError as exc:
        raise InvalidInput(errors=[FieldError(("scopes",), str(exc))]) from None
    key = await services(request).tenancy.create_key(project_id=project_id, scopes=scopes, name=data.name)
    return json_response(key.as_public(), 201)


@router.get("/api/projects/{project_id}/keys", summary="List API keys (no tokens)", response_class=Response)
async def list_keys(project_id: str, request: Request) -> Response:
    await authorise(request, "admin", project_id)
    keys = await services(request).tenancy.list_keys(project_id)
    return json_response({"count": len(keys), "next": None, "previous": None, "results": keys})


@router.delete("/api/projects/{project_id}/keys/{key_id}", status_code=204, summary="Revoke an API key", response_class=Response)
async def revoke_key(project_id: str, key_id: str, request: Request) -> Response:
    await authorise(request, "admin", project_id)
    svc = services(request)
    if not await svc.tenancy.revoke_key(project_id, key_id):
        raise NotFound("Not found.", resource="key")
    svc.authenticator.forget()
    return Response(status_code=204)
