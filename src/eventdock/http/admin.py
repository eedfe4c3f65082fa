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

from eventdock.core.auth import SCOPES, token_from_authorization, validate_scopes
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
    retention_days: int | None = None


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=False):
    """Absent: unchanged; ``null`` rate limit: the global setting applies."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    rate_limit_per_second: int | None | msgspec.UnsetType = msgspec.UNSET
    rate_limit_burst: int | None | msgspec.UnsetType = msgspec.UNSET
    # Days events and violations are kept (SPEC §11); null: the server's default.
    retention_days: int | None | msgspec.UnsetType = msgspec.UNSET


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


@router.get(
    "/api/me",
    summary="The calling API key",
    description="Any valid key may ask. `scopes` are the key's own; `effective_scopes` every scope it may use "
    "(`*` and `admin` imply all, `X:write` implies `X:read`); `project` is the key's project, null for an admin key.",
    response_class=Response,
)
async def current_key(request: Request) -> Response:
    svc = services(request)
    principal = await svc.authenticator.authenticate(token_from_authorization(request.headers.get("authorization")))
    project = await svc.tenancy.get_project(principal.project_id) if principal.project_id else None
    return json_response(
        {
            "key": {"id": principal.key_id, "name": principal.name, "project_id": principal.project_id, "scopes": sorted(principal.scopes)},
            "effective_scopes": [s for s in SCOPES if principal.has_scope(s)],
            "is_admin": principal.is_admin,
            "project": project.as_public(limits=False) if project else None,
        }
    )


MAX_RETENTION_DAYS = 36_500


def _retention(value: Any) -> Any:
    """A retention in days (1-36500) or None; 400 otherwise."""
    if isinstance(value, int) and not 1 <= value <= MAX_RETENTION_DAYS:
        message = f"Ensure this value is between 1 and {MAX_RETENTION_DAYS}, or null for the server's default."
        raise InvalidInput(errors=[FieldError(("retention_days",), message, value, code="invalid")])
    return value


@router.post("/api/projects", status_code=201, summary="Create a project", response_class=Response)
async def create_project(request: Request) -> Response:
    principal = await authorise(request, "admin", None)
    if not principal.is_admin:
        raise PermissionDenied("Only an admin key may create projects.")
    data = _convert(await _json(request), ProjectIn)
    name = data.name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(errors=[FieldError(("name",), "This field may not be blank and must be at most 200 characters.", code="blank")])
    retention = _retention(data.retention_days)
    project = await services(request).tenancy.create_project(name, retention_days=retention)
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


@router.patch("/api/projects/{project_id}", summary="Change a project (name, ingest rate limit, retention)", response_class=Response)
async def update_project(project_id: str, request: Request) -> Response:
    """``{name?, rate_limit_per_second?, rate_limit_burst?, retention_days?}``; a
    rate of 0 turns the limit off for this project, ``null`` restores the
    global setting; ``retention_days`` (1-36500) removes events and violations
    older than that many days, ``null``: the server's default.
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
    if data.retention_days is not msgspec.UNSET:
        changes["retention_days"] = _retention(data.retention_days)
    svc = services(request)
    project = await svc.tenancy.update_project(project_id, **changes)
    if project is None:
        raise NotFound("Project not found.", resource="project")
    svc.project_limits.apply(project.id, project.rate_limit_per_second, project.rate_limit_burst)
    if "retention_days" in changes and (remover := svc.extras.get("remover")) is not None:
        remover.wake()  # a shorter window is applied now, not at the next interval
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
