"""Keys, scopes and the admin API (SPEC §2), through HTTP in every dialect."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Key, Project, create_project

INGEST = "/platform/ingest/v1/events"


def cdp(project_id: str) -> str:
    return f"/v1/projects/{project_id}/events"


def sync_engine(database_url: str) -> sa.Engine:
    return sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))


async def test_token_format_and_hashed_storage(client: httpx.AsyncClient, project: Project, database_url: str) -> None:
    key = await project.new_key(client, "events:read")
    assert re.fullmatch(r"edk_[A-Za-z0-9_-]{43,}", key.token)
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM api_keys WHERE id = :id"), {"id": key.id}).mappings().all()
            dump = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert key.token not in repr(dump)
    assert key.token[4:] not in repr(dump)
    assert rows[0]["token_hash"] != key.token and len(rows[0]["token_hash"]) == 64


@pytest.mark.parametrize("scheme", ["Bearer", "Api-Token", "bearer", "api-token"])
async def test_both_schemes(client: httpx.AsyncClient, project: Project, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {project.key.token}"}
    assert (await client.post(INGEST, json={"event.name": "s"}, headers=headers)).status_code == 202
    assert (await client.get(cdp(project.id), headers=headers)).status_code == 200


async def test_write_implies_read_but_not_the_reverse(client: httpx.AsyncClient, project: Project) -> None:
    writer = await project.new_key(client, "events:write")
    reader = await project.new_key(client, "events:read")
    assert (await client.get(cdp(project.id), headers=writer.headers)).status_code == 200
    assert (await client.post(cdp(project.id), json={"nameEvent": "x"}, headers=reader.headers)).status_code == 403
    assert (await client.post(INGEST, json={}, headers=reader.headers)).status_code == 403


async def test_star_is_everything_within_its_own_project_only(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    other = await create_project(client, admin)
    assert (await client.post(cdp(project.id), json={"nameEvent": "x"}, headers=project.headers)).status_code == 200
    # Another project, in each dialect's format.
    r = await client.post(cdp(other.id), json={"nameEvent": "x"}, headers=project.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    r = await client.get(f"/api/projects/{other.id}/keys", headers=project.headers)
    assert r.status_code == 403 and r.json()["type"] == "authentication_error"
    r = await client.post(f"/api/projects/{other.id}/keys", json={"scopes": ["*"]}, headers=project.headers)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = await client.delete(f"/api/projects/{other.id}/keys/{other.key.id}", headers=project.headers)
    assert r.status_code == 403
    assert (await client.post(cdp(other.id), json={"nameEvent": "x"}, headers=other.headers)).status_code == 200


async def test_admin_key_acts_everywhere(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    assert (await client.post(cdp(project.id), json={"nameEvent": "x"}, headers=admin.headers)).status_code == 200
    assert (await client.get(cdp(project.id), headers=admin.headers)).status_code == 200
    assert (await client.get(f"/api/projects/{project.id}/keys", headers=admin.headers)).status_code == 200


async def test_only_admin_creates_and_lists_projects(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    r = await client.post("/api/projects", json={"name": "mine"}, headers=admin.headers)
    assert r.status_code == 201
    created = r.json()
    assert set(created) >= {"id", "name", "created_at"} and created["name"] == "mine"
    uuid.UUID(created["id"])
    listed = (await client.get("/api/projects", headers=admin.headers)).json()
    assert created["id"] in [p["id"] for p in listed["results"]] and listed["count"] >= 2
    manager = await project.new_key(client, "admin")
    for key in (project.key, manager):
        r = await client.post("/api/projects", json={"name": "nope"}, headers=key.headers)
        assert r.status_code == 403 and r.json()["type"] == "authentication_error", r.text
        assert (await client.get("/api/projects", headers=key.headers)).status_code == 403


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "  "}, {"name": 5}, {"name": "x" * 201}])
async def test_bad_project_body(client: httpx.AsyncClient, admin: Key, body: dict[str, Any]) -> None:
    r = await client.post("/api/projects", json=body, headers=admin.headers)
    assert r.status_code == 400 and r.json()["type"] == "validation_error", r.text


async def test_malformed_admin_json(client: httpx.AsyncClient, admin: Key) -> None:
    r = await client.post("/api/projects", content=b"{", headers={**admin.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "validation_error"


async def test_project_key_with_admin_or_star_manages_its_own_keys(client: httpx.AsyncClient, project: Project) -> None:
    manager = await project.new_key(client, "admin")
    for key in (manager, project.key):
        r = await client.post(f"/api/projects/{project.id}/keys", json={"name": "made", "scopes": ["events:read"]}, headers=key.headers)
        assert r.status_code == 201, r.text
        made = r.json()
        assert set(made) == {"id", "token", "scopes", "project_id", "name"}
        assert made["project_id"] == project.id and made["scopes"] == ["events:read"] and made["name"] == "made"
    writer = await project.new_key(client, "events:write")
    r = await client.post(f"/api/projects/{project.id}/keys", json={"scopes": ["events:read"]}, headers=writer.headers)
    assert r.status_code == 403


async def test_list_keys_shows_no_tokens(client: httpx.AsyncClient, project: Project) -> None:
    key = await project.new_key(client, "events:read", name="listed")
    r = await client.get(f"/api/projects/{project.id}/keys", headers=project.headers)
    assert r.status_code == 200
    assert key.token not in r.text and "token" not in r.text
    entry = next(k for k in r.json()["results"] if k["id"] == key.id)
    assert entry["name"] == "listed" and entry["scopes"] == ["events:read"] and entry["revoked_at"] is None


async def test_revoke_stops_the_key_at_once_in_this_process(client: httpx.AsyncClient, project: Project) -> None:
    key = await project.new_key(client, "events:write")
    # Used once, so the authenticator has it cached.
    assert (await client.post(INGEST, json={"event.name": "before"}, headers=key.headers)).status_code == 202
    r = await client.delete(f"/api/projects/{project.id}/keys/{key.id}", headers=project.headers)
    assert r.status_code == 204 and r.content == b""
    r = await client.post(INGEST, json={"event.name": "after"}, headers=key.headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    r = await client.post(cdp(project.id), json={"nameEvent": "after"}, headers=key.headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    keys = (await client.get(f"/api/projects/{project.id}/keys", headers=project.headers)).json()["results"]
    assert next(k for k in keys if k["id"] == key.id)["revoked_at"] is not None
    # Revoking again, or an unknown key: 404.
    assert (await client.delete(f"/api/projects/{project.id}/keys/{key.id}", headers=project.headers)).status_code == 404
    assert (await client.delete(f"/api/projects/{project.id}/keys/{uuid.uuid4()}", headers=project.headers)).status_code == 404


async def test_a_key_cannot_be_revoked_through_another_project(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    other = await create_project(client, admin)
    r = await client.delete(f"/api/projects/{project.id}/keys/{other.key.id}", headers=admin.headers)
    assert r.status_code == 404
    assert (await client.post(INGEST, json={}, headers=other.headers)).status_code == 202


@pytest.mark.parametrize("scopes", [["events:delete"], [], ["*", "root"], "events:read", [5]])
async def test_unknown_or_bad_scopes_are_400(client: httpx.AsyncClient, project: Project, scopes: Any) -> None:
    r = await client.post(f"/api/projects/{project.id}/keys", json={"name": "x", "scopes": scopes}, headers=project.headers)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "validation_error" and r.json()["attr"].startswith("scopes")


async def test_keys_of_unknown_project(client: httpx.AsyncClient, admin: Key) -> None:
    r = await client.post(f"/api/projects/{uuid.uuid4()}/keys", json={"scopes": ["*"]}, headers=admin.headers)
    assert r.status_code == 404 and r.json()["type"] == "invalid_request"


async def test_admin_api_needs_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/projects")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = await client.get("/api/projects", headers={"Authorization": "Bearer edk_wrong"})
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"


# -- per-project rate limits ------------------------------------------------------


async def test_patch_project_rate_limit(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.patch(f"/api/projects/{project.id}", json={"rate_limit_per_second": 1, "rate_limit_burst": 3}, headers=project.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["rate_limit_per_second"] == 1 and r.json()["rate_limit_burst"] == 3 and r.json()["id"] == project.id
    assert (await client.post(INGEST, json=[{}, {}, {}], headers=project.headers)).status_code == 202
    r = await client.post(INGEST, json=[{}], headers=project.headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == 429
    r = await client.post(cdp(project.id), json={"nameEvent": "x"}, headers=project.headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED" and "retry-after" in r.headers
    # null: back to the global setting (off).
    r = await client.patch(f"/api/projects/{project.id}", json={"rate_limit_per_second": None}, headers=project.admin.headers)
    assert r.status_code == 200 and r.json()["rate_limit_per_second"] is None and r.json()["rate_limit_burst"] is None
    assert (await client.post(INGEST, json=[{}] * 10, headers=project.headers)).status_code == 202
    got = (await client.get(f"/api/projects/{project.id}", headers=project.admin.headers)).json()
    assert got["rate_limit_per_second"] is None


async def test_rate_limit_is_per_project(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    other = await create_project(client, admin)
    await client.patch(f"/api/projects/{project.id}", json={"rate_limit_per_second": 1, "rate_limit_burst": 1}, headers=admin.headers)
    # A full bucket admits one request, even one larger than the burst (SPEC §3.6); the next waits.
    assert (await client.post(INGEST, json=[{}, {}], headers=project.headers)).status_code == 202
    assert (await client.post(INGEST, json=[{}, {}], headers=project.headers)).status_code == 429
    assert (await client.post(INGEST, json=[{}, {}], headers=other.headers)).status_code == 202
    assert (await client.post(INGEST, json=[{}, {}], headers=other.headers)).status_code == 202


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"rate_limit_per_second": -1}, "rate_limit_per_second"),
        ({"rate_limit_per_second": "fast"}, "rate_limit_per_second"),
        ({"rate_limit_per_second": 1.5}, "rate_limit_per_second"),
        ({"rate_limit_burst": 0}, "rate_limit_burst"),
        ({"name": " "}, "name"),
    ],
)
async def test_patch_project_validation(client: httpx.AsyncClient, project: Project, body: dict[str, Any], attr: str) -> None:
    r = await client.patch(f"/api/projects/{project.id}", json=body, headers=project.admin.headers)
    assert r.status_code == 400 and r.json()["attr"] == attr, r.text


async def test_patch_project_is_admin_only(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    r = await client.patch(f"/api/projects/{project.id}", json={"rate_limit_per_second": 0}, headers=project.headers)
    assert r.status_code == 403
    r = await client.patch(f"/api/projects/{uuid.uuid4()}", json={"rate_limit_per_second": 0}, headers=admin.headers)
    assert r.status_code == 404
    r = await client.patch(f"/api/projects/{project.id}", json={"name": "renamed"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["name"] == "renamed"
