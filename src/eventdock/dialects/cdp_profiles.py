"""CDP profile endpoints (SPEC §3.5), in the CDP response wrapper.

Scope ``profiles:read``. A merged profile id answers with its survivor; a
profile's events are those of every profile merged into it, newest first,
in the same cursor pages as the CDP event listing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from eventdock.core.errors import FieldError, InvalidInput, NotFound
from eventdock.core.identity import KINDS, WIRE_NAMES, normalise
from eventdock.core.paging import read_cursor
from eventdock.dialects.cdp import (
    ERROR_RESPONSES,
    WRAPPED,
    events_page,
    limit_param,
    ok,
)
from eventdock.http.services import authorise, services
from eventdock.store import profiles as profile_store
from eventdock.store.query import EventFilter, list_page

router = APIRouter(tags=["CDP profiles"])

SCOPE = "profiles:read"
_LOOKUPS = {WIRE_NAMES[kind]: kind for kind in KINDS}


@router.get(
    "/v1/projects/{projectUuid}/profiles",
    summary="Find profiles by identifier",
    description="One or more of `email`, `phone`, `customerUUID`, `uuidVisitor`, `softId`, `fingerprint` "
    "(normalised as at ingest); answers the profiles holding all of them: `data: {items}`.",
    response_class=Response,
    responses={200: {"description": "`data: {items:[profile]}`", **WRAPPED}, **ERROR_RESPONSES},
)
async def find_profiles(
    projectUuid: str,  # noqa: N803 - the wire name
    request: Request,
    email: str | None = None,
    phone: str | None = None,
    customerUUID: str | None = None,  # noqa: N803
    uuidVisitor: str | None = None,  # noqa: N803
    softId: str | None = None,  # noqa: N803
    fingerprint: str | None = None,
) -> Response:
    svc = services(request)
    await authorise(request, SCOPE, projectUuid)
    keys: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    for wire, kind in _LOOKUPS.items():
        raw = request.query_params.get(wire)
        if raw is None:
            continue
        value = normalise(kind, raw)
        if value is None:
            errors.append(FieldError((wire,), "is blank or not a usable identifier", raw))
        else:
            keys.append((kind, value))
    if not keys and not errors:
        errors.append(FieldError(("email",), f"give at least one of {', '.join(_LOOKUPS)}"))
    if errors:
        raise InvalidInput("Validation failed.", errors=errors)
    found = []
    for profile_id in await profile_store.find_profile_ids(svc.db, projectUuid, keys):
        profile = await profile_store.get_profile(svc.db, projectUuid, profile_id)
        if profile is not None:
            found.append(profile.as_public())
    return ok({"items": found})


@router.get(
    "/v1/projects/{projectUuid}/profiles/{profileId}",
    summary="Get one profile",
    description="A merged profile's id answers with the profile it was merged into.",
    response_class=Response,
    responses={200: {"description": "The profile.", **WRAPPED}, **ERROR_RESPONSES},
)
async def get_profile(projectUuid: str, profileId: str, request: Request) -> Response:  # noqa: N803
    svc = services(request)
    await authorise(request, SCOPE, projectUuid)
    profile = await profile_store.get_profile(svc.db, projectUuid, profileId)
    if profile is None:
        raise NotFound(f"Profile '{profileId}' not found in this project.", resource="profile")
    return ok(profile.as_public())


@router.get(
    "/v1/projects/{projectUuid}/profiles/{profileId}/events",
    summary="List a profile's events",
    description="Newest first, including events of profiles merged into it; `nextCursor` pages on.",
    response_class=Response,
    responses={200: {"description": "`data: {items, nextCursor}`", **WRAPPED}, **ERROR_RESPONSES},
)
async def profile_events(
    projectUuid: str,  # noqa: N803
    profileId: str,  # noqa: N803
    request: Request,
    limit: str | None = None,
    cursor: str | None = None,
) -> Response:
    svc = services(request)
    await authorise(request, SCOPE, projectUuid)
    errors: list[FieldError] = []
    size = limit_param(request, errors)
    position = read_cursor(cursor, errors)
    if errors:
        raise InvalidInput("Validation failed.", errors=errors)
    profile = await profile_store.get_profile(svc.db, projectUuid, profileId)
    if profile is None:
        raise NotFound(f"Profile '{profileId}' not found in this project.", resource="profile")
    f = EventFilter(projectUuid, profile_ids=profile.family)
    return events_page(await list_page(svc.db, f, cursor=position, limit=size + 1), size)
