"""Test harness: every test talks HTTP to eventdock, on SQLite and PostgreSQL.

- ``backend`` / ``database_url``: one fresh database per back end per xdist
  worker (``EVENTDOCK_TEST_BACKENDS``, set by script/test).
- ``app`` / ``client``: the app from the one factory, in-process, with its
  lifespan running (writer task and all), reached through httpx's ASGI
  transport: no socket, real HTTP semantics.
- ``admin``: an admin key; ``project``: a fresh project with a ``*`` key, so
  tests never see each other's data.
- ``tests.support.server`` starts real server processes where real HTTP,
  several workers or a crash matter.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager

from eventdock.app import create_app
from eventdock.config import Settings
from tests.support import jsonapi_schema

BACKENDS = [b for b in os.environ.get("EVENTDOCK_TEST_BACKENDS", "sqlite").split(",") if b]
PG_URL = os.environ.get("EVENTDOCK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database_url(backend: str, tmp_dir: Any, label: str) -> str:
    """An empty database of ``backend`` (a new SQLite file, or a new PostgreSQL database).

    PostgreSQL names get a random suffix: xdist may run a module-scoped
    fixture on both workers at once, and concurrent runs share one server.
    """
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir}/{label}.db"
    base = PG_URL.rsplit("/", 1)[0]
    name = f"eventdock_{label}_{uuid.uuid4().hex[:8]}".replace("-", "_")
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def worker_id_label(request: pytest.FixtureRequest) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw")


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory, worker_id_label: str) -> Iterator[str]:
    # The pid keeps concurrent runs on one machine apart.
    url = fresh_database_url(backend, tmp_path_factory.mktemp(backend), f"test_{worker_id_label}_{os.getpid()}")
    yield url
    drop_database(url)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings.from_env({"EVENTDOCK_DATABASE_URL": database_url}, **overrides)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[Any]:
    application = create_app(make_settings(database_url))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # Every live-events response is checked against the JSON:API 1.1 schema.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", event_hooks=jsonapi_schema.HOOKS) as c:
        yield c


@dataclass
class Key:
    token: str
    id: str | None = None
    project_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Project:
    id: str
    key: Key  # scope "*"
    admin: Key

    @property
    def headers(self) -> dict[str, str]:
        return self.key.headers

    async def new_key(self, client: httpx.AsyncClient, *scopes: str, name: str = "test") -> Key:
        r = await client.post(f"/api/projects/{self.id}/keys", json={"name": name, "scopes": list(scopes)}, headers=self.admin.headers)
        assert r.status_code == 201, r.text
        body = r.json()
        return Key(token=body["token"], id=body["id"], project_id=self.id)


@pytest.fixture(scope="session")
async def admin(app: Any) -> Key:
    # Bootstrapping is what `eventdock init` does; there is no HTTP way to mint the first key.
    boot = await app.state.services.tenancy.bootstrap(force_new_key=True)
    assert boot is not None
    return Key(token=boot[1].token, id=boot[1].id)


async def create_project(client: httpx.AsyncClient, admin: Key, name: str | None = None) -> Project:
    r = await client.post("/api/projects", json={"name": name or f"p-{uuid.uuid4().hex[:8]}"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    project_id = r.json()["id"]
    r = await client.post(f"/api/projects/{project_id}/keys", json={"name": "all", "scopes": ["*"]}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return Project(id=project_id, key=Key(token=r.json()["token"], id=r.json()["id"], project_id=project_id), admin=admin)


@pytest.fixture
async def project(client: httpx.AsyncClient, admin: Key) -> Project:
    return await create_project(client, admin)
