"""The JSON:API wire rules of the live-events dialect: content negotiation
(415/406) and the ``errors`` document every failure under ``/api/v2/`` is
rendered in, with a ``source.pointer`` (or ``source.parameter``) per error.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventdock.core.errors import (
    EventdockError,
    FieldError,
    InvalidInput,
    RateLimited,
    SchemaViolation,
    Unavailable,
    UnsupportedMediaType,
    retry_after_header,
)
from eventdock.dialects.live_events_output import MEDIA_TYPE
from eventdock.http.body import media_type

_encode = msgspec.json.Encoder().encode
# Stable reason phrases (Python renamed 422 in 3.13).
_TITLES = {422: "Unprocessable Entity", 413: "Payload Too Large"}


# -- errors --------------------------------------------------------------------


class NotAcceptable(EventdockError):
    status = 406
    code = "not_acceptable"
    default_message = "Accept names the JSON:API media type only with parameters this server does not support."


def _title(status: int) -> str:
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _source(error: FieldError) -> dict[str, str]:
    if error.code == "parameter":
        return {"parameter": str(error.path[0])}
    path = error.path if error.path and error.path[0] == "data" else ("data", "attributes", *error.path)
    return {"pointer": "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)}


def render_error(exc: EventdockError) -> Response:
    status = str(exc.status)
    title = _title(exc.status)
    field_errors = exc.errors if isinstance(exc, (InvalidInput, SchemaViolation)) else []
    if field_errors:
        errors = [{"status": status, "title": title, "detail": e.message, "source": _source(e)} for e in field_errors]
    else:
        errors = [{"status": status, "title": title, "detail": exc.message}]
    headers = {}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = retry_after_header(exc.retry_after)
    return Response(_encode({"errors": errors}), status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)


# -- content negotiation -----------------------------------------------------------


def check_content_type(request: Request) -> None:
    """``application/vnd.api+json`` (only ext/profile parameters) or ``application/json``."""
    if "content-type" not in request.headers:
        return
    kind, params = media_type(request)
    if kind == MEDIA_TYPE:
        extra = sorted(set(params) - {"ext", "profile"})
        if extra:
            raise UnsupportedMediaType(f"Media type parameter(s) {', '.join(extra)} are not supported; only ext and profile are.")
    elif kind == "application/json":
        if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("Only UTF-8 JSON is supported.")
    else:
        raise UnsupportedMediaType(f"Content type '{kind}' is not supported; use {MEDIA_TYPE}.")


def check_accept(request: Request) -> None:
    """406 when Accept allows the JSON:API type only with foreign parameters."""
    accept = request.headers.get("accept")
    if not accept:
        return
    ranges = [part.strip() for part in accept.split(",") if part.strip()]
    for item in ranges:
        kind, *params = [p.strip() for p in item.split(";")]
        kind = kind.lower()
        names = {p.partition("=")[0].strip().lower() for p in params} - {"q", "ext", "profile"}
        if kind in ("*/*", "application/*", "application/json") or (kind == MEDIA_TYPE and not names):
            return
    if any(item.split(";")[0].strip().lower() == MEDIA_TYPE for item in ranges):
        raise NotAcceptable()
