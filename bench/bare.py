"""The bare-ASGI baseline: the least an ASGI app can do with eventdock's requests.

SPEC §9 measures eventdock against "a bare ASGI server that accepts and
discards the same requests". This app is run by the same HTTP server
(uvicorn, uvloop + httptools, same worker count) as ``eventdock serve``
and driven by the same generator with the same requests, so the ratio
isolates what eventdock itself costs: it reads the whole body (as
eventdock must), then answers like eventdock would — 202 with no body on
the generic ingest path, 200 with a small ResponseWrapper on the CDP path.
No framework, no parsing, no storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# About the size of eventdock's CDP answer, so the bytes on the wire match.
CDP_BODY = (
    b'{"success":true,"data":{"id":"0190b1a2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",'
    b'"projectUuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","nameEvent":"page_view",'
    b'"profileId":null,"timestamp":"2024-07-01T12:00:00.000Z","receivedAt":"2024-07-01T12:00:00.000Z"},"error":null}'
)
_JSON = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    # Read (and drop) the whole body, as every eventdock ingest route must.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    path: str = scope["path"]
    if path.startswith("/platform/"):
        status, headers, body = 202, [(b"content-length", b"0")], b""
    elif path.startswith("/v1/"):
        status, headers, body = 200, [*_JSON, (b"content-length", str(len(CDP_BODY)).encode())], CDP_BODY
    elif path in ("/healthz", "/readyz"):
        status, headers, body = 200, [*_JSON, (b"content-length", b"15")], b'{"status":"ok"}'
    else:
        status, headers, body = 404, [(b"content-length", b"0")], b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
