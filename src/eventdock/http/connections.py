"""Connection timeouts and a bound on open connections per worker (docs/limits.md).

uvicorn closes idle keep-alive connections (``--timeout-keep-alive``) but
has no timeout for reading a request: a client that opens a connection and
sends its headers a byte a second holds it for ever, and enough of them
(slowloris) use up the worker's file descriptors. Its ``--limit-concurrency``
does not help: it counts such connections and answers 503 to the *normal*
clients once they fill it. So ``eventdock serve`` runs uvicorn with this
protocol, a subclass of uvicorn's httptools protocol that adds, per worker:

- a **header timeout**: a request's headers must be complete within
  ``header_timeout`` seconds of the connection opening (first request) or
  of the request's first byte (later ones on a keep-alive connection);
  else 408 and the connection is closed (closed silently if nothing was
  sent at all);
- a **body timeout**: a request's body must be complete within
  ``body_timeout`` seconds of its headers; else 408 (if no answer has
  started) and the connection is closed, which the handler reading the
  body sees as the client going away;
- a **connection bound**: past ``max_connections`` open connections, a new
  one evicts the connection that has waited longest for its headers — the
  slow ones, never a request being handled nor an idle keep-alive
  connection a client may be reusing; with none to evict it is answered
  503 + ``Retry-After`` and closed.

Each new connection starts one timer (its first request's headers); after
that, a request that arrives whole in one read (the usual case) starts
none: they are armed only when a read ends in the middle of the headers
or the body.
The alternatives were weighed: a reverse proxy in front (nginx's
``client_header_timeout``) is the classic answer but one more thing to run,
and Hypercorn/gunicorn would replace the server the benchmark measures;
the subclass keeps uvicorn and its speed and adds a few timer callbacks.
It uses uvicorn's documented ``--http`` extension point (a protocol class)
and the httptools protocol's parser callbacks, which are stable across
uvicorn releases; tests/test_connections.py exercises it end to end.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventdock.config import Settings

# File descriptors a worker keeps for itself (database, logs, pipes) below its limit.
_FD_HEADROOM = 64


class _Worker:
    """This process's settings and the connections still waiting for their headers, oldest first."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        fd_bound = soft - _FD_HEADROOM if soft != resource.RLIM_INFINITY else settings.max_connections
        self.max_connections = max(1, min(settings.max_connections, fd_bound))
        self.waiting: dict[GuardedHttpProtocol, None] = {}


_worker: _Worker | None = None


def _this_worker() -> _Worker:
    global _worker
    if _worker is None:
        _worker = _Worker()
    return _worker


def _answer(status: bytes, text: bytes, *headers: bytes) -> bytes:
    """A whole response written straight to the socket (no request reached the app)."""
    head = [b"HTTP/1.1 " + status, b"content-type: text/plain; charset=utf-8", *headers, b"content-length: %d" % len(text), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + text


_REQUEST_TIMEOUT = _answer(b"408 Request Timeout", b"The request was not sent fast enough.\n")
_TOO_MANY = _answer(b"503 Service Unavailable", b"Too many open connections; retry later.\n", b"retry-after: 1")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body timeouts and a connection bound."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker = _this_worker()
        self._timer: asyncio.TimerHandle | None = None
        self._in_headers = False  # a request has begun and its headers are not complete
        self._in_body = False  # its headers are complete and its body is not

    # -- connection -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        worker = self._worker
        if len(self.connections) > worker.max_connections:
            oldest = next(iter(worker.waiting), None)
            if oldest is None:
                self.transport.write(_TOO_MANY)
                self.transport.close()
                return
            oldest._expire()
        self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The usual read holds a whole request: parsed, nothing left to time.
        if (self._in_headers or self._in_body) and self._timer is None and not self.transport.is_closing():
            if self._in_headers:
                self._wait_for_headers()
            else:
                self._arm(self._worker.body_timeout)

    # -- parser callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    # -- timers -------------------------------------------------------------------

    def _wait_for_headers(self) -> None:
        self._arm(self._worker.header_timeout)
        self._worker.waiting[self] = None

    def _arm(self, seconds: float) -> None:
        self._timer = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:  # no timer, not waiting: a request read whole costs only this test
            self._timer.cancel()
            self._timer = None
            self._worker.waiting.pop(self, None)

    def _expire(self) -> None:
        """Too slow (or evicted): 408 if part of a request came and no answer has begun; then close."""
        self._disarm()
        if self.transport.is_closing():
            return
        if self._in_headers or (self._in_body and not self.cycle.response_started):
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()
