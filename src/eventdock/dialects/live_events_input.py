"""Reading JSON:API request documents of the live-events dialect.

Structural problems of the document are 400 (bad JSON, ``data`` not an
object) or 409 (a ``type``/``id`` that does not match); problems with the
attributes are 422, one error per attribute with a JSON pointer to it and a
Rails-style message, as the Monterosa API answers them.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from eventdock.core import live
from eventdock.core.errors import Conflict, FieldError, InvalidInput, MalformedJSON
from eventdock.core.events import NUL_MESSAGE, nul_at
from eventdock.core.live import LiveEvent, Plan
from eventdock.dialects.live_events_output import seconds
from eventdock.http.body import decode_json

MAX_NAME = 200
# Bounds that keep every time in range of the store (year 9999; 100 years).
MAX_START_AT = 253_402_300_799
MAX_DURATION = 3_153_600_000
MAX_REPEAT_IN = 52_560_000
PLAN_ATTRIBUTES = ("name", "start_mode", "end_mode", "start_at", "duration", "end_at", "repeat", "repeat_in", "extra_time", "settings")
ACTIONS_ON_CREATE = ("start",)
ACTIONS_ON_UPDATE = ("start", "stop")

_decode = msgspec.json.Decoder().decode


class Unprocessable(InvalidInput):
    """Attributes that are well-formed JSON but not acceptable (422)."""

    status = 422
    code = "unprocessable"


class ClientIdForbidden(InvalidInput):
    """A create naming its own ``data.id`` (403, JSON:API 1.1 §crud-creating-client-ids:
    a server "MUST return 403 Forbidden in response to an unsupported request to
    create a resource with a client-generated ID"). The server chooses live event ids."""

    status = 403
    code = "client_id_forbidden"


def _at(name: str, *more: str | int) -> tuple[str | int, ...]:
    return ("data", "attributes", name, *more)


def document_data(body: bytes) -> dict[str, Any]:
    """The ``data`` object of a request document."""
    if not body.strip():
        raise InvalidInput("The request body is empty; send a JSON:API document.", errors=[FieldError(("data",), "can't be blank")])
    try:
        parsed = decode_json(body, _decode)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), dict):
        raise InvalidInput("The document must hold a resource object in data.", errors=[FieldError(("data",), "must be a resource object")])
    data = parsed["data"]
    kind = data.get("type")
    if kind is None:
        raise InvalidInput("data.type is required.", errors=[FieldError(("data", "type"), "can't be blank")])
    if kind != "events":
        raise Conflict(f"data.type must be 'events', not {kind!r}.")
    nul = nul_at(data, ("data",))
    if nul is not None:
        raise Unprocessable("The document holds a NUL character.", errors=[FieldError(nul, NUL_MESSAGE)])
    attrs = data.get("attributes", {})
    if attrs is None:
        data["attributes"] = {}
    elif not isinstance(attrs, dict):
        raise InvalidInput("data.attributes must be an object.", errors=[FieldError(("data", "attributes"), "must be an object")])
    return data


def project_id_of(data: dict[str, Any]) -> str:
    relationships = data.get("relationships")
    project = relationships.get("project") if isinstance(relationships, dict) else None
    linkage = project.get("data") if isinstance(project, dict) else None
    project_id = linkage.get("id") if isinstance(linkage, dict) else None
    if not isinstance(project_id, str) or not project_id.strip():
        raise Unprocessable("The project is required.", errors=[FieldError(("data", "relationships", "project"), "can't be blank")])
    return project_id


def refuse_client_id(data: dict[str, Any]) -> None:
    """POST: ``data.id`` is the server's to choose (a ``lid`` is fine: it names nothing here)."""
    if data.get("id") is not None:
        raise ClientIdForbidden(
            "Client-generated ids are not supported; leave data.id out and the server assigns one.",
            errors=[FieldError(("data", "id"), "client-generated ids are not supported")],
        )


def check_id(data: dict[str, Any], live_id: str) -> None:
    """PATCH: ``data.id`` must name the resource of the URL."""
    given = data.get("id")
    if given is None:
        raise InvalidInput("data.id is required.", errors=[FieldError(("data", "id"), "can't be blank")])
    if given != live_id:
        raise Conflict(f"data.id {given!r} does not match the event in the URL.")


def _number(attrs: dict[str, Any], name: str, errors: list[FieldError], *, minimum: float, exclusive: bool, maximum: float) -> float | None:
    value = attrs.get(name)
    if value is None:
        errors.append(FieldError(_at(name), "can't be blank"))
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors.append(FieldError(_at(name), "is not a number", value))
        return None
    if exclusive and value <= minimum:
        errors.append(FieldError(_at(name), f"must be greater than {minimum:g}", value))
    elif not exclusive and value < minimum:
        errors.append(FieldError(_at(name), f"must be greater than or equal to {minimum:g}", value))
    elif value > maximum:
        errors.append(FieldError(_at(name), f"must be less than or equal to {maximum:g}", value))
    else:
        return float(value)
    return None


def _ms(value: float) -> int:
    return round(value * 1000)


def settings_of(value: Any, errors: list[FieldError], *, allow_removal: bool = False) -> list[dict[str, Any]] | None:
    """``[{key, values: {<locale or "all">: string|number|bool}}]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(FieldError(_at("settings"), "must be an array of settings", value))
        return None
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    before = len(errors)
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(FieldError(_at("settings", index), "must be an object with key and values", item))
            continue
        key = item.get("key")
        if not isinstance(key, str) or not key.strip():
            errors.append(FieldError(_at("settings", index, "key"), "can't be blank", key))
            continue
        if key in seen:
            errors.append(FieldError(_at("settings", index, "key"), "has already been taken", key))
            continue
        seen.add(key)
        values = item.get("values")
        if values is None and allow_removal:
            out.append({"key": key, "values": None})
            continue
        if not isinstance(values, dict):
            errors.append(FieldError(_at("settings", index, "values"), "must be an object of locale to value", values))
            continue
        bad = [k for k, v in values.items() if v is not None and not isinstance(v, (str, int, float, bool))]
        if bad:
            errors.append(FieldError(_at("settings", index, "values", bad[0]), "must be a string, number or boolean", values[bad[0]]))
            continue
        out.append({"key": key, "values": values})
    return out if len(errors) == before else None


def plan_of(attrs: dict[str, Any], errors: list[FieldError]) -> Plan | None:
    """Validate a complete set of attributes (a create, or a future event
    with the patch applied); one error per bad attribute."""
    before = len(errors)
    name = attrs.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        errors.append(FieldError(_at("name"), "can't be blank", name))
    elif not isinstance(name, str):
        errors.append(FieldError(_at("name"), "must be a string", name))
    elif len(name) > MAX_NAME:
        errors.append(FieldError(_at("name"), f"is too long (maximum is {MAX_NAME} characters)", name))
    start_mode = attrs.get("start_mode")
    if start_mode is None:
        errors.append(FieldError(_at("start_mode"), "can't be blank"))
    elif start_mode not in live.START_MODES:
        errors.append(FieldError(_at("start_mode"), "is not included in the list", start_mode))
    end_mode = attrs.get("end_mode") or "duration"
    if end_mode not in live.END_MODES:
        errors.append(FieldError(_at("end_mode"), "is not included in the list", end_mode))
    start_at = _number(attrs, "start_at", errors, minimum=0, exclusive=False, maximum=MAX_START_AT)
    duration: float | None = None
    if end_mode == "scheduled" and attrs.get("end_at") is not None:
        end_at = _number(attrs, "end_at", errors, minimum=0, exclusive=False, maximum=MAX_START_AT + MAX_DURATION)
        if end_at is not None and start_at is not None:
            if end_at <= start_at:
                errors.append(FieldError(_at("end_at"), "must be greater than start_at", attrs["end_at"]))
            else:
                duration = end_at - start_at
    else:
        duration = _number(attrs, "duration", errors, minimum=0, exclusive=True, maximum=MAX_DURATION)
    repeat = attrs.get("repeat", False)
    if repeat is None:
        repeat = False
    if not isinstance(repeat, bool):
        errors.append(FieldError(_at("repeat"), "is not included in the list", repeat))
    repeat_in = attrs.get("repeat_in")
    if repeat_in is None:
        if repeat is True:
            errors.append(FieldError(_at("repeat_in"), "can't be blank"))
    elif isinstance(repeat_in, bool) or not isinstance(repeat_in, (int, float)):
        errors.append(FieldError(_at("repeat_in"), "is not a number", repeat_in))
    elif not float(repeat_in).is_integer():
        errors.append(FieldError(_at("repeat_in"), "must be an integer", repeat_in))
    elif repeat_in < 1:
        errors.append(FieldError(_at("repeat_in"), "must be greater than or equal to 1", repeat_in))
    elif repeat_in > MAX_REPEAT_IN:
        errors.append(FieldError(_at("repeat_in"), f"must be less than or equal to {MAX_REPEAT_IN}", repeat_in))
    extra_time: float | None = 60.0
    if attrs.get("extra_time") is not None:
        extra_time = _number(attrs, "extra_time", errors, minimum=0, exclusive=False, maximum=MAX_DURATION)
    settings = settings_of(attrs.get("settings"), errors)
    if len(errors) > before:
        return None
    assert isinstance(name, str) and start_at is not None and duration is not None and extra_time is not None and settings is not None
    return Plan(
        name=name,
        start_mode=str(start_mode),
        end_mode=end_mode,
        start_at=_ms(start_at),
        duration=max(1, _ms(duration)),
        repeat=bool(repeat),
        repeat_in=int(repeat_in) if repeat_in is not None else None,
        extra_time=_ms(extra_time),
        settings=settings,
    )


def action_of(attrs: dict[str, Any], allowed: tuple[str, ...], errors: list[FieldError]) -> str | None:
    action = attrs.get("action")
    if action is None:
        return None
    if action not in allowed:
        errors.append(FieldError(_at("action"), "is not included in the list", action))
        return None
    return str(action)


def wire_plan(ev: LiveEvent) -> dict[str, Any]:
    """The event's own attributes, as a client would send them."""
    values: dict[str, Any] = {
        "name": ev.name,
        "start_mode": ev.start_mode,
        "end_mode": ev.end_mode,
        "start_at": seconds(ev.start_at),
        "duration": seconds(ev.duration),
        "repeat": ev.repeat,
        "repeat_in": ev.repeat_in,
        "extra_time": seconds(ev.extra_time),
        "settings": ev.settings,
    }
    if ev.end_mode == "scheduled":
        values["end_at"] = seconds(ev.end_at)
    return values


def patched_plan(ev: LiveEvent, attrs: dict[str, Any], errors: list[FieldError]) -> Plan | None:
    """A future event with the patch applied (settings replaced key by key)."""
    merged = wire_plan(ev)
    for name in PLAN_ATTRIBUTES:
        if name in attrs and name != "settings":
            merged[name] = attrs[name]
    if "duration" in attrs and "end_at" not in attrs:
        merged.pop("end_at", None)  # a new duration moves a scheduled end
    if "settings" in attrs:
        new = settings_of(attrs["settings"], errors, allow_removal=True)
        if new is None:
            return None
        merged["settings"] = live.merge_settings(ev.settings, new)
    return plan_of(merged, errors)


def running_changes(ev: LiveEvent, attrs: dict[str, Any], errors: list[FieldError]) -> tuple[str | None, list[dict[str, Any]] | None]:
    """After the start: a new name and settings; other attributes may only
    repeat their current value (clients send documents back whole)."""
    current = wire_plan(ev)
    current["end_at"] = seconds(ev.end_at)
    for name in PLAN_ATTRIBUTES:
        if name in ("name", "settings") or name not in attrs:
            continue
        given = attrs[name]
        same = given == current.get(name) or (
            isinstance(given, (int, float)) and not isinstance(given, bool) and isinstance(current.get(name), (int, float)) and float(given) == float(current[name])
        )
        if not same:
            errors.append(FieldError(_at(name), "can't be changed once the event has started", given))
    name = None
    if "name" in attrs:
        value = attrs["name"]
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(FieldError(_at("name"), "can't be blank", value))
        elif not isinstance(value, str):
            errors.append(FieldError(_at("name"), "must be a string", value))
        elif len(value) > MAX_NAME:
            errors.append(FieldError(_at("name"), f"is too long (maximum is {MAX_NAME} characters)", value))
        else:
            name = value
    settings = None
    if "settings" in attrs:
        new = settings_of(attrs["settings"], errors, allow_removal=True)
        if new is not None:
            settings = live.merge_settings(ev.settings, new)
    return name, settings
