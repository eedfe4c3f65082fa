"""``Idempotency-Key`` is UTF-8, as JSON ids are (issue 20, item 7).

Servers hand header bytes to the app as latin-1, so ``café`` used to become
the id ``cafÃ©`` and the same id sent through CDP and through generic
``event.id`` made two events. Bytes that are not UTF-8 are a field error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Project
from tests.support.server import Server

KEY = "café-☕-𝄞"


async def stored_ids(client: httpx.AsyncClient, project: Project, name: str) -> list[str]:
    r = await client.get(f"/v1/projects/{project.id}/events", params={"nameEvent": name}, headers=project.headers)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["data"]["items"]]


async def test_the_same_non_ascii_id_through_both_dialects_is_one_event(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": "utf8"}, headers={**project.headers, "Idempotency-Key": KEY.encode()})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == KEY
    r = await client.post("/platform/ingest/v1/events", json={"event.name": "utf8", "event.id": KEY}, headers=project.headers)
    assert r.status_code == 202, r.text
    assert await stored_ids(client, project, "utf8") == [KEY]


async def test_invalid_utf8_key_is_a_field_error(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": "latin"}, headers={**project.headers, "Idempotency-Key": b"caf\xe9"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["fieldErrors"] == [{"field": "Idempotency-Key", "message": "must be UTF-8 text", "rejectedValue": "caf\\xe9"}]
    assert await stored_ids(client, project, "latin") == []


def test_over_a_real_socket(tmp_path: Path) -> None:
    """The server's HTTP parser passes the raw bytes through: the same answer from a real process."""
    url = f"sqlite:///{tmp_path}/idem.db"
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
    boot = json.loads(out.stdout)
    admin = {"Authorization": f"Bearer {boot['key']['token']}"}
    project_id = boot["project"]["id"]
    with Server(url) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post(f"/api/projects/{project_id}/keys", json={"name": "w", "scopes": ["*"]}, headers=admin)
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = http.post(f"/v1/projects/{project_id}/events", json={"nameEvent": "utf8"}, headers={**headers, "Idempotency-Key": KEY.encode()})
        assert r.status_code == 200 and r.json()["data"]["id"] == KEY, r.text
        r = http.post("/platform/ingest/v1/events", json={"event.name": "utf8", "event.id": KEY}, headers=headers)
        assert r.status_code == 202, r.text
        r = http.get(f"/v1/projects/{project_id}/events", params={"nameEvent": "utf8"}, headers=headers)
        assert [item["id"] for item in r.json()["data"]["items"]] == [KEY]
        r = http.post(f"/v1/projects/{project_id}/events", json={"nameEvent": "utf8"}, headers={**headers, "Idempotency-Key": b"\xff\xfe"})
        assert r.status_code == 400 and r.json()["error"]["fieldErrors"][0]["field"] == "Idempotency-Key", r.text
