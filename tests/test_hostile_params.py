"""Integers in query strings and cursors are bounded, never a 500 (issue 20, item 4).

Both databases hold signed 64-bit integers: a value past them (2^63, 2^64),
a negative count, a non-number ("²" passes ``str.isdigit`` but not ``int``;
5,000 digits are more than ``int`` converts) is a 400 naming the parameter in
the dialect's envelope, on both back ends. Times and cursors carry integers
too and are held to the same bounds.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.test_nul import envelope

BAD_COUNTS = [str(2**63), str(2**64), "-1", "abc", "1.5", "²", "9" * 5000]
COUNT_PARAMS = [
    # (path, parameter, dialect)
    ("/api/projects/{p}/event_definitions/", "offset", "drf"),
    ("/api/projects/{p}/event_definitions/", "limit", "drf"),
    ("/api/projects/{p}/event_schemas/", "offset", "drf"),
    ("/api/projects/{p}/event_schemas/", "limit", "drf"),
    ("/api/projects/{p}/schema_property_groups/", "offset", "drf"),
    ("/api/projects/{p}/schema_property_groups/", "limit", "drf"),
    ("/api/projects/{p}/violations", "offset", "drf"),
    ("/api/projects/{p}/violations", "limit", "drf"),
    ("/api/projects/{p}/events", "limit", "drf"),
    ("/v1/projects/{p}/events", "limit", "cdp"),
    ("/v1/projects/{p}/profiles/{profile}/events", "limit", "cdp"),
    ("/api/v2/projects/{p}/events", "page[count]", "jsonapi"),
]
TIME_PARAMS = [
    ("/api/projects/{p}/events", "after", "drf"),
    ("/api/projects/{p}/events", "before", "drf"),
    ("/api/projects/{p}/events/trend", "after", "drf"),
    ("/api/projects/{p}/events/trend", "before", "drf"),
    ("/api/projects/{p}/events/export", "after", "drf"),
    ("/v1/projects/{p}/events", "after", "cdp"),
    ("/v1/projects/{p}/events", "before", "cdp"),
]
# Past year 9999 or before year 1 even read as nanoseconds (2^63 ns is in 2262: a time).
BAD_TIMES = ["9" * 30, "-" + "9" * 30, "9" * 5000, "99999-01-01T00:00:00Z", "1e400"]
CURSOR_PARAMS = [
    ("/api/projects/{p}/events", "cursor", "drf"),
    ("/v1/projects/{p}/events", "cursor", "cdp"),
    ("/v1/projects/{p}/profiles/{profile}/events", "cursor", "cdp"),
    ("/api/v2/projects/{p}/events", "page[cursor]", "jsonapi"),
]


def cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


BAD_CURSORS = [cursor([2**63, "x"]), cursor([2**64, "x"]), cursor([-(2**63) - 1, "x"]), cursor([1, "a\x00b"]), cursor(["1", "x"]), "not-a-cursor"]


@pytest.fixture
async def profile_id(client: httpx.AsyncClient, project: Project) -> str:
    r = await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": "e", "email": "p@example.com"}, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["profileId"]  # type: ignore[no-any-return]


async def refused(client: httpx.AsyncClient, project: Project, profile_id: str, path: str, name: str, value: str, dialect: str) -> None:
    r = await client.get(path.format(p=project.id, profile=profile_id), params={name: value}, headers=project.headers)
    assert r.status_code == 400, r.text
    envelope(r, dialect)
    body = r.json()
    if dialect == "drf":
        assert body["type"] == "validation_error" and body["attr"] == name, body
    elif dialect == "cdp":
        assert body["error"]["fieldErrors"][0]["field"] == name, body
    else:
        assert body["errors"][0]["source"] == {"parameter": name}, body


@pytest.mark.parametrize("value", BAD_COUNTS)
@pytest.mark.parametrize(("path", "name", "dialect"), COUNT_PARAMS)
async def test_bad_count_is_400_naming_it(client: httpx.AsyncClient, project: Project, profile_id: str, path: str, name: str, dialect: str, value: str) -> None:
    await refused(client, project, profile_id, path, name, value, dialect)


@pytest.mark.parametrize("value", BAD_TIMES)
@pytest.mark.parametrize(("path", "name", "dialect"), TIME_PARAMS)
async def test_time_out_of_range_is_400_naming_it(client: httpx.AsyncClient, project: Project, profile_id: str, path: str, name: str, dialect: str, value: str) -> None:
    await refused(client, project, profile_id, path, name, value, dialect)


@pytest.mark.parametrize("value", BAD_CURSORS)
@pytest.mark.parametrize(("path", "name", "dialect"), CURSOR_PARAMS)
async def test_forged_cursor_is_400_naming_it(client: httpx.AsyncClient, project: Project, profile_id: str, path: str, name: str, dialect: str, value: str) -> None:
    await refused(client, project, profile_id, path, name, value, dialect)


@pytest.mark.parametrize("path", ["event_definitions/", "event_schemas/", "schema_property_groups/", "violations"])
async def test_largest_offset_is_an_empty_page(client: httpx.AsyncClient, project: Project, path: str) -> None:
    r = await client.get(f"/api/projects/{project.id}/{path}", params={"offset": str(2**63 - 1), "limit": "1000000"}, headers=project.headers)
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [] and r.json()["next"] is None


async def test_drf_limit_is_still_cut_to_its_maximum_and_zero_means_the_default(client: httpx.AsyncClient, project: Project) -> None:
    for name in ("a", "b"):
        r = await client.post(f"/api/projects/{project.id}/event_definitions/", json={"name": name}, headers=project.headers)
        assert r.status_code == 201, r.text
    r = await client.get(f"/api/projects/{project.id}/event_definitions/", params={"limit": "0", "offset": "1"}, headers=project.headers)
    assert r.status_code == 200 and r.json()["count"] == 2 and len(r.json()["results"]) == 1


async def test_event_timestamp_out_of_range_reads_as_ingest_time(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post("/platform/ingest/v1/events", json=[{"event.name": "far", "timestamp": -(10**300)}, {"event.name": "far", "timestamp": "-" + "9" * 30}], headers=project.headers)
    assert r.status_code == 202, r.text
    r = await client.get(f"/v1/projects/{project.id}/events", params={"nameEvent": "far"}, headers=project.headers)
    assert r.status_code == 200 and len(r.json()["data"]["items"]) == 2
