"""The JSON:API wire rules of the live-events dialect: content negotiation
(415/406) and the ``errors`` document every failure under ``/api/v2/`` is
rendered in, with a ``source.pointer`` (or ``source.parameter``, or
``source.header``) per error.
"""

from __future__ import annotations

import re
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
    retry_after_header,
)
from eventdock.dialects.live_events_output import MEDIA_TYPE
from eventdock.http.body import media_type

_encode = msgspec.json.Encoder().encode
# Stable reason phrases (Python renamed 422 in 3.13).
_TITLES = {422: "Unprocessable Entity", 413: "Payload Too Large"}


# -- errors --------------------------------------------------------------------


class NotAcceptable(InvalidInput):
    """406: every JSON:API media type in ``Accept`` carries a parameter or extension we do not support."""

    status = 406
    code = "not_acceptable"
    default_message = "Accept names the JSON:API media type only with parameters or extensions this server does not support."


class UnsupportedJsonApiType(InvalidInput):
    """415 for a ``Content-Type`` we cannot read, named by ``source.header``."""

    status = 415
    code = "unsupported_media_type"
    default_message = "Unsupported media type."


def _title(status: int) -> str:
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _source(error: FieldError) -> dict[str, str]:
    if error.code in ("parameter", "header"):
        return {error.code: str(error.path[0])}
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


# -- content negotiation (JSON:API 1.1 §content-negotiation-servers) -----------------

# The extensions this server applies: none, so any ``ext`` URI is unsupported.
EXTENSIONS: frozenset[str] = frozenset()
# A media range of Accept: a type, then ``;name=value`` parameters (values may be quoted).
_RANGE = re.compile(r'\s*([^\s,;]+)((?:\s*;\s*[^\s=,;]+\s*=\s*(?:"[^"]*"|[^\s,;]*))*)\s*(?:,|$)')
_PARAM = re.compile(r';\s*([^\s=,;]+)\s*=\s*("[^"]*"|[^\s,;]*)')


def _unsupported(params: dict[str, str]) -> str | None:
    """Why a JSON:API media type with these parameters cannot be served, or None."""
    foreign = sorted(set(params) - {"ext", "profile"})
    if foreign:
        return f"media type parameter(s) {', '.join(foreign)} are not allowed; only ext and profile are"
    unknown = sorted(set(params.get("ext", "").split()) - EXTENSIONS)
    if unknown:
        return f"the extension {unknown[0]} is not supported"
    return None


def check_content_type(request: Request) -> None:
    """``application/vnd.api+json`` (with only ``ext``/``profile``, and no
    extension we do not apply) or UTF-8 ``application/json``; else 415."""
    if "content-type" not in request.headers:
        return
    kind, params = media_type(request)
    if kind == MEDIA_TYPE:
        why = _unsupported(params)
        if why:
            raise UnsupportedJsonApiType(f"Content-Type: {why}.", errors=[FieldError(("Content-Type",), why, code="header")])
    elif kind == "application/json":
        if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise UnsupportedJsonApiType("Only UTF-8 JSON is supported.", errors=[FieldError(("Content-Type",), "only UTF-8 JSON is supported", code="header")])
    else:
        message = f"Content type '{kind}' is not supported; use {MEDIA_TYPE}."
        raise UnsupportedJsonApiType(message, errors=[FieldError(("Content-Type",), message, code="header")])


def accept_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an ``Accept`` header: (type, parameters), lower-cased names, unquoted values.

    Written here rather than taken from a library: neither Starlette nor our
    other dependencies parse Accept, and JSON:API's rule needs each range's
    parameters (quoted ``ext`` lists included), not just the preferred type.
    """
    ranges = []
    for match in _RANGE.finditer(header):
        params = {name.lower(): value.strip('"') for name, value in _PARAM.findall(match.group(2))}
        ranges.append((match.group(1).lower(), params))
    return ranges


def _is_zero(weight: str) -> bool:
    try:
        return float(weight) == 0
    except ValueError:
        return False


def check_accept(request: Request) -> None:
    """406 when ``Accept`` names the JSON:API media type and every instance of
    it is one we cannot serve (a parameter other than ext/profile, or an
    unsupported extension). An instance with ``q=0`` is refused by the client."""
    accept = request.headers.get("accept")
    if not accept:
        return
    reasons = []
    for kind, params in accept_ranges(accept):
        if kind != MEDIA_TYPE:
            continue
        weight = params.pop("q", "1")
        why = _unsupported(params) or ("the client refuses it (q=0)" if _is_zero(weight) else None)
        if why is None:
            return
        reasons.append(why)
    if reasons:
        raise NotAcceptable(f"Accept: {reasons[0]}.", errors=[FieldError(("Accept",), reasons[0], code="header")])
