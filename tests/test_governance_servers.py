"""Seed 001's own requests against a real server, and a schema change made on
one server enforced by another sharing the PostgreSQL database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server


def init_admin(url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)["key"]["token"]  # type: ignore[no-any-return]


def new_project(base: str, admin: str) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {admin}"}
    project = httpx.post(f"{base}/api/projects", json={"name": "seed"}, headers=headers).json()["id"]
    r = httpx.post(f"{base}/api/projects/{project}/keys", json={"name": "posthog", "scopes": ["*"]}, headers=headers)
    return project, r.json()["token"]


def curl(script: str, env: dict[str, str]) -> Any:
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env, check=True)
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_seed_requests_work_unchanged(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, "gov_seed")
    try:
        admin = init_admin(url)
        with Server(url) as server:
            project, token = new_project(server.url, admin)
            auth = {"Authorization": f"Bearer {token}"}
            api = f"{server.url}/api/projects/{project}"
            definition = httpx.post(f"{api}/event_definitions/", data={"name": "purchase"}, headers=auth).json()["id"]
            other = httpx.post(f"{api}/event_definitions/", data={"name": "refund"}, headers=auth).json()["id"]
            group = httpx.post(f"{api}/schema_property_groups/", json={"name": "money", "properties": []}, headers=auth).json()["id"]
            env = {"POSTHOG_PERSONAL_API_KEY": token, "PATH": "/usr/bin:/bin", "HOST": server.url, "PID": project}
            # List (curl, verbatim but for the host and id).
            listed = curl('curl -s -H "Authorization: Bearer $POSTHOG_PERSONAL_API_KEY" $HOST/api/projects/$PID/event_schemas/', env)
            assert listed == {"count": 0, "next": None, "previous": None, "results": []}
            # Create: the seed labels its `-d a="x",` form body application/json.
            created = curl(
                "curl -s -H 'Content-Type: application/json' -H \"Authorization: Bearer $POSTHOG_PERSONAL_API_KEY\" "
                f'$HOST/api/projects/$PID/event_schemas/ -d event_definition="{definition}", -d property_group_id="{group}"',
                env,
            )
            assert created["event_definition"] == definition and created["property_group"]["id"] == group, created
            schema_id = created["id"]
            # Update (curl -X PATCH with a form body), then the python variant (requests' data=).
            updated = curl(
                f'curl -s -X PATCH -H "Authorization: Bearer $POSTHOG_PERSONAL_API_KEY" $HOST/api/projects/$PID/event_schemas/{schema_id}/ '
                f'-d event_definition="{other}"',
                env,
            )
            assert updated["event_definition"] == other
            r = httpx.patch(f"{api}/event_schemas/{schema_id}/", headers=auth, data={"event_definition": definition})
            assert r.status_code == 200 and r.json()["event_definition"] == definition
            r = httpx.get(f"{api}/event_schemas/", headers=auth)
            assert r.json()["count"] == 1 and r.json()["results"][0]["property_group"]["name"] == "money"
            # Delete (curl).
            curl(f'curl -s -X DELETE -H "Authorization: Bearer $POSTHOG_PERSONAL_API_KEY" $HOST/api/projects/$PID/event_schemas/{schema_id}/', env)
            assert httpx.get(f"{api}/event_schemas/{schema_id}/", headers=auth).status_code == 404
    finally:
        drop_database(url)


def test_schema_change_reaches_another_server_within_two_seconds(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("several nodes share one PostgreSQL (SPEC §9); SQLite is one machine's file")
    url = fresh_database_url("postgresql", tmp_path, "gov_nodes")
    try:
        admin = init_admin(url)
        with Server(url) as a, Server(url) as b:
            project, token = new_project(a.url, admin)
            auth = {"Authorization": f"Bearer {token}"}
            ingest_b = f"{b.url}/platform/ingest/v1/events"
            # B sees the project (and its empty schemas) and defines the event.
            assert httpx.post(ingest_b, json={"event.name": "buy"}, headers=auth).headers["X-Eventdock-Quarantined"] == "0"
            api_a = f"{a.url}/api/projects/{project}"
            (definition,) = httpx.get(f"{api_a}/event_definitions/", headers=auth).json()["results"]
            httpx.patch(f"{api_a}/event_definitions/{definition['id']}/", json={"enforcement_mode": "reject"}, headers=auth)
            group = httpx.post(
                f"{api_a}/schema_property_groups/",
                json={"name": "g", "properties": [{"name": "amount", "property_type": "Numeric", "is_required": True}]},
                headers=auth,
            ).json()["id"]
            r = httpx.post(f"{api_a}/event_schemas/", json={"event_definition": definition["id"], "property_group_id": group}, headers=auth)
            assert r.status_code == 201
            changed = time.monotonic()
            while httpx.post(ingest_b, json={"event.name": "buy"}, headers=auth).headers["X-Eventdock-Quarantined"] != "1":
                assert time.monotonic() - changed < 2.0, "server B still accepts the event 2 s after the change"
                time.sleep(0.05)
            # Deleting the definition on A: B re-creates it with the next event of that name.
            assert httpx.delete(f"{api_a}/event_definitions/{definition['id']}/", headers=auth).status_code == 204
            deleted = time.monotonic()
            while True:
                httpx.post(ingest_b, json={"event.name": "buy", "amount": 1}, headers=auth)
                names = [d["name"] for d in httpx.get(f"{api_a}/event_definitions/", headers=auth).json()["results"]]
                if names == ["buy"]:
                    break
                assert time.monotonic() - deleted < 2.0, "server B did not re-create the deleted definition"
                time.sleep(0.05)
    finally:
        drop_database(url)
