"""Schema governance (SPEC §3.4): decides, per event, store / flag / quarantine.

    event ──▶ compiled schema of (project, name)? ── no ──▶ accepted
                          │ yes
                          ▼
              check(properties) ── no errors ──▶ accepted
                          │ errors
              enforcement_mode = allow ──▶ accepted + flagged record (no payload)
              enforcement_mode = reject ──▶ quarantined record (with payload)

The rules are compiled once per schema version per project into a list of
per-property check closures (``compile_schema``), so evaluating an event
is a handful of dict lookups and function calls, never an interpretation
of the schema. A project without schemas costs one dict lookup per request.

``Governance`` holds the compiled schemas of each project seen so far,
loaded through a ``SchemaSource`` (the store) on first use and refreshed by
``poll`` when the project's schema version moves, so that a change made on
any worker or node is enforced everywhere within a poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec

from eventdock.core.errors import FieldError, StoreUnavailable
from eventdock.core.events import Event, public

log = logging.getLogger("eventdock.governance")

PROPERTY_TYPES = ("DateTime", "String", "Numeric", "Boolean", "Object", "Any")
MISSING_REQUIRED = "missing_required"
TYPE_MISMATCH = "type_mismatch"
RULE_VIOLATION = "rule_violation"


# -- what the store hands us ------------------------------------------------


@dataclass(frozen=True)
class PropertyRule:
    """One property of one property group attached to an event definition."""

    name: str
    property_type: str
    is_required: bool
    validation_rules: dict[str, Any] | None = None


@dataclass(frozen=True)
class EventSchema:
    """Everything attached to one event definition: its mode and properties."""

    event_name: str
    enforcement_mode: str
    properties: tuple[PropertyRule, ...]


@dataclass(frozen=True)
class ProjectSchemas:
    version: int
    events: tuple[EventSchema, ...]


# -- what governance hands the writer ---------------------------------------


@dataclass(frozen=True, slots=True)
class ViolationRecord:
    """A quarantined (``rejected``) or ``flagged`` event, stored by the writer.

    Plain data, no reference to the ``Event``: the writer's transaction may
    run in a process of its own (SQLite), which is sent the events without
    their properties; a rejected event's payload travels here instead.
    """

    project_id: str
    event_id: str
    event_name: str
    source: str
    received_at_ms: int
    action: str  # "rejected" | "flagged"
    errors: list[dict[str, Any]]
    # The event as it arrived; kept only when it was not stored (rejected).
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, e: Event, action: str, errors: list[dict[str, Any]]) -> ViolationRecord:
        payload = None
        if action == "rejected":
            payload = {**public(e), "timestamp_ms": e.timestamp_ms, "received_at_ms": e.received_at_ms, "client_id": e.client_id}
        return cls(e.project_id, e.id, e.name, e.source, e.received_at_ms, action, errors, payload)


class Verdict(msgspec.Struct):
    """What governance decided for one request's events."""

    accepted: list[Event]
    # Records the writer stores in the same transaction (violations).
    records: list[Any] = msgspec.field(default_factory=list)
    # Per rejected event (index in the request): the errors that rejected it.
    rejected: dict[int, list[FieldError]] = msgspec.field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return len(self.rejected)


# -- the coercion table -----------------------------------------------------


def _is_string(value: Any) -> bool:
    return True  # anything non-null is a string once coerced


def _as_number(value: Any) -> float | None:
    """The numeric value PostHog would coerce to, or None (booleans never)."""
    kind = type(value)
    if kind is float or kind is int:
        return value if -math.inf < value < math.inf else None
    if kind is bool or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return float(value) if math.isfinite(value) else None


def _is_numeric(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return -math.inf < value < math.inf
    return _as_number(value) is not None


def _is_boolean(value: Any) -> bool:
    return value is True or value is False or value == "true" or value == "false"


def _is_datetime(value: Any) -> bool:
    """Unix seconds, or an ISO-8601 / RFC 3339 date or date-time (``Z`` included)."""
    kind = type(value)
    if kind is str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    if kind is float or kind is int:
        return -math.inf < value < math.inf
    return False


def _is_object(value: Any) -> bool:
    return isinstance(value, (dict, list))


TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "String": _is_string,
    "Numeric": _is_numeric,
    "Boolean": _is_boolean,
    "DateTime": _is_datetime,
    "Object": _is_object,
    "Any": _is_string,  # every non-null value
}
# Types every non-null value satisfies: no type check is compiled for them.
_UNCHECKED = frozenset({"String", "Any"})
_encode_json = msgspec.json.Encoder().encode


def shown_value(value: Any) -> Any:
    """A violation's ``actual_value``: objects and arrays as compact JSON text,
    as PostHog's ingestion warnings show them; anything else as it came."""
    if isinstance(value, (dict, list)):
        try:
            return _encode_json(value).decode()
        except (TypeError, ValueError, OverflowError):
            return str(value)
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value)


# -- validation rules -------------------------------------------------------

RuleCheck = Callable[[Any], str | None]  # None: passes; else why not


def compile_rules(property_type: str, rules: dict[str, Any] | None) -> RuleCheck | None:
    """One closure for a property's ``validation_rules`` (already validated by the API)."""
    if not rules:
        return None
    if property_type == "String":
        if "enum" in rules:
            allowed = frozenset(rules["enum"])
            shown = ", ".join(repr(v) for v in rules["enum"][:10])

            def check_enum(value: Any) -> str | None:
                return None if _as_text(value) in allowed else f"must be one of [{shown}]"

            return check_enum
        if "not" in rules:
            forbidden = frozenset(rules["not"]["enum"])

            def check_not_enum(value: Any) -> str | None:
                text = _as_text(value)
                return f"must not be {text!r}" if text in forbidden else None

            return check_not_enum
        return None
    if property_type == "Numeric":
        low = rules.get("minimum", rules.get("exclusiveMinimum", -math.inf))
        high = rules.get("maximum", rules.get("exclusiveMaximum", math.inf))
        low_open, high_open = "exclusiveMinimum" in rules, "exclusiveMaximum" in rules
        too_low = f"must be greater than {'' if low_open else 'or equal to '}{low}"
        too_high = f"must be less than {'' if high_open else 'or equal to '}{high}"

        def check_bounds(value: Any) -> str | None:
            kind = type(value)
            number = value if kind is float or kind is int else _as_number(value)
            if number is None:
                return "must be a number"
            if number < low or (low_open and number == low):
                return too_low
            if number > high or (high_open and number == high):
                return too_high
            return None

        return check_bounds
    return None


# -- compiling a schema -----------------------------------------------------

EventCheck = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Alternative:
    property_type: str
    type_ok: Callable[[Any], bool]
    rule: RuleCheck | None


def _property_check(name: str, required: bool, alternatives: list[_Alternative]) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """One property: present and non-null if required; when present, of one
    of its types (required or not, as PostHog's ingestion checks it); then
    the rules of a type it matches. Everything is decided here, once per
    schema version, so an event pays a lookup and a call or two."""
    expected = list(dict.fromkeys(a.property_type for a in alternatives))  # as the groups declare them
    check_type = not any(a.property_type in _UNCHECKED or a.property_type not in TYPE_CHECKS for a in alternatives)
    typed = tuple(a.type_ok for a in alternatives)
    ruled = tuple((a.type_ok, a.rule) for a in alternatives)
    has_rules = any(a.rule is not None for a in alternatives)
    expected_text = " or ".join(expected)

    def error(reason: str, value: Any, message: str) -> dict[str, Any]:
        return {"property": name, "reason": reason, "expected_types": expected, "actual_value": shown_value(value), "message": message}

    missing = error(MISSING_REQUIRED, None, f"{MISSING_REQUIRED}: required property '{name}' is missing or null")

    def type_error(value: Any) -> dict[str, Any]:
        kind = type(value).__name__ if not isinstance(value, (dict, list)) else ("object" if isinstance(value, dict) else "array")
        return error(TYPE_MISMATCH, value, f"{TYPE_MISMATCH}: property '{name}' must be {expected_text}, got {kind} {value!r}")

    if len(alternatives) == 1:
        # The usual case, without the loops: one type, maybe one rule.
        type_ok, rule = alternatives[0].type_ok, alternatives[0].rule

        def check_one(properties: dict[str, Any]) -> dict[str, Any] | None:
            value = properties.get(name)
            if value is None:
                return dict(missing) if required else None
            if check_type and not type_ok(value):
                return type_error(value)
            if rule is not None:
                why = rule(value)
                if why is not None:
                    return error(RULE_VIOLATION, value, f"{RULE_VIOLATION}: property '{name}' {why}")
            return None

        return check_one

    def check(properties: dict[str, Any]) -> dict[str, Any] | None:
        value = properties.get(name)
        if value is None:
            return dict(missing) if required else None
        if check_type and not any(ok(value) for ok in typed):
            return type_error(value)
        if has_rules:
            reasons = []
            for type_ok, rule in ruled:
                if rule is None:
                    if type_ok(value):
                        return None
                    continue
                why = rule(value)
                if why is None:
                    return None
                reasons.append(why)
            if reasons:
                return error(RULE_VIOLATION, value, f"{RULE_VIOLATION}: property '{name}' " + " or ".join(dict.fromkeys(reasons)))
        return None

    return check


def compile_schema(schema: EventSchema) -> EventCheck:
    """All properties of every group attached to one event, as one function.

    A property in several groups is required if any group requires it and
    passes if its value matches any group's type (and that group's rules).
    """
    merged: dict[str, tuple[bool, list[_Alternative]]] = {}
    for prop in schema.properties:
        required, alternatives = merged.get(prop.name, (False, []))
        type_ok = TYPE_CHECKS.get(prop.property_type, _is_string)  # a type this version does not know passes, as in PostHog
        alternatives.append(_Alternative(prop.property_type, type_ok, compile_rules(prop.property_type, prop.validation_rules)))
        merged[prop.name] = (required or prop.is_required, alternatives)
    checks = tuple(_property_check(name, req, alts) for name, (req, alts) in sorted(merged.items()))

    def check_event(properties: dict[str, Any]) -> list[dict[str, Any]]:
        errors = []
        for check in checks:
            problem = check(properties)
            if problem is not None:
                errors.append(problem)
        return errors

    return check_event


@dataclass(frozen=True)
class CompiledProject:
    version: int
    # event name -> (enforcement mode, check)
    events: dict[str, tuple[str, EventCheck]]


def compile_project(schemas: ProjectSchemas) -> CompiledProject:
    return CompiledProject(schemas.version, {s.event_name: (s.enforcement_mode, compile_schema(s)) for s in schemas.events if s.properties})


def field_errors(errors: Iterable[dict[str, Any]]) -> list[FieldError]:
    """Violations as the dialects render them: path = the property name."""
    return [FieldError((e["property"],), e["message"], e["actual_value"], code=e["reason"]) for e in errors]


# -- the seam the pipeline calls --------------------------------------------


class SchemaSource(Protocol):
    async def load(self, project_id: str) -> ProjectSchemas: ...

    async def versions(self) -> dict[str, int]: ...


class Governance:
    """Evaluates events against their project's compiled schemas.

    Without a ``source`` it is the null governance: every event is accepted.
    """

    def __init__(self, source: SchemaSource | None = None, *, on_change: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.on_change = on_change
        self._projects: dict[str, CompiledProject] = {}
        self._loading: dict[str, asyncio.Future[CompiledProject]] = {}
        self._seen_versions: dict[str, int] | None = None

    async def evaluate(self, events: list[Event]) -> Verdict:
        if not events or self.source is None:
            return Verdict(accepted=events)
        # The pipeline hands over one request, i.e. one project.
        project_id = events[0].project_id
        compiled = self._projects.get(project_id)
        if compiled is None:
            compiled = await self._load(project_id)
        schemas = compiled.events
        if not schemas:
            return Verdict(accepted=events)
        accepted: list[Event] = []
        records: list[ViolationRecord] = []
        rejected: dict[int, list[FieldError]] = {}
        for index, event in enumerate(events):
            found = schemas.get(event.name)
            if found is None:
                accepted.append(event)
                continue
            mode, check = found
            assert event.properties is not None, "an event is judged before Pipeline.commit lets go of its properties"
            errors = check(event.properties)
            if not errors:
                accepted.append(event)
            elif mode == "reject":
                records.append(ViolationRecord.of(event, "rejected", errors))
                rejected[index] = field_errors(errors)
            else:
                accepted.append(event)
                records.append(ViolationRecord.of(event, "flagged", errors))
        return Verdict(accepted=accepted, records=records, rejected=rejected)

    async def _load(self, project_id: str) -> CompiledProject:
        """Load once even when many requests for a new project arrive together."""
        pending = self._loading.get(project_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CompiledProject] = asyncio.get_running_loop().create_future()
        self._loading[project_id] = future
        try:
            assert self.source is not None
            compiled = compile_project(await self.source.load(project_id))
            self._projects[project_id] = compiled
            future.set_result(compiled)
            return compiled
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody warns
            raise
        finally:
            del self._loading[project_id]

    async def reload(self, project_id: str) -> CompiledProject:
        """Today's schemas for ``project_id`` (after a change made here, or a replay)."""
        self._projects.pop(project_id, None)
        return await self._load(project_id)

    def invalidate(self, project_id: str) -> None:
        self._projects.pop(project_id, None)
        if self.on_change is not None:
            self.on_change(project_id)

    async def poll(self) -> None:
        """Pick up schema changes made by any process: reload what moved."""
        if self.source is None:
            return
        versions = await self.source.versions()
        previous, self._seen_versions = self._seen_versions, versions
        if previous is None:
            # First look: whatever is cached was loaded after these versions or is stale.
            changed = [p for p, c in self._projects.items() if versions.get(p, 0) != c.version]
        else:
            changed = [p for p, v in versions.items() if previous.get(p) != v]
            changed += [p for p, c in self._projects.items() if versions.get(p, 0) != c.version and p not in changed]
        for project_id in changed:
            if self.on_change is not None:
                self.on_change(project_id)
            if project_id in self._projects:
                try:
                    # Swap in place: requests keep the old rules until the new ones are ready.
                    self._projects[project_id] = compile_project(await self.source.load(project_id))
                except Exception as exc:  # noqa: BLE001 - the next evaluate loads it
                    self._projects.pop(project_id, None)
                    if not isinstance(exc, StoreUnavailable):  # that one the store logs, once
                        log.exception("reloading schemas of project %s failed", project_id)

__all__ = [
    "PROPERTY_TYPES",
    "CompiledProject",
    "EventSchema",
    "Governance",
    "ProjectSchemas",
    "PropertyRule",
    "Verdict",
    "ViolationRecord",
    "compile_project",
    "compile_schema",
    "field_errors",
    "shown_value",
]
