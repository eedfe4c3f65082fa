"""CDP events API (SPEC §4, seed 000), through HTTP."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Key, Project, create_project

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def url(project_id: str) -> str:
    return f"/v1/projects/{project_id}/events"


def wrapped_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"success", "data", "error"}
    assert body["success"] is False and body["data"] is None
    error = body["error"]
    assert set(error) == {"errorId", "code", "message", "details", "fieldErrors", "timestamp", "meta"}
    assert error["code"] == code
    uuid.UUID(error["errorId"])
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["timestamp"], int) and abs(error["timestamp"] - time.time() * 1000) < 60_000
    assert error["details"] == {} and error["meta"] == {}
    return error  # type: ignore[no-any-return]


def field_errors(r: httpx.Response) -> dict[str, Any]:
    error = wrapped_error(r, 400, "VALIDATION_ERROR")
    for fe in error["fieldErrors"]:
        assert set(fe) == {"field", "message", "rejectedValue"}
    return {fe["field"]: fe["rejectedValue"] for fe in error["fieldErrors"]}


async def listing(client: httpx.AsyncClient, project: Project, **params: Any) -> dict[str, Any]:
    r = await client.get(url(project.id), params=params, headers=project.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None
    return body["data"]  # type: ignore[no-any-return]


# -- create ----------------------------------------------------------------------


async def test_success_wrapper_exactly(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(url(project.id), json={"nameEvent": "page_view"}, headers=project.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "data", "error"}
    assert body["success"] is True and body["error"] is None
    data = body["data"]
    assert set(data) == {"id", "projectUuid", "nameEvent", "profileId", "timestamp", "receivedAt"}
    assert data["projectUuid"] == project.id and data["nameEvent"] == "page_view"
    assert uuid.UUID(data["id"]).version == 7
    assert TS.match(data["timestamp"]) and TS.match(data["receivedAt"])
    got = (await client.get(f"{url(project.id)}/{data['id']}", headers=project.headers)).json()["data"]
    assert got["timestamp"] == data["timestamp"] and got["source"] == "cdp"


async def test_properties_are_attributes_plus_named_fields(client: httpx.AsyncClient, project: Project) -> None:
    body = {
        "nameEvent": "purchase",
        "email": "A@example.com",
        "phone": None,
        "uuidLink": "link-1",
        "attributes": {"email": "attr@example.com", "sku": "X1", "uuidLink": "ignored"},
        "unknownField": {"anything": [1, 2]},
    }
    r = await client.post(url(project.id), json=body, headers=project.headers)
    assert r.status_code == 200, r.text
    got = (await client.get(f"{url(project.id)}/{r.json()['data']['id']}", headers=project.headers)).json()["data"]
    assert got["properties"] == {"email": "A@example.com", "sku": "X1", "uuidLink": "link-1"}
    assert set(got) == {"id", "projectUuid", "nameEvent", "timestamp", "receivedAt", "source", "profileId", "properties"}


async def test_every_bad_field_gets_its_own_field_error(client: httpx.AsyncClient, project: Project) -> None:
    body = {"nameEvent": "  ", "email": 5, "softId": True, "link": {"a": 1}, "attributes": {"ok": "x", "n": 1, "b": None}}
    errors = field_errors(await client.post(url(project.id), json=body, headers=project.headers))
    assert errors == {"nameEvent": "  ", "email": 5, "softId": True, "link": {"a": 1}, "attributes.n": 1, "attributes.b": None}
    assert (await listing(client, project))["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "nameEvent"),
        ({"nameEvent": None}, "nameEvent"),
        ({"nameEvent": ""}, "nameEvent"),
        ({"nameEvent": 12}, "nameEvent"),
        ({"nameEvent": "x" * 201}, "nameEvent"),
        ({"nameEvent": "ok", "attributes": None}, "attributes"),
        ({"nameEvent": "ok", "attributes": ["a"]}, "attributes"),
        ({"nameEvent": "ok", "attributes": "a"}, "attributes"),
        ({"nameEvent": "ok", "customerUUID": 1}, "customerUUID"),
        ({"nameEvent": "ok", "attributes": {"k" * 300: "v"}}, None),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, project: Project, body: dict[str, Any], field: str | None) -> None:
    errors = field_errors(await client.post(url(project.id), json=body, headers=project.headers))
    if field is not None:
        assert field in errors
    else:
        assert errors


@pytest.mark.parametrize("body", [b"{", b"", b"nope", b'{"nameEvent": "a",}', b"[1]", b'"str"'])
async def test_malformed_json(client: httpx.AsyncClient, project: Project, body: bytes) -> None:
    r = await client.post(url(project.id), content=body, headers={**project.headers, "Content-Type": "application/json"})
    wrapped_error(r, 400, "MALFORMED_JSON")


async def test_unauthorized(client: httpx.AsyncClient, project: Project) -> None:
    wrapped_error(await client.post(url(project.id), json={"nameEvent": "x"}), 401, "UNAUTHORIZED")
    wrapped_error(await client.post(url(project.id), json={"nameEvent": "x"}, headers={"Authorization": "Bearer edk_x"}), 401, "UNAUTHORIZED")


async def test_forbidden_scope_and_other_project(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    reader = await project.new_key(client, "events:read")
    wrapped_error(await client.post(url(project.id), json={"nameEvent": "x"}, headers=reader.headers), 403, "FORBIDDEN")
    other = await create_project(client, admin)
    wrapped_error(await client.post(url(other.id), json={"nameEvent": "x"}, headers=project.headers), 403, "FORBIDDEN")
    wrapped_error(await client.get(url(other.id), headers=project.headers), 403, "FORBIDDEN")
    # Even an unknown project: a bound key learns nothing about other projects.
    wrapped_error(await client.post(url(str(uuid.uuid4())), json={"nameEvent": "x"}, headers=project.headers), 403, "FORBIDDEN")


async def test_project_not_found(client: httpx.AsyncClient, admin: Key) -> None:
    for pid in (str(uuid.uuid4()), "not-a-uuid"):
        wrapped_error(await client.post(url(pid), json={"nameEvent": "x"}, headers=admin.headers), 404, "PROJECT_NOT_FOUND")
        wrapped_error(await client.get(url(pid), headers=admin.headers), 404, "PROJECT_NOT_FOUND")


async def test_admin_key_writes_to_any_project(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    r = await client.post(url(project.id), json={"nameEvent": "by-admin"}, headers=admin.headers)
    assert r.status_code == 200


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/nothing"), ("POST", "/v1/projects/x/unknown"), ("GET", "/v1/")])
async def test_unknown_v1_paths_are_wrapped_404(client: httpx.AsyncClient, project: Project, method: str, path: str) -> None:
    error = wrapped_error(await client.request(method, path, headers=project.headers), 404, "NOT_FOUND")
    assert error["fieldErrors"] == []


async def test_payload_too_large(client: httpx.AsyncClient, project: Project) -> None:
    body = json.dumps({"nameEvent": "big", "attributes": {"pad": "x" * (10 * 1024 * 1024)}})
    r = await client.post(url(project.id), content=body, headers={**project.headers, "Content-Type": "application/json"})
    wrapped_error(r, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/x-ndjson", None])
async def test_unsupported_media_type(client: httpx.AsyncClient, project: Project, content_type: str | None) -> None:
    headers = dict(project.headers)
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.post(url(project.id), content=b'{"nameEvent": "x"}', headers=headers)
    wrapped_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_charset_is_accepted(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(
        url(project.id), content=b'{"nameEvent": "x"}', headers={**project.headers, "Content-Type": "application/json;charset=UTF-8"}
    )
    assert r.status_code == 200


# -- idempotency -----------------------------------------------------------------


async def test_idempotency_key_retry_is_acknowledged_with_the_same_data_and_stored_once(client: httpx.AsyncClient, project: Project) -> None:
    headers = {**project.headers, "Idempotency-Key": "order-42"}
    first = await client.post(url(project.id), json={"nameEvent": "order", "attributes": {"n": "1"}}, headers=headers)
    assert first.status_code == 200
    time.sleep(0.005)
    again = await client.post(url(project.id), json={"nameEvent": "order", "attributes": {"n": "2"}}, headers=headers)
    assert again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    assert first.json()["data"]["id"] == "order-42"
    items = (await listing(client, project))["items"]
    assert [i["id"] for i in items] == ["order-42"]
    assert items[0]["properties"] == {"n": "1"}


@pytest.mark.parametrize("key", ['q"uote', "back\\slash", "[1]", "{}", "7", "x" * 256])
async def test_a_retry_is_recognised_whatever_the_key_holds(client: httpx.AsyncClient, project: Project, key: str) -> None:
    """The writer looks the batch's client ids up in one statement (on SQLite
    as a JSON array): an id must be found however it would need escaping."""
    headers = {**project.headers, "Idempotency-Key": key}
    first = await client.post(url(project.id), json={"nameEvent": "one"}, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(url(project.id), json={"nameEvent": "two"}, headers=headers)
    assert again.json()["data"] == first.json()["data"]


async def test_idempotency_key_retry_with_another_name_answers_the_stored_event(client: httpx.AsyncClient, project: Project) -> None:
    headers = {**project.headers, "Idempotency-Key": "k-name"}
    first = await client.post(url(project.id), json={"nameEvent": "one"}, headers=headers)
    again = await client.post(url(project.id), json={"nameEvent": "two"}, headers=headers)
    assert again.json()["data"] == first.json()["data"]


async def test_blank_idempotency_key_is_a_validation_error(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(url(project.id), json={"nameEvent": "x"}, headers={**project.headers, "Idempotency-Key": " "})
    assert "Idempotency-Key" in field_errors(r)


# -- reads ----------------------------------------------------------------------


async def _seed(client: httpx.AsyncClient, project: Project) -> list[str]:
    """Five events with known times, via generic ingest (so times can be set)."""
    body = [
        {"event.id": f"e{n}", "event.name": "even" if n % 2 == 0 else "odd", "timestamp": 1_700_000_000_000 + n * 1000}
        for n in range(5)
    ]
    r = await client.post("/platform/ingest/v1/events", json=body, headers=project.headers)
    assert r.status_code == 202
    return [f"e{n}" for n in range(5)]


async def test_list_newest_first_with_cursor_pages(client: httpx.AsyncClient, project: Project) -> None:
    await _seed(client, project)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        data = await listing(client, project, **params)
        assert set(data) == {"items", "nextCursor"}
        seen += [i["id"] for i in data["items"]]
        pages += 1
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert seen == ["e4", "e3", "e2", "e1", "e0"]
    assert pages == 3
    item = (await listing(client, project, limit=1))["items"][0]
    assert item["timestamp"] == "2023-11-14T22:13:24.000Z"
    assert TS.match(item["receivedAt"])


async def test_list_filters(client: httpx.AsyncClient, project: Project) -> None:
    await _seed(client, project)
    assert [i["id"] for i in (await listing(client, project, nameEvent="odd"))["items"]] == ["e3", "e1"]
    after = "2023-11-14T22:13:21.000Z"
    before = "2023-11-14T22:13:23.000Z"
    assert [i["id"] for i in (await listing(client, project, after=after, before=before))["items"]] == ["e2", "e1"]
    assert [i["id"] for i in (await listing(client, project, after=1_700_000_003_000))["items"]] == ["e4", "e3"]
    assert (await listing(client, project, nameEvent="none"))["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "abc"}, "limit"), ({"limit": "100000"}, "limit"), ({"after": "soon"}, "after"), ({"before": "x"}, "before"), ({"cursor": "!!"}, "cursor")],
)
async def test_bad_list_params(client: httpx.AsyncClient, project: Project, params: dict[str, str], field: str) -> None:
    r = await client.get(url(project.id), params=params, headers=project.headers)
    assert field in field_errors(r)


async def test_get_by_id_and_404(client: httpx.AsyncClient, project: Project) -> None:
    await _seed(client, project)
    r = await client.get(f"{url(project.id)}/e2", headers=project.headers)
    assert r.status_code == 200 and r.json()["data"]["id"] == "e2"
    wrapped_error(await client.get(f"{url(project.id)}/missing", headers=project.headers), 404, "NOT_FOUND")


async def test_reads_need_events_read(client: httpx.AsyncClient, project: Project) -> None:
    writer = await project.new_key(client, "events:write")
    assert (await client.get(url(project.id), headers=writer.headers)).status_code == 200  # write implies read
    profiles = await project.new_key(client, "profiles:read")
    wrapped_error(await client.get(url(project.id), headers=profiles.headers), 403, "FORBIDDEN")
    wrapped_error(await client.get(f"{url(project.id)}/x", headers=profiles.headers), 403, "FORBIDDEN")


@pytest.mark.parametrize(("body", "field"), [({"nameEvent": "a\u0000"}, "nameEvent"), ({"nameEvent": "a", "attributes": {"k": "\u0000"}}, "attributes.k"), ({"nameEvent": "a", "email": "x\u0000"}, "email")])
async def test_nul_characters_are_a_validation_error(client: httpx.AsyncClient, project: Project, body: dict[str, Any], field: str) -> None:
    assert field in field_errors(await client.post(url(project.id), json=body, headers=project.headers))
