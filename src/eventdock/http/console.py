"""The web console (SPEC §10): ``GET /`` and its files under ``/console/``.

The console is static: an HTML page, ES modules and a stylesheet shipped
inside the package (``eventdock/console/``), talking to the public APIs
with the token the person pastes. Nothing here authenticates. Every answer
carries a Content-Security-Policy that allows scripts, styles and
connections from this origin only, no inline script, no plugins and no
framing, so a value that slipped through as markup still could not run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
ASSETS_URL = "/console"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (ETag), so an upgraded server is never run with stale modules.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    app.mount(ASSETS_URL, ConsoleFiles(directory=CONSOLE_DIR), name="console")

    @app.get("/", include_in_schema=False)
    async def console_page() -> Response:
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
