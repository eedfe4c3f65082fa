"""Opaque keyset cursors for newest-first event listings."""

from __future__ import annotations

import base64

import msgspec

from eventdock.core.errors import FieldError, InvalidInput


def encode_cursor(timestamp_ms: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([timestamp_ms, event_id])).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "cursor") -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, event_id = msgspec.json.decode(raw, type=tuple[int, str])
    except (ValueError, msgspec.DecodeError, TypeError):
        raise InvalidInput(errors=[FieldError((field,), "is not a valid cursor", cursor)]) from None
    return timestamp, event_id
