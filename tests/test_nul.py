"""U+0000 anywhere in a request is answered in the dialect's own format, never a 500.

PostgreSQL stores NUL in neither text nor jsonb, so it is refused before any
query: in a path (404: nothing stored can hold it), in a query parameter
(400 naming it), or in a body (400/422 naming the field). The same on SQLite.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import Project

PATHS = [
    ("/v1/projects/a%00b/events", "cdp"),
    ("/v1/projects/{p}/events/a%00b", "cdp"),
    ("/v1/projects/{p}/profiles/a%00b", "cdp"),
    ("/api/projects/a%00b/event_definitions/", "drf"),
    ("/api/projects/{p}/event_definitions/a%00b/", "drf"),
    ("/api/projects/{p}/schema_property_groups/a%00b/", "drf"),
    ("/api/projects/{p}/event_schemas/a%00b/", "drf"),
    ("/api/projects/{p}/violations/a%00b/replay", "drf"),
    ("/api/projects/a%00b/keys", "drf"),
    ("/api/projects/{p}/keys/a%00b", "drf"),
    ("/api/v2/events/a%00b", "jsonapi"),
    ("/platform/ingest/v1/a%00b", "ingest"),
]
QUERIES = [
    ("/api/projects/{p}/events?event=a%00b", "drf", "event"),
    ("/api/projects/{p}/event_definitions/?search=a%00b", "drf", "search"),
    ("/v1/projects/{p}/profiles?email=a%00b", "cdp", "email"),
    ("/v1/projects/{p}/events?nameEvent=a%00b", "cdp", "nameEvent"),
]


def envelope(r: httpx.Response, dialect: str) -> None:
    body = r.json()
    if dialect == "cdp":
        assert body["success"] is False and body["error"]["code"]
    elif dialect == "drf":
        assert set(body) == {"type", "code", "detail", "attr"}
    elif dialect == "jsonapi":
        assert body["errors"][0]["status"] == str(r.status_code)
    else:
        assert body["error"]["code"] == r.status_code


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize(("path", "dialect"), PATHS)
async def test_nul_in_a_path_is_404(client: httpx.AsyncClient, project: Project, path: str, dialect: str, method: str) -> None:
    r = await client.request(method, path.format(p=project.id), headers=project.headers)
    assert r.status_code == 404, r.text
    envelope(r, dialect)


@pytest.mark.parametrize(("path", "dialect", "name"), QUERIES)
async def test_nul_in_a_query_parameter_is_400_naming_it(client: httpx.AsyncClient, project: Project, path: str, dialect: str, name: str) -> None:
    r = await client.get(path.format(p=project.id), headers=project.headers)
    assert r.status_code == 400, r.text
    envelope(r, dialect)
    assert name in r.text


@pytest.mark.parametrize(
    ("method", "path", "doc", "field"),
    [
        ("POST", "/api/projects", {"name": "a\x00b"}, "name"),
        ("POST", "/api/projects/{p}/keys", {"name": "a\x00b", "scopes": ["*"]}, "name"),
        ("PATCH", "/api/projects/{p}", {"name": "a\x00b"}, "name"),
        ("POST", "/api/projects/{p}/event_definitions/", {"name": "a\x00b"}, "name"),
        ("POST", "/api/projects/{p}/event_definitions/", {"name": "d", "description": "a\x00b"}, "description"),
        ("POST", "/api/projects/{p}/schema_property_groups/", {"name": "g", "properties": [{"name": "a\x00", "property_type": "String"}]}, "properties__0__name"),
        ("POST", "/api/projects/{p}/event_schemas/", {"event_definition": "a\x00b", "property_group_id": "x"}, "event_definition"),
    ],
)
async def test_nul_in_a_body_is_400_naming_the_field(
    client: httpx.AsyncClient, project: Project, method: str, path: str, doc: dict[str, object], field: str
) -> None:
    headers = {**project.admin.headers, "Content-Type": "application/json"}
    r = await client.request(method, path.format(p=project.id), content=json.dumps(doc), headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["attr"] == field


async def test_nul_in_a_form_body_is_400(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(f"/api/projects/{project.id}/event_definitions/", content=b"name=a%00b", headers={**project.headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["attr"] == "name"
