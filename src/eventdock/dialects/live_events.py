"""Live events API, Monterosa-compatible JSON:API (SPEC §6, seed 002). Issue #4."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter
from starlette.responses import Response

from eventdock.core.errors import EventdockError

router = APIRouter(tags=["live events (JSON:API)"])


def render_error(exc: EventdockError) -> Response:
    body = {"errors": [{"status": str(exc.status), "title": exc.code.replace("_", " ").capitalize(), "detail": exc.message}]}
    return Response(msgspec.json.encode(body), status_code=exc.status, media_type="application/vnd.api+json")
