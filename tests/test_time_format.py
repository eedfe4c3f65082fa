"""format_ms: the RFC 3339 times every dialect answers with (SPEC §3.1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from eventdock.core.events import format_ms


@given(ms=st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
@example(ms=0)
@example(ms=-1)
@example(ms=1_700_000_000_999)
def test_format_ms_is_rfc3339_utc_with_milliseconds(ms: int) -> None:
    """format_ms caches the formatted second; the answer must not change with it."""
    expected = datetime(1970, 1, 1) + timedelta(milliseconds=ms)
    assert format_ms(ms) == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"
    assert format_ms(ms) == format_ms(ms)  # a cache hit answers the same
