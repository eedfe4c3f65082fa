"""Reading request bodies within the size limit, gzip included (SPEC §3.6).

The limit is enforced while reading: a declared ``Content-Length`` over the
limit is refused before anything is read, and a chunked or lying body is cut
off as soon as it crosses the limit. Gzip bodies are inflated incrementally
with the output capped, so a small bomb cannot expand in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request

from eventdock.core.errors import InvalidInput, MalformedJSON, PayloadTooLarge, Unavailable, UnsupportedMediaType

# Arrays and objects nested this deep always parse; deeper ones may be refused
# (400) where the parser reaches the interpreter's recursion limit, about 900
# levels on CPython 3.11. Events themselves may nest only Limits.max_depth.
MAX_JSON_DEPTH = 512
JSON_TOO_DEEP = f"The JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects are accepted."

_decode = msgspec.json.Decoder().decode


def decode_json(data: bytes | str, decode: Callable[[bytes | str], Any] = _decode) -> Any:
    """``decode(data)``, with JSON nested past the parser's recursion limit
    refused as ``MalformedJSON`` (400) instead of a ``RecursionError`` (500).

    The parser recurses once per level and stops at the interpreter's limit,
    so any depth, 100,000 included, costs no more than reaching that limit;
    nothing is added to the usual, shallow body's path. ``msgspec.DecodeError``
    is the caller's to word.
    """
    try:
        return decode(data)
    except RecursionError:
        raise MalformedJSON(JSON_TOO_DEEP) from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body larger than {limit} bytes.")


async def read_body(request: Request, limit: int, budget: ReadingBudget | None = None) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip or none.")
    gzipped = encoding in ("gzip", "x-gzip")
    declared = request.headers.get("content-length")
    reserve = 0
    if declared is not None:
        try:
            reserve = int(declared)
        except ValueError:
            raise InvalidInput("Invalid Content-Length header.") from None
        if reserve > limit and not gzipped:
            raise _too_large(limit)
    body = _Body(limit, gzipped)
    if budget is not None:
        budget.take(body, min(max(reserve, 0), limit))  # refused here, before anything is read
    try:
        # From receive directly, not Request.stream(): the usual body is one
        # message, and going through the async generator took about a third
        # of this function's time (issue 6). No route reads its body before this.
        receive = request.receive
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Gone, or closed for sending too slowly (http.connections):
                # the answer reaches nobody, but it must not log as a 500.
                raise InvalidInput("The connection closed before the whole body arrived.")
            more = message.get("more_body", False)
            chunk = message.get("body", b"")
            if chunk:
                body.add(chunk)
                if budget is not None and body.size > body.counted:
                    budget.take(body, body.size)  # chunked, or gzip inflating past its declared size
        return body.finish()
    finally:
        if budget is not None:
            budget.give(body)


class ReadingBudget:
    """The bytes of ingest bodies one worker reads at once (SPEC §3.2: overload is refused, not buffered).

    The writer's queue bounds what has been parsed; this bounds what is
    being read before that. Without it, any number of large uploads at once
    were admitted while the queue had room and each read whole, only to be
    refused once read. A body counts as its declared ``Content-Length`` from
    the start, and as its size once it grows past that (chunked, or gzip
    inflating). Bodies up to ``SMALL`` are never refused here: the server
    buffers that much per connection whatever the app does, and a single
    event must not wait on someone's large upload. A larger body is refused
    only while others are being read, so one up to the size limit always
    gets in.
    """

    SMALL = 64 * 1024

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.reading = 0

    def take(self, body: _Body, size: int) -> None:
        """Count ``body`` as ``size`` bytes, or raise ``Unavailable`` (503) if that would overrun the budget."""
        more = size - body.counted
        others = self.reading - body.counted
        if size > self.SMALL and others > 0 and others + size > self.max_bytes:
            raise Unavailable("Too many request bodies are being read at once.", retry_after=1)
        self.reading += more
        body.counted = size

    def give(self, body: _Body) -> None:
        self.reading -= body.counted
        body.counted = 0


class _Body:
    """A body read chunk by chunk, inflated if gzipped, refused past ``limit``."""

    def __init__(self, limit: int, gzipped: bool) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        # The compressed body may not be larger than the limit either.
        self.raw_size = 0
        self.counted = 0  # the bytes a ReadingBudget holds for it
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


async def read_ingest_body(request: Request, limit: int, ensure_room: Callable[[], None], budget: ReadingBudget) -> bytes:
    """An ingest request's body, refused (503) while the writer's queue is full or ``budget`` is spent.

    The queue is checked before the body is read, so a refusal under
    overload costs no reading, and again once it is in, before the caller
    parses it: requests admitted while the queue had room would otherwise
    all be parsed — the expensive part — only to be refused at submit once
    the first of them filled it. That wasted parsing starved the writer: the
    bench's overload phase stored 0 events/s (bench/PROFILE.md).
    """
    ensure_room()
    body = await read_body(request, limit, budget)
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
