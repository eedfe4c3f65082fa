"""Opaque keyset cursors for newest-first event listings."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Protocol, TypeVar

import msgspec

from eventdock.core.errors import FieldError, InvalidInput
from eventdock.core.params import BIGINT_MAX, BIGINT_MIN

# What a cursor holds, typed so that a forged one cannot carry an integer
# the databases cannot hold, nor a NUL they cannot compare.
_Position = tuple[Annotated[int, msgspec.Meta(ge=BIGINT_MIN, le=BIGINT_MAX)], Annotated[str, msgspec.Meta(pattern="^[^\\x00]*$")]]


class Keyed(Protocol):
    """A row a newest-first listing pages on: (timestamp, id)."""

    @property
    def timestamp_ms(self) -> int: ...

    @property
    def id(self) -> str: ...


def encode_cursor(timestamp_ms: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([timestamp_ms, event_id])).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "cursor") -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, event_id = msgspec.json.decode(raw, type=_Position)
    except (ValueError, msgspec.DecodeError, TypeError):
        raise InvalidInput(errors=[FieldError((field,), "is not a valid cursor", cursor)]) from None
    return timestamp, event_id


def read_cursor(raw: str | None, errors: list[FieldError], message: str = "is not a valid cursor") -> tuple[int, str] | None:
    """The position a ``cursor`` parameter names, or None; a bad one is appended to ``errors``."""
    if not raw:
        return None
    try:
        return decode_cursor(raw)
    except InvalidInput:
        errors.append(FieldError(("cursor",), message, raw))
        return None


T = TypeVar("T", bound=Keyed)


def split_page(rows: Sequence[T], size: int) -> tuple[Sequence[T], str | None]:
    """Rows fetched with ``limit=size + 1`` → the page and the cursor of the next one (or None)."""
    page = rows[:size]
    if len(rows) > size and page:
        return page, encode_cursor(page[-1].timestamp_ms, page[-1].id)
    return page, None
