"""Erasure and access for a person (SPEC §11), CDP routes in the CDP wrapper.

- ``DELETE /v1/projects/{projectUuid}/profiles/{profileId}[?suppress=true]``
  (scope ``profiles:write``): 202 with the deletion request; the erasure
  itself runs in the background (``store/lifecycle.py``). A merged id
  erases the profile it was merged into.
- ``GET /v1/projects/{projectUuid}/deletions/{deletionId}`` (``profiles:read``).
- ``GET /v1/projects/{projectUuid}/profiles/{profileId}/export``
  (``profiles:read``): NDJSON, streamed — the profile, then every event of
  it and of the profiles merged into it, oldest first, in the CDP listing
  shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from eventdock.core.errors import FieldError, InvalidInput, NotFound
from eventdock.dialects.cdp import ERROR_RESPONSES, WRAPPED, item, ok
from eventdock.http.services import authorise, services
from eventdock.store import erasure, lifecycle
from eventdock.store import profiles as profile_store
from eventdock.store.database import Database
from eventdock.store.query import EventFilter, iter_oldest_first

router = APIRouter(tags=["CDP profiles"])

_encode = msgspec.json.Encoder().encode
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "")
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidInput("Validation failed.", errors=[FieldError((name,), "must be true or false", raw)])


async def profile_ndjson(db: Database, project_id: str, profile: profile_store.Profile) -> AsyncIterator[bytes]:
    """The export's lines: the profile, then its family's events, oldest first, a page at a time."""
    yield _encode(profile.as_public()) + b"\n"
    async for rows in iter_oldest_first(db, EventFilter(project_id, profile_ids=profile.family)):
        yield b"".join(_encode(item(r)) + b"\n" for r in rows)


@router.delete(
    "/v1/projects/{projectUuid}/profiles/{profileId}",
    status_code=202,
    summary="Erase a profile (GDPR art. 17)",
    description="Erases the profile (a merged id: the profile it was merged into), every profile merged into it, "
    "their identifiers and traits, their events and the violations that carry them, in the background. "
    "Answers 202 with the deletion request; follow it at `/v1/projects/{projectUuid}/deletions/{id}`. "
    "With `suppress=true` the identifiers are kept as salted hashes and later events carrying one are dropped, never stored.",
    response_class=Response,
    responses={202: {"description": "`data`: the deletion request `{id, profileId, status, requestedAt, completedAt, deleted}`", **WRAPPED}, **ERROR_RESPONSES},
)
async def delete_profile(projectUuid: str, profileId: str, request: Request) -> Response:  # noqa: N803 - the wire names
    svc = services(request)
    await authorise(request, "profiles:write", projectUuid)
    suppress = _flag(request, "suppress")
    async with svc.db.write() as conn:
        deletion = await conn.run_sync(erasure.request_deletion, projectUuid, profileId, suppress)
    if deletion is None:
        raise NotFound(f"Profile '{profileId}' not found in this project.", resource="profile")
    if suppress:  # in force on this worker now; on the others within a poll
        await lifecycle.poll_suppressions(svc.db, svc.pipeline.suppressions)
    remover = svc.extras.get("remover")
    if isinstance(remover, lifecycle.Remover):
        remover.wake()
    response = ok(deletion.as_public())
    response.status_code = 202
    return response


@router.get(
    "/v1/projects/{projectUuid}/deletions/{deletionId}",
    summary="Get a deletion request",
    description="`status`: `pending`, `running` or `completed`; `deleted` counts what went so far.",
    response_class=Response,
    responses={200: {"description": "The deletion request.", **WRAPPED}, **ERROR_RESPONSES},
)
async def get_deletion(projectUuid: str, deletionId: str, request: Request) -> Response:  # noqa: N803
    svc = services(request)
    await authorise(request, "profiles:read", projectUuid)
    deletion = await erasure.get_deletion(svc.db, projectUuid, deletionId)
    if deletion is None:
        raise NotFound(f"Deletion request '{deletionId}' not found in this project.", resource="deletion")
    return ok(deletion.as_public())


@router.get(
    "/v1/projects/{projectUuid}/profiles/{profileId}/export",
    summary="Export a profile's data (GDPR art. 15)",
    description="NDJSON, streamed: the profile (as `GET …/profiles/{profileId}` shows it), then every event of it "
    "and of the profiles merged into it, oldest first, in the event listing's shape.",
    response_class=StreamingResponse,
    responses={200: {"description": "NDJSON", "content": {"application/x-ndjson": {}}}, **ERROR_RESPONSES},
)
async def export_profile(projectUuid: str, profileId: str, request: Request) -> Response:  # noqa: N803
    svc = services(request)
    await authorise(request, "profiles:read", projectUuid)
    profile = await profile_store.get_profile(svc.db, projectUuid, profileId)
    if profile is None:
        raise NotFound(f"Profile '{profileId}' not found in this project.", resource="profile")

    return StreamingResponse(
        profile_ndjson(svc.db, projectUuid, profile),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="profile-{profile.id}.ndjson"'},
    )
