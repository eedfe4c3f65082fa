"""Reading request bodies within the size limit, gzip included (SPEC §3.6).

The limit is enforced while reading: a declared ``Content-Length`` over the
limit is refused before anything is read, and a chunked or lying body is cut
off as soon as it crosses the limit. Gzip bodies are inflated incrementally
with the output capped, so a small bomb cannot expand in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

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
    body = _Body(limit, gzipped)
    # From receive directly, not Request.stream(): the usual body is one
    # message, and going through the async generator took about a third of
    # this function's time (issue 6). No route reads its body before this.
    receive = request.receive
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        more = message.get("more_body", False)
        chunk = message.get("body", b"")
        if chunk:
            body.add(chunk)
    return body.finish()


class _Body:
    """A body read chunk by chunk, inflated if gzipped, refused past ``limit``."""

    def __init__(self, limit: int, gzipped: bool) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        # The compressed body may not be larger than the limit either.
        self.raw_size = 0
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def add(self, chunk: bytes) -> None:
        limit = self.limit
        self.raw_size += len(chunk)
        if self.raw_size > limit:
            raise _too_large(limit)
        if self.inflater is None:
            data = chunk
        else:
            try:
                data = self.inflater.decompress(chunk, limit + 1 - self.size)
            except zlib.error:
                raise InvalidInput("The gzip body is corrupt.") from None
            if self.inflater.unconsumed_tail:
                raise _too_large(limit)
        self.size += len(data)
        if self.size > limit:
            raise _too_large(limit)
        self.chunks.append(data)

    def finish(self) -> bytes:
        chunks = self.chunks
        if self.inflater is not None:
            try:
                tail = self.inflater.flush()
            except zlib.error:
                raise InvalidInput("The gzip body is corrupt.") from None
            self.size += len(tail)
            if self.size > self.limit:
                raise _too_large(self.limit)
            chunks.append(tail)
            if not self.inflater.eof:
                raise InvalidInput("The gzip body is truncated.")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
