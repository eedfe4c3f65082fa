"""Reading request bodies within the size limit, gzip included (SPEC §3.6).

The limit is enforced while reading: a declared ``Content-Length`` over the
limit is refused before anything is read, and a chunked or lying body is cut
off as soon as it crosses the limit. Gzip bodies are inflated incrementally
with the output capped, so a small bomb cannot expand in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from starlette.requests import Request

from eventdock.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body larger than {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    gzipped = encoding in ("gzip", "x-gzip")
    declared = request.headers.get("content-length")
    if declared is not None and not gzipped:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise InvalidInput("Invalid Content-Length header.") from None
    chunks: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    # The compressed body may not be larger than the limit either.
    raw_size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        raw_size += len(chunk)
        if raw_size > limit:
            raise _too_large(limit)
        if inflater is None:
            data = chunk
        else:
            try:
                data = inflater.decompress(chunk, limit + 1 - size)
            except zlib.error:
                raise InvalidInput("The gzip body is corrupt.") from None
            if inflater.unconsumed_tail:
                raise _too_large(limit)
        size += len(data)
        if size > limit:
            raise _too_large(limit)
        chunks.append(data)
    if inflater is not None:
        try:
            tail = inflater.flush()
        except zlib.error:
            raise InvalidInput("The gzip body is corrupt.") from None
        size += len(tail)
        if size > limit:
            raise _too_large(limit)
        chunks.append(tail)
        if not inflater.eof:
            raise InvalidInput("The gzip body is truncated.")
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def read_ingest_body(request: Request, limit: int, ensure_room: Callable[[], None]) -> bytes:
    """An ingest request's body, refused (``ensure_room`` raises 503) while the writer's queue is full.

    Checked before the body is read, so a refusal under overload costs no
    reading, and again once it is in, before the caller parses it: requests
    admitted while the queue had room would otherwise all be parsed — the
    expensive part — only to be refused at submit once the first of them
    filled it. That wasted parsing starved the writer: the bench's overload
    phase stored 0 events/s (bench/PROFILE.md).
    """
    ensure_room()
    body = await read_body(request, limit)
    ensure_room()
    return body


def media_type(request: Request) -> tuple[str, dict[str, str]]:
    """The Content-Type's media type (lower-cased) and its parameters."""
    raw = request.headers.get("content-type", "")
    kind, *params = raw.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        if key.strip():
            parsed[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), parsed
