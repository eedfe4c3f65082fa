"""Django REST Framework-style envelopes, as PostHog's API speaks them.

Used by every ``/api/`` route outside the live-events JSON:API: the event
schema dialect (SPEC §5), the admin API (§2) and the query API (§8).
Errors are ``{"type", "code", "detail", "attr"}`` (plus ``errors``, every
field's, when there are several); pages are
``{"count", "next", "previous", "results"}`` with absolute URLs.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventdock.core.errors import (
    AuthenticationFailed,
    EventdockError,
    FieldError,
    InvalidInput,
    RateLimited,
    SchemaViolation,
    Unavailable,
    retry_after_header,
)
from eventdock.core.params import BIGINT_MAX, int_param

_encode = msgspec.json.Encoder().encode

_TYPES = {
    400: "validation_error",
    401: "authentication_error",
    403: "authentication_error",
    404: "invalid_request",
    405: "invalid_request",
    409: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    422: "validation_error",
    429: "throttled_error",
    503: "server_error",
}


def attr(path: tuple[str | int, ...]) -> str | None:
    """DRF joins nested field names with ``__``."""
    return "__".join(str(p) for p in path) if path else None


def render_error(exc: EventdockError) -> Response:
    error_type = _TYPES.get(exc.status, "server_error")
    code = exc.code
    detail = exc.message
    attr_name = None
    if isinstance(exc, AuthenticationFailed):
        code = "authentication_failed" if exc.provided else "not_authenticated"
    elif isinstance(exc, (InvalidInput, SchemaViolation)) and exc.errors:
        first = exc.errors[0]
        code = first.code if first.code != "invalid" else "invalid_input"
        detail = first.message
        attr_name = attr(first.path)
    elif exc.status == 429:
        code = "throttled"
    elif exc.status == 500:
        code = "error"
    headers = {}
    if isinstance(exc, (RateLimited, Unavailable)):
        headers["Retry-After"] = retry_after_header(exc.retry_after)
    body: dict[str, Any] = {"type": error_type, "code": code, "detail": detail, "attr": attr_name}
    if isinstance(exc, SchemaViolation) or (isinstance(exc, InvalidInput) and len(exc.errors) > 1):
        # DRF names one problem (the first); where there are several, every
        # one is listed too, so a form can show each beside its field.
        body["errors"] = [{"attr": attr(e.path), "code": e.code, "detail": e.message} for e in exc.errors]
    return Response(_encode(body), status_code=exc.status, media_type="application/json", headers=headers)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(_encode(data), status_code=status, media_type="application/json")


_NOT_A_COUNT = f"A valid integer from 0 to {BIGINT_MAX} is required."


def page_params(request: Request, default_limit: int = 100, max_limit: int = 1000) -> tuple[int, int]:
    """``?limit=&offset=`` as DRF's LimitOffsetPagination reads them: a larger
    limit is cut to ``max_limit`` and 0 means the default; a value that is not
    a non-negative 64-bit integer is a ``validation_error`` naming it."""
    errors: list[FieldError] = []
    limit = int_param(request.query_params.get("limit"), "limit", errors, default=default_limit, message=_NOT_A_COUNT)
    offset = int_param(request.query_params.get("offset"), "offset", errors, default=0, message=_NOT_A_COUNT)
    if errors:
        raise InvalidInput(errors[0].message, errors=errors)
    return min(limit, max_limit) if limit else default_limit, offset


def page(request: Request, results: list[Any], count: int, limit: int, offset: int) -> dict[str, Any]:
    def link(new_offset: int) -> str:
        url = request.url.include_query_params(limit=limit, offset=new_offset)
        return str(url.remove_query_params("offset") if new_offset == 0 else url)

    return {
        "count": count,
        "next": link(offset + limit) if offset + limit < count else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "results": results,
    }
