"""An app of its own, on a fresh database, for tests that need other settings
(small limits, a rate limit, a tiny writer queue) than the shared one."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from eventdock.app import create_app
from tests.conftest import Key, Project, create_project, drop_database, fresh_database_url, make_settings
from tests.support import jsonapi_schema


@dataclass
class CustomApp:
    app: Any
    client: httpx.AsyncClient
    admin: Key
    project: Project
    database_url: str


@contextlib.asynccontextmanager
async def custom_app(backend: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[CustomApp]:
    """``create_app(make_settings(url, **overrides))`` with its lifespan, a client, an admin key and a project."""
    url = fresh_database_url(backend, tmp_path, f"custom_{uuid.uuid4().hex[:10]}")
    try:
        application = create_app(make_settings(url, **overrides))
        async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://testserver", event_hooks=jsonapi_schema.HOOKS
            ) as client:
                boot = await application.state.services.tenancy.bootstrap(force_new_key=True)
                assert boot is not None
                admin = Key(token=boot[1].token, id=boot[1].id)
                project = await create_project(client, admin)
                yield CustomApp(application, client, admin, project, url)
    finally:
        drop_database(url)
