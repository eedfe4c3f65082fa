"""Identity rules (SPEC §3.5): which properties identify a person, and how.

Pure functions, no SQL: the store's resolver (``store/profiles.py``) asks
``identity_of(properties)`` for each event and applies the merge rules.

Identifiers, in priority order, and the property names they are read from
(CDP stores its DTO fields under their own camelCase names; generic-ingest
and imported events may use either spelling):

    kind           properties
    customer_uuid  customerUUID, customer_uuid
    soft_id        softId, soft_id
    email          email                      (trimmed, lower-cased)
    phone          phone                      (digits, a leading + kept)
    visitor_uuid   uuidVisitor, visitor_uuid
    fingerprint    fingerprint

Traits: firstName / first_name, lastName / last_name, email, phone.
Blank-like values identify nobody: "", "null", "undefined", "0", "-1",
"anonymous" (any case) and the all-zero UUID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("customer_uuid", "soft_id", "email", "phone", "visitor_uuid", "fingerprint")
PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}

# kind -> property names that carry it (first present non-blank one wins).
SOURCES: dict[str, tuple[str, ...]] = {
    "customer_uuid": ("customerUUID", "customer_uuid"),
    "soft_id": ("softId", "soft_id"),
    "email": ("email",),
    "phone": ("phone",),
    "visitor_uuid": ("uuidVisitor", "visitor_uuid"),
    "fingerprint": ("fingerprint",),
}
# Every property name that can carry an identifier: most events have none,
# and one set test in C tells so without looking at each name.
_IDENTIFIER_NAMES = frozenset(name for names in SOURCES.values() for name in names)

# The wire name of each kind in the CDP profile shape and query string.
WIRE_NAMES = {
    "customer_uuid": "customerUUID",
    "soft_id": "softId",
    "email": "email",
    "phone": "phone",
    "visitor_uuid": "uuidVisitor",
    "fingerprint": "fingerprint",
}
TRAITS: dict[str, tuple[str, ...]] = {
    "firstName": ("firstName", "first_name"),
    "lastName": ("lastName", "last_name"),
    "email": ("email",),
    "phone": ("phone",),
}

_TRAIT_NAMES = frozenset(name for names in TRAITS.values() for name in names)

_BLANK = frozenset({"", "null", "undefined", "0", "-1", "anonymous", "00000000-0000-0000-0000-000000000000", "none", "nil"})
MAX_VALUE_LENGTH = 512


def is_blank(value: str) -> bool:
    text = value.strip().lower()
    return text in _BLANK or (len(text) == 32 and text == "0" * 32)


def normalise(kind: str, value: Any) -> str | None:
    """The stored form of one identifier value, or None when it identifies nobody."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    if is_blank(text) or len(text) > MAX_VALUE_LENGTH:
        return None
    if kind == "email":
        text = text.lower()
    elif kind == "phone":
        digits = "".join(ch for ch in text if ch.isdigit())
        if not digits or set(digits) == {"0"}:
            return None
        text = ("+" if text.startswith("+") else "") + digits
    elif kind in ("customer_uuid", "visitor_uuid"):
        text = text.lower() if _looks_like_uuid(text) else text
    return text


def _looks_like_uuid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


@dataclass(slots=True)
class Identity:
    """What one event says about who sent it."""

    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (kind, value), priority order
    traits: dict[str, str] = field(default_factory=dict)

    @property
    def customer_uuid(self) -> str | None:
        for kind, value in self.identifiers:
            if kind == "customer_uuid":
                return value
        return None


def identity_of(properties: dict[str, Any]) -> Identity | None:
    """The identifiers and traits in an event's properties; None when it has no identifiers."""
    if properties.keys().isdisjoint(_IDENTIFIER_NAMES):
        return None
    identifiers: list[tuple[str, str]] = []
    for kind in KINDS:
        for name in SOURCES[kind]:
            raw = properties.get(name)
            value = None if raw is None else normalise(kind, raw)
            if value is not None:
                identifiers.append((kind, value))
                break
    if not identifiers:
        return None
    traits: dict[str, str] = {}
    if properties.keys().isdisjoint(_TRAIT_NAMES):  # the usual event names no trait
        return Identity(identifiers=identifiers, traits=traits)
    for trait, names in TRAITS.items():
        for name in names:
            raw = properties.get(name)
            if raw is None:
                continue
            if trait in ("email", "phone"):
                value = normalise(trait, raw)
            else:
                value = raw.strip() if isinstance(raw, str) and not is_blank(raw) else None
            if value:
                traits[trait] = value
                break
    return Identity(identifiers=identifiers, traits=traits)
