"""Integer request parameters, bounded in one place for every dialect.

Both databases hold signed 64-bit integers and Python's have no bound, so an
``offset`` of 2^63 used to reach the driver and fail there (a 500). Every
integer a client sends in a query string is read here, and a cursor's
integers are typed with the same bounds (``core.paging``): ASCII digits with
an optional sign — ``str.isdigit`` also takes "²", which ``int`` refuses — of
at most 19 digits (so ``int`` never sees a string it would refuse for its
length), within the caller's range, which a signed 64-bit integer holds.
"""

from __future__ import annotations

import re

from eventdock.core.errors import FieldError

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def parse_int(raw: str, minimum: int = BIGINT_MIN, maximum: int = BIGINT_MAX) -> int | None:
    """The integer ``raw`` spells, if it lies in ``[minimum, maximum]``; else None."""
    text = raw.strip()
    if _INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def int_param(
    raw: str | None,
    name: str,
    errors: list[FieldError],
    *,
    default: int,
    minimum: int = 0,
    maximum: int = BIGINT_MAX,
    message: str | None = None,
    code: str = "invalid",
) -> int:
    """Query parameter ``name``: ``default`` when absent or empty; a bad value
    is appended to ``errors`` (the dialect renders them) and reads as ``default``."""
    if raw is None or raw == "":
        return default
    value = parse_int(raw, max(minimum, BIGINT_MIN), min(maximum, BIGINT_MAX))
    if value is None:
        errors.append(FieldError((name,), message or f"must be an integer from {minimum} to {maximum}", raw, code=code))
        return default
    return value
