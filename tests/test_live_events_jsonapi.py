"""Live events against the JSON:API 1.1 specification (jsonapi.org/format/1.1/):
the MUSTs a server has, each test naming its section. Every response these
tests (and all others) receive is also checked against the official schema
by the client's response hook (tests/support/jsonapi_schema.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.support import jsonapi_schema
from tests.test_live_events import JSONAPI, create, doc, headers, one_error


async def test_every_live_events_response_is_checked_against_the_official_schema(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#document-structure: the hook runs on /api/v2 responses, and the schema it uses rejects what 1.1 forbids."""
    before = jsonapi_schema.checked
    await client.get(f"/api/v2/projects/{project.id}/events", headers=project.headers)
    await client.get(f"/v1/projects/{project.id}/events", headers=project.headers)  # not JSON:API: not checked
    assert jsonapi_schema.checked == before + 1
    # Cases from the schema's own test suite (json-api/json-api _schemas/1.0/tests/response/invalid).
    assert jsonapi_schema.problems({"data": {"type": "events"}})  # resource_must_have_id_member
    assert jsonapi_schema.problems({"data": {"id": "1", "type": "events", "attributes": {"id": 1}}})  # attributes_must_not_have_id_member
    assert jsonapi_schema.problems({"data": None, "errors": [{"status": "400"}]})  # data_and_errors_must_not_coexist
    assert jsonapi_schema.problems({"errors": [{"status": 400}]})  # status is a string
    assert not jsonapi_schema.problems({"errors": [{"status": "400", "source": {"header": "Accept"}}]})


# -- query parameters ----------------------------------------------------------------


async def test_unknown_query_parameters_are_400_on_every_route(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#query-parameters-custom: a query parameter the server "does not know how to
    process" MUST be answered 400 Bad Request (source.parameter names it)."""
    data = await create(client, project)
    one = f"/api/v2/events/{data['id']}"
    cases = [
        ("GET", one, {"foo": "bar"}, "foo"),
        ("GET", one, {"sort": "start_time"}, "sort"),  # a collection's parameter on a single resource
        ("GET", f"/api/v2/projects/{project.id}/events", {"foo": "bar"}, "foo"),
        ("GET", f"/api/v2/projects/{project.id}/events", {"page[size]": "2"}, "page[size]"),
        ("GET", f"/api/v2/projects/{project.id}/events", {"filter[name]": "x"}, "filter[name]"),
        ("GET", f"{one}/elements", {"filter[state]": "past"}, "filter[state]"),
        ("DELETE", one, {"foo": "bar"}, "foo"),
    ]
    for method, url, params, name in cases:
        err = one_error(await client.request(method, url, params=params, headers=project.headers), 400)
        assert err["source"] == {"parameter": name}, (method, url, params)
    body = {"data": {"type": "events", "id": data["id"], "attributes": {"name": "x"}}}
    err = one_error(await client.patch(one, params={"foo": "bar"}, json=body, headers=headers(project)), 400)
    assert err["source"] == {"parameter": "foo"}
    err = one_error(await client.post("/api/v2/events", params={"foo": "bar"}, json=doc(project.id, name="n", start_mode="manual", start_at=1, duration=1), headers=headers(project)), 400)
    assert err["source"] == {"parameter": "foo"}
    # Nothing was changed by the refused requests.
    r = await client.get(one, headers=project.headers)
    assert r.json()["data"]["attributes"]["name"] == "Show"


async def test_monterosa_only_listings_filter_keeps_working(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#fetching-filtering: ``filter[only_listings]`` is Monterosa's own filter — known, so not a 400;
    every live event here is a listing, so it narrows nothing."""
    await create(client, project)
    url = f"/api/v2/projects/{project.id}/events"
    for value in ("true", "false", "1"):
        r = await client.get(url, params={"filter[only_listings]": value, "filter[state]": "future"}, headers=project.headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == 1
    err = one_error(await client.get(url, params={"filter[only_listings]": "perhaps"}, headers=project.headers), 400)
    assert err["source"] == {"parameter": "filter[only_listings]"}


# -- sparse fieldsets ----------------------------------------------------------------


async def test_sparse_fieldsets_are_honoured(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#fetching-sparse-fieldsets: with ``fields[TYPE]`` an endpoint "MUST NOT include
    additional fields in resource objects of that type" — attributes and relationships alike, primary and included."""
    data = await create(client, project)
    url = f"/api/v2/events/{data['id']}"
    r = await client.get(url, params={"fields[events]": "name"}, headers=project.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"id": data["id"], "type": "events", "attributes": {"name": "Show"}, "links": {"self": data["links"]["self"]}}
    r = await client.get(url, params={"fields[events]": "state,project"}, headers=project.headers)
    resource = r.json()["data"]
    assert resource["attributes"] == {"state": "future"}
    assert resource["relationships"] == {"project": {"data": {"id": project.id, "type": "projects"}}}
    # An empty fieldset: no fields at all.
    r = await client.get(url, params={"fields[events]": ""}, headers=project.headers)
    assert set(r.json()["data"]) == {"id", "type", "links"}
    # Included types have their own fieldsets.
    params = {"include": "stats,project", "fields[events]": "name,stats", "fields[projects]": "name", "fields[stats]": ""}
    r = await client.get(url, params=params, headers=project.headers)
    body = r.json()
    assert set(body["data"]["relationships"]) == {"stats"}
    included = {item["type"]: item for item in body["included"]}
    assert set(included["projects"]["attributes"]) == {"name"}
    assert included["stats"] == {"id": data["id"], "type": "stats"}
    # Collections and the 201 of a create honour them too.
    r = await client.get(f"/api/v2/projects/{project.id}/events", params={"fields[events]": "name"}, headers=project.headers)
    assert [d["attributes"] for d in r.json()["data"]] == [{"name": "Show"}]
    body = doc(project.id, name="Sparse", start_mode="manual", start_at=1, duration=1)
    r = await client.post("/api/v2/events", params={"fields[events]": "name"}, json=body, headers=headers(project))
    assert r.status_code == 201 and r.json()["data"]["attributes"] == {"name": "Sparse"}
    assert r.headers["location"] == r.json()["data"]["links"]["self"]


async def test_unknown_fieldset_types_and_fields_are_400(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#fetching-sparse-fieldsets: a fieldset names fields of a type; one that names
    none this API has would silently return everything or nothing, so it is refused (source.parameter)."""
    data = await create(client, project)
    for params in ({"fields[event]": "name"}, {"fields[events]": "name,title"}, {"fields[stats]": "count"}):
        err = one_error(await client.get(f"/api/v2/events/{data['id']}", params=params, headers=project.headers), 400)
        assert err["source"] == {"parameter": next(iter(params))}


# -- content negotiation -------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"',
        f'{JSONAPI}; ext="https://example.com/ext/unknown"; profile="https://example.com/p"',
        f"{JSONAPI}; charset=utf-8",
        f"{JSONAPI}; version=1.1",
    ],
)
async def test_content_type_with_unsupported_parameters_or_extensions_is_415(client: httpx.AsyncClient, project: Project, content_type: str) -> None:
    """jsonapi.org/format/1.1/#content-negotiation-servers: 415 Unsupported Media Type when the JSON:API media type
    in Content-Type has a parameter other than ext/profile, or an ext naming an extension the server does not support."""
    body = doc(project.id, name="n", start_mode="manual", start_at=1, duration=1)
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project, content_type)), 415)
    assert err["source"] == {"header": "Content-Type"}
    data = await create(client, project)
    patch = {"data": {"type": "events", "id": data["id"], "attributes": {"name": "x"}}}
    one_error(await client.patch(f"/api/v2/events/{data['id']}", json=patch, headers=headers(project, content_type)), 415)


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (f'{JSONAPI}; ext="https://example.com/ext/unknown"', 406),
        (f"{JSONAPI}; charset=utf-8", 406),
        (f'{JSONAPI}; version=2, {JSONAPI}; ext="https://jsonapi.org/ext/atomic"', 406),
        (f"{JSONAPI}; charset=utf-8, */*", 406),  # the rule is about the instances of the JSON:API type
        (f"{JSONAPI};q=0, application/json", 406),
        (f'{JSONAPI}; charset=utf-8, {JSONAPI}; profile="https://example.com/p"', 200),
        (f'{JSONAPI}; ext="https://example.com/x", {JSONAPI}', 200),
        (f"{JSONAPI};q=0.5", 200),
        ("*/*", 200),
        ("application/json", 200),
    ],
)
async def test_accept_negotiation(client: httpx.AsyncClient, project: Project, accept: str, status: int) -> None:
    """jsonapi.org/format/1.1/#content-negotiation-servers: 406 Not Acceptable when every instance of the JSON:API
    media type in Accept has a parameter other than ext/profile, or an unsupported extension; one usable instance suffices."""
    data = await create(client, project)
    r = await client.get(f"/api/v2/events/{data['id']}", headers={**project.headers, "Accept": accept})
    if status == 406:
        assert one_error(r, 406)["source"] == {"header": "Accept"}
    else:
        assert r.status_code == 200, r.text


# -- creating --------------------------------------------------------------------------


async def test_client_generated_id_on_create_is_403(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#crud-creating-client-ids: "A server MUST return 403 Forbidden in response to an
    unsupported request to create a resource with a client-generated ID." A ``lid`` (1.1) is no id and is fine."""
    body: dict[str, Any] = doc(project.id, name="n", start_mode="manual", start_at=1, duration=1)
    body["data"]["id"] = str(uuid.uuid4())
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project)), 403)
    assert err["source"] == {"pointer": "/data/id"}
    r = await client.get(f"/api/v2/events/{body['data']['id']}", headers=project.headers)
    assert r.status_code == 404  # not created under that id, nor under another
    r = await client.get(f"/api/v2/projects/{project.id}/events", headers=project.headers)
    assert r.json()["data"] == []
    del body["data"]["id"]
    body["data"]["lid"] = "local-1"
    r = await client.post("/api/v2/events", json=body, headers=headers(project))
    assert r.status_code == 201, r.text


async def test_patch_answers_204_as_monterosa_documents(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#crud-updating-responses-204: an update that changes only what it sent (a rename)
    may be answered 204 No Content. Monterosa documents 204 for every PATCH, actions included (SPEC §6 keeps it,
    although #crud-updating-responses-200 would want 200 when a start changes start_at too)."""
    data = await create(client, project)
    body = {"data": {"type": "events", "id": data["id"], "attributes": {"name": "Renamed"}}}
    r = await client.patch(f"/api/v2/events/{data['id']}", json=body, headers=headers(project))
    assert r.status_code == 204 and r.content == b""
