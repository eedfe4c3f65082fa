"""The request examples of seeds 000 and 003, as printed there, against a real
server with only the host and the token changed; then read back through the
CDP read endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server

# Seed 003, "Request body JSON model", verbatim.
SEED_003_BODY = """[
{
"event.id": 1,
"additionalProp1": "bar",
"additionalProp2": "foo",
"additionalProp3": [
{
"prop1": "string",
"prop2": 1
}
]
},
{
"event.id": 2,
"additionalProp1": 123.45,
"additionalProp2": "lorem",
"additionalProp3": [
{
"prop1": "string",
"prop2": 1
}
]
}
]"""

# Seed 000: a CreateEventRequestDTO with every field it documents.
SEED_000_BODY = {
    "nameEvent": "string",
    "tagManagerUUID": "string",
    "uuidLink": "string",
    "uuidPixel": "string",
    "uuidVisitor": "string",
    "customerUUID": "string",
    "softId": "string",
    "email": "string",
    "phone": "string",
    "firstName": "string",
    "lastName": "string",
    "link": "string",
    "fingerprint": "string",
    "attributes": {"additionalProp1": "string", "additionalProp2": "string", "additionalProp3": "string"},
}


@pytest.fixture(scope="module")
def served(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, project id, token with events:write and events:read) on a fresh database."""
    url = fresh_database_url(backend, tmp_path_factory.mktemp("seeds"), f"seeds_{backend}")
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True)
    admin = {"Authorization": f"Bearer {json.loads(out.stdout)['key']['token']}"}
    try:
        with Server(url) as server:
            project = httpx.post(f"{server.url}/api/projects", json={"name": "seeds"}, headers=admin).json()["id"]
            key = httpx.post(
                f"{server.url}/api/projects/{project}/keys", json={"name": "seeds", "scopes": ["openpipeline.events", "events:read"]}, headers=admin
            ).json()
            yield server.url, project, key["token"]
    finally:
        drop_database(url)


def test_seed_003_request_body(served: tuple[str, str, str]) -> None:
    base, project, token = served
    r = httpx.post(
        f"{base}/platform/ingest/v1/events",
        content=SEED_003_BODY,
        headers={"Authorization": f"Api-Token {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 202 and r.content == b""
    headers = {"Authorization": f"Bearer {token}"}
    first = httpx.get(f"{base}/v1/projects/{project}/events/1", headers=headers).json()["data"]
    assert first["nameEvent"] == "event" and first["source"] == "ingest"
    assert first["properties"] == json.loads(SEED_003_BODY)[0]
    second = httpx.get(f"{base}/v1/projects/{project}/events/2", headers=headers).json()["data"]
    assert second["properties"]["additionalProp1"] == 123.45
    # The same request again is acknowledged and stores nothing twice.
    assert httpx.post(f"{base}/platform/ingest/v1/events", content=SEED_003_BODY, headers={"Authorization": f"Api-Token {token}", "Content-Type": "application/json"}).status_code == 202
    ids = [i["id"] for i in httpx.get(f"{base}/v1/projects/{project}/events", headers=headers).json()["data"]["items"] if i["source"] == "ingest"]
    assert sorted(ids) == ["1", "2"]


def test_seed_000_request_body(served: tuple[str, str, str]) -> None:
    base, project, token = served
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{base}/v1/projects/{project}/events", json=SEED_000_BODY, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None
    event_id = body["data"]["id"]
    got = httpx.get(f"{base}/v1/projects/{project}/events/{event_id}", headers=headers).json()["data"]
    assert got["nameEvent"] == "string" and got["source"] == "cdp"
    expected = {**SEED_000_BODY["attributes"], **{k: v for k, v in SEED_000_BODY.items() if k not in ("nameEvent", "attributes")}}  # type: ignore[dict-item]
    assert got["properties"] == expected
    listed = httpx.get(f"{base}/v1/projects/{project}/events", params={"nameEvent": "string"}, headers=headers).json()["data"]
    assert [i["id"] for i in listed["items"]] == [event_id]
