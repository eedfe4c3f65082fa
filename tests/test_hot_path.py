"""The hot path's shortcuts (issue 6) answer exactly as what they replace."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from eventdock.core.events import format_ms
from eventdock.http.fastlane import HeaderIndex

_names = st.sampled_from(["authorization", "content-type", "content-encoding", "content-length", "x-a", "Content-Type", "X-A"])
_raw = st.lists(
    st.tuples(_names.map(lambda n: n.encode("latin-1")), st.binary(max_size=8).filter(lambda b: b.isascii())),
    max_size=8,
)


@given(raw=_raw, name=_names)
@example(raw=[(b"content-type", b"a"), (b"content-type", b"b")], name="Content-Type")
def test_header_index_answers_as_starlette_headers(raw: list[tuple[bytes, bytes]], name: str) -> None:
    """First value of a name, looked up case-insensitively, absent → default."""
    # Starlette compares with the raw names as given (ASGI servers send them lower-cased).
    raw = [(k.lower(), v) for k, v in raw]
    ours, theirs = HeaderIndex({"headers": list(raw)}), Headers(scope={"headers": list(raw)})
    assert ours.get(name) == theirs.get(name)
    assert ours.get(name, "absent") == theirs.get(name, "absent")
    assert (name in ours) == (name in theirs)
    assert ours.getlist(name) == theirs.getlist(name)
    assert ours.raw == theirs.raw


@given(ms=st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
@example(ms=0)
@example(ms=-1)
@example(ms=1_700_000_000_999)
def test_format_ms_is_rfc3339_utc_with_milliseconds(ms: int) -> None:
    """format_ms caches the formatted second; the answer must not change with it."""
    expected = datetime(1970, 1, 1) + timedelta(milliseconds=ms)
    assert format_ms(ms) == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"
    assert format_ms(ms) == format_ms(ms)  # a cache hit answers the same
