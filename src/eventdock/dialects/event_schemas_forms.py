"""Request bodies of the event-schema dialect, read and checked as DRF would.

PostHog's API is Django REST Framework: a body may be JSON, form-encoded or
multipart (the seed's own ``curl -d`` and ``requests.post(data=...)``
examples send forms), and the token may also come as ``personal_api_key``
in the body or the query string. Field errors are ``FieldError``s whose
path DRF joins with ``__`` into ``attr``.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from eventdock.core.auth import Principal, token_from_authorization
from eventdock.core.errors import (
    EventdockError,
    FieldError,
    InvalidInput,
    MalformedJSON,
    PermissionDenied,
    UnsupportedMediaType,
)
from eventdock.core.events import NUL_MESSAGE, nul_at
from eventdock.core.governance import PROPERTY_TYPES
from eventdock.http.body import decode_json, media_type, read_body
from eventdock.http.services import authorise

MAX_BODY = 1024 * 1024
MAX_NAME = 400
MAX_PROPERTY_NAME = 200
MAX_ENUM = 1000
ENFORCEMENT_MODES = ("allow", "reject")
# PostHog's answer to a token of another project (403 permission_denied).
OTHER_PROJECT = "You don't have access to the project."
_TRUE = {"true", "True", "TRUE", "1", "on", "yes", "y", "t"}
_FALSE = {"false", "False", "FALSE", "0", "off", "no", "n", "f", ""}
# `a=b&c=d`: the seed's create curl sends such a body labelled application/json.
_FORM_LIKE = re.compile(rb"^[\w.%\[\]-]+=[^&]*(&[\w.%\[\]-]+=[^&]*)*$")


@dataclass
class Body:
    data: dict[str, Any]
    problem: EventdockError | None = None


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def read_form(request: Request) -> Body:
    """The request body as a dict, whatever DRF parser would have taken it.

    A NUL character anywhere is refused here, once for every route: stored
    text cannot hold it on PostgreSQL.
    """
    body = await _parse_form(request)
    where = nul_at(body.data, ())
    if body.problem is None and where is not None:
        return Body({}, InvalidInput(errors=[FieldError(where, NUL_MESSAGE, code="invalid")]))
    return body


async def _parse_form(request: Request) -> Body:
    raw = await read_body(request, MAX_BODY)
    if not raw.strip():
        return Body({})
    kind, _ = media_type(request)
    if kind == "application/x-www-form-urlencoded":
        return Body(_urlencoded(raw))
    if kind == "multipart/form-data":
        try:
            form = await MultiPartParser(Headers(raw=request.headers.raw), _one_chunk(raw)).parse()
        except MultiPartException as exc:
            return Body({}, InvalidInput(f"Multipart form parse error - {exc.message}"))
        return Body({k: v for k, v in form.multi_items() if isinstance(v, str)})
    if kind in ("application/json", "") or kind.endswith("+json"):
        try:
            parsed = decode_json(raw)
        except msgspec.DecodeError as exc:
            if _FORM_LIKE.match(raw.strip()):
                return Body(_urlencoded(raw))
            return Body({}, MalformedJSON(f"JSON parse error - {exc}"))
        except MalformedJSON as exc:  # nested too deeply
            return Body({}, exc)
        if not isinstance(parsed, dict):
            return Body({}, InvalidInput(errors=[FieldError((), f"Invalid data. Expected a dictionary, but got {type(parsed).__name__}.", code="invalid")]))
        return Body(parsed)
    return Body({}, UnsupportedMediaType(f'Unsupported media type "{request.headers.get("content-type", "")}" in request.'))


def _urlencoded(raw: bytes) -> dict[str, Any]:
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


async def authorise_body(request: Request, scope: str, project_id: str, body: Body | None = None) -> Principal:
    """Authorise with the header token, else ``personal_api_key`` (body, then query)."""
    token = token_from_authorization(request.headers.get("authorization"))
    if token is None and body is not None and isinstance(body.data.get("personal_api_key"), str):
        token = body.data["personal_api_key"]
    if token is None:
        token = request.query_params.get("personal_api_key") or None
    try:
        principal = await authorise(request, scope, project_id, token=token)
    except PermissionDenied as exc:
        if exc.other_project:
            raise PermissionDenied(OTHER_PROJECT) from None
        raise
    if body is not None and body.problem is not None:
        raise body.problem
    return principal


def created_by(principal: Principal) -> dict[str, Any]:
    """PostHog names a user (``UserBasicSerializer``, as the seed shows it);
    here the API key stands in: first_name = key name, no email, no role."""
    return {
        "id": int(principal.key_id.replace("-", "")[:12], 16) if re.fullmatch(r"[0-9a-fA-F-]{12,}", principal.key_id) else 0,
        "uuid": principal.key_id,
        "distinct_id": principal.key_id,
        "first_name": principal.name,
        "last_name": "",
        "email": "",
        "is_email_verified": False,
        "hedgehog_config": {},
        "role_at_organization": None,
    }


def user_basic(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored ``created_by`` in today's shape (rows written before a field existed lack it)."""
    if stored is None:
        return None
    return {"is_email_verified": False, "hedgehog_config": {}, "role_at_organization": None, **stored}


# -- field readers (DRF semantics) ------------------------------------------


def error(path: tuple[str | int, ...], message: str, code: str, value: Any = None) -> FieldError:
    return FieldError(path, message, value, code=code)


def maybe_json(value: Any) -> Any:
    """Form fields carry structure as JSON text (``properties``, ``validation_rules``);
    text that is not JSON stays text, JSON nested too deeply is ``MalformedJSON``."""
    if isinstance(value, str):
        try:
            return decode_json(value)
        except msgspec.DecodeError:
            return value
    return value


def text(
    data: dict[str, Any],
    key: str,
    path: tuple[str | int, ...],
    errors: list[FieldError],
    *,
    required: bool,
    max_length: int,
    blank: bool = False,
    allow_null: bool = False,
) -> str | None:
    """DRF's CharField: ``blank`` allows "", ``allow_null`` takes null as ""."""
    if key not in data:
        if required:
            errors.append(error((*path, key), "This field is required.", "required"))
        return None
    value = data[key]
    if value is None:
        if allow_null:
            return ""
        errors.append(error((*path, key), "This field may not be null.", "null"))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors.append(error((*path, key), "Not a valid string.", "invalid", value))
        return None
    value = str(value).strip()
    if not value and not blank:
        errors.append(error((*path, key), "This field may not be blank.", "blank", value))
        return None
    if len(value) > max_length:
        errors.append(error((*path, key), f"Ensure this field has no more than {max_length} characters.", "max_length", value))
        return None
    return value


def boolean(data: dict[str, Any], key: str, path: tuple[str | int, ...], errors: list[FieldError], default: bool) -> bool:
    value = data.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value) in _TRUE:
        return True
    if isinstance(value, (str, int)) and str(value) in _FALSE:
        return False
    errors.append(error((*path, key), "Must be a valid boolean.", "invalid", value))
    return default


def choice(data: dict[str, Any], key: str, choices: tuple[str, ...], path: tuple[str | int, ...], errors: list[FieldError], *, required: bool) -> str | None:
    if key not in data:
        if required:
            errors.append(error((*path, key), "This field is required.", "required"))
        return None
    value = data[key]
    if not isinstance(value, str) or value not in choices:
        errors.append(error((*path, key), f'"{value}" is not a valid choice.', "invalid_choice", value))
        return None
    return value


def pk(data: dict[str, Any], key: str, errors: list[FieldError], *, required: bool) -> str | None:
    """A related object's id (the seed's curl leaves a trailing comma: ids never hold one)."""
    if key not in data:
        if required:
            errors.append(error((key,), "This field is required.", "required"))
        return None
    value = data[key]
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(error((key,), "This field may not be null.", "null"))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        errors.append(error((key,), f"Incorrect type. Expected pk value, received {type(value).__name__}.", "incorrect_type", value))
        return None
    return str(value).strip().rstrip(",").strip()


# -- validation_rules (SPEC §5) ---------------------------------------------
# The messages are PostHog's serializer's: a client that shows or matches
# them works unchanged. Every problem is a plain ``ValidationError`` there,
# i.e. code ``invalid`` on the property's ``validation_rules`` (or ``name``).

_NUMERIC_KEYS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
_RULED_TYPES = ("String", "Numeric")


def _enum(where: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{where} must be a list"
    if not value:
        return f"{where} must not be empty"
    if len(value) > MAX_ENUM:
        return f"{where} must have at most {MAX_ENUM} values"
    if not all(isinstance(v, str) for v in value):
        return f"{where} values must be strings"
    return None


def _unknown(value: dict[str, Any], allowed: tuple[str, ...], property_type: str) -> str | None:
    extra = [k for k in value if k not in allowed]
    if extra:
        return f"Unrecognized keys for {property_type} validation rules: {', '.join(sorted(extra))}"
    return None


def validation_rules(property_type: str | None, value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(normalised rules, None) or (None, PostHog's message why not)."""
    value = maybe_json(value)
    if value is None or value == {} or value == "":
        return None, None
    if not isinstance(value, dict):
        return None, "validation_rules must be an object"
    if property_type not in _RULED_TYPES:
        return None, f"validation_rules are only supported for String and Numeric properties, not {property_type}"
    if property_type == "String":
        why = _unknown(value, ("enum", "not"), "String")
        if why:
            return None, why
        if "enum" in value and "not" in value:
            return None, "Cannot specify both enum and not.enum"
        if "enum" in value:
            why = _enum("enum", value["enum"])
            return (None, why) if why else ({"enum": value["enum"]}, None)
        negated = value["not"]
        if not isinstance(negated, dict) or list(negated) != ["enum"]:
            return None, "not must be an object with exactly one key: enum"
        why = _enum("not.enum", negated["enum"])
        return (None, why) if why else ({"not": {"enum": negated["enum"]}}, None)
    why = _unknown(value, _NUMERIC_KEYS, "Numeric")
    if why:
        return None, why
    for key, bound in value.items():
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            return None, f"{key} must be a number"
    if "minimum" in value and "exclusiveMinimum" in value:
        return None, "Cannot specify both minimum and exclusiveMinimum"
    if "maximum" in value and "exclusiveMaximum" in value:
        return None, "Cannot specify both maximum and exclusiveMaximum"
    low = value.get("minimum", value.get("exclusiveMinimum"))
    high = value.get("maximum", value.get("exclusiveMaximum"))
    if low is not None and high is not None and not low < high:
        return None, "Lower bound must be less than upper bound"
    return dict(value), None


def property_name(item: dict[str, Any], path: tuple[str | int, ...], errors: list[FieldError]) -> str | None:
    """Trimmed, non-blank, at most 200 characters; any characters (SPEC §5)."""
    if isinstance(item.get("name"), str) and item["name"].strip() and len(item["name"].strip()) > MAX_PROPERTY_NAME:
        errors.append(error((*path, "name"), f"Property name must be {MAX_PROPERTY_NAME} characters or less", "invalid", item["name"]))
        return None
    return text(item, "name", path, errors, required=True, max_length=MAX_PROPERTY_NAME)


def properties(value: Any, errors: list[FieldError]) -> list[dict[str, Any]]:
    """A property group's ``properties`` list, each checked; names unique."""
    value = maybe_json(value)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(error(("properties",), f'Expected a list of items but got type "{type(value).__name__}".', "not_a_list", value))
        return []
    out: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        path: tuple[str | int, ...] = ("properties", index)
        if not isinstance(item, dict):
            errors.append(error(path, f"Invalid data. Expected a dictionary, but got {type(item).__name__}.", "invalid", item))
            continue
        before = len(errors)
        name = property_name(item, path, errors)
        kind = choice(item, "property_type", PROPERTY_TYPES, path, errors, required=True)
        prop: dict[str, Any] = {
            "id": str(item["id"]) if isinstance(item.get("id"), str) else None,
            "name": name,
            "property_type": kind,
            "is_required": boolean(item, "is_required", path, errors, False),
            "is_optional_in_types": boolean(item, "is_optional_in_types", path, errors, False),
            "description": text(item, "description", path, errors, required=False, max_length=10_000, blank=True) or "",
            "validation_rules": None,
        }
        if kind is not None:
            rules, why = validation_rules(kind, item.get("validation_rules"))
            if why:
                errors.append(error((*path, "validation_rules"), why, "invalid", item.get("validation_rules")))
            prop["validation_rules"] = rules
        if len(errors) == before:
            out.append(prop)
    if not errors:
        # PostHog checks the list as a whole once every item is valid.
        seen: set[str] = set()
        for prop in out:
            if prop["name"] in seen:
                errors.append(error(("properties",), f"A property named '{prop['name']}' already exists in this group", "invalid", prop["name"]))
                break
            seen.add(prop["name"])
    return out
