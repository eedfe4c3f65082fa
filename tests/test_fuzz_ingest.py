"""Property: no body, however odd, makes either ingest route answer 500;
every answer is in the dialect's own envelope."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Key, create_project

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
events = st.dictionaries(
    st.sampled_from(["event.id", "event.name", "event.type", "timestamp", "nameEvent", "attributes", "email", "x"]) | st.text(max_size=8),
    json_values,
    max_size=6,
)
bodies = st.one_of(json_values, events, st.lists(events, max_size=4)).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)

# One project per back end (per client), made on the first example.
_projects: dict[int, Any] = {}


async def _project(client: httpx.AsyncClient, admin: Key) -> Any:
    if id(client) not in _projects:
        _projects[id(client)] = await create_project(client, admin)
    return _projects[id(client)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
async def test_arbitrary_bodies_never_500(client: httpx.AsyncClient, admin: Key, body: bytes) -> None:
    project = await _project(client, admin)
    headers = {**project.headers, "Content-Type": "application/json"}
    r = await client.post("/platform/ingest/v1/events", content=body, headers=headers)
    assert r.status_code in (202, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] == 400
    r = await client.post(f"/v1/projects/{project.id}/events", content=body, headers=headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] in ("VALIDATION_ERROR", "MALFORMED_JSON")
