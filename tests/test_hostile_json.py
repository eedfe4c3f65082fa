"""JSON nested past the parser's recursion limit is a 400 naming the limit, never a 500 (issue 20, item 3).

Every route that takes JSON decodes it through ``http.body.decode_json``;
these send a deeply nested value inside an otherwise well-formed request to
each of them, in JSON, NDJSON and a form field, and expect the dialect's own
envelope. Depth 600 parses (it is within the recursion limit) and the route's
own rules answer; 1,000 and 100,000 are refused by the parser.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Project
from tests.test_nul import envelope

JSONAPI = "application/vnd.api+json"
JSON = "application/json"

ROUTES = [
    # (method, path, content type, body with {deep} where the nested value goes, dialect)
    ("POST", "/v1/projects/{p}/events", JSON, '{{"nameEvent": "x", "attributes": {{"a": {deep}}}}}', "cdp"),
    ("POST", "/v1/projects/{p}/events", JSON, '{{"nameEvent": "x", "unknownField": {deep}}}', "cdp"),
    ("POST", "/platform/ingest/v1/events", JSON, '[{{"event.name": "x", "deep": {deep}}}]', "ingest"),
    ("POST", "/platform/ingest/v1/events", "application/x-ndjson", '{{"event.name": "x"}}\n{{"event.name": "y", "deep": {deep}}}\n', "ingest"),
    # The admin API reads at most 64 KiB: 100,000 levels are 413 there.
    ("POST", "/api/projects", JSON, '{{"name": {deep}}}', "admin"),
    ("PATCH", "/api/projects/{p}", JSON, '{{"name": {deep}}}', "admin"),
    ("POST", "/api/projects/{p}/keys", JSON, '{{"name": "k", "scopes": {deep}}}', "admin"),
    ("POST", "/api/projects/{p}/event_definitions/", JSON, '{{"name": "x", "description": {deep}}}', "drf"),
    (
        "POST",
        "/api/projects/{p}/schema_property_groups/",
        JSON,
        '{{"name": "g", "properties": [{{"name": "a", "property_type": "Numeric", "validation_rules": {{"minimum": {deep}}}}}]}}',
        "drf",
    ),
    ("POST", "/api/projects/{p}/schema_property_groups/", "application/x-www-form-urlencoded", "name=g&properties={form}", "drf"),
    ("POST", "/api/projects/{p}/event_schemas/", JSON, '{{"event_definition": {deep}, "property_group_id": "x"}}', "drf"),
    ("POST", "/api/v2/events", JSONAPI, '{{"data": {{"type": "events", "attributes": {{"name": "n", "settings": {deep}}}}}}}', "jsonapi"),
    ("PATCH", "/api/v2/events/{live}", JSONAPI, '{{"data": {{"type": "events", "id": "{live}", "attributes": {{"settings": {deep}}}}}}}', "jsonapi"),
]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
async def live_id(client: httpx.AsyncClient, project: Project) -> str:
    doc = {"data": {"type": "events", "relationships": {"project": {"data": {"type": "projects", "id": project.id}}}, "attributes": {"name": "Show", "start_mode": "manual", "start_at": 1458487800, "duration": 60}}}
    r = await client.post("/api/v2/events", json=doc, headers={**project.headers, "Content-Type": JSONAPI})
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("method", "path", "content_type", "template", "dialect", "depth"),
    [(*route, depth) for route in ROUTES for depth in (600, 1_000, 30_000, 100_000) if not (route[-1] == "admin" and depth > 30_000)],
)
async def test_deep_json_is_400_in_the_dialects_envelope(
    client: httpx.AsyncClient, project: Project, live_id: str, method: str, path: str, content_type: str, template: str, dialect: str, depth: int
) -> None:
    deep = nested(depth)
    body = template.format(deep=deep, form=quote(deep), live=live_id)
    headers = {**(project.admin if dialect == "admin" else project.key).headers, "Content-Type": content_type}
    r = await client.request(method, path.format(p=project.id, live=live_id), content=body.encode(), headers=headers)
    if depth < 1_000:  # parsed: the route's own rules answer (an unknown CDP field is ignored)
        assert r.status_code in (200, 400, 422), r.text
        return
    assert r.status_code == 400, r.text
    envelope(r, "drf" if dialect == "admin" else dialect)
    assert "at most 512 levels" in r.text, r.text


async def test_depth_within_the_limit_is_still_parsed(client: httpx.AsyncClient, project: Project) -> None:
    # Unknown CDP fields are ignored, however deep: the parser took all of it.
    body = '{"nameEvent": "deep-but-ignored", "unknownField": %s}' % nested(512)
    r = await client.post(f"/v1/projects/{project.id}/events", content=body, headers={**project.headers, "Content-Type": JSON})
    assert r.status_code == 200, r.text


def test_import_of_a_deep_file_names_the_line(project: Project, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.ndjson"
    path.write_text('{"event.name": "ok"}\n{"event.name": "deep", "x": %s}\n' % nested(100_000))
    done = subprocess.run(
        [sys.executable, "-m", "eventdock", "import", str(path), "--project", project.id, "--database", database_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "deep.ndjson:2" in done.stderr and "512 levels" in done.stderr, done.stderr
