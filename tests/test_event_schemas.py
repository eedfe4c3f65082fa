"""Event schemas API, PostHog-compatible (SPEC §5, seed 001), over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Key, Project, create_project


def base(project: Project) -> str:
    return f"/api/projects/{project.id}"


async def define(client: httpx.AsyncClient, project: Project, name: str, **extra: Any) -> dict[str, Any]:
    r = await client.post(f"{base(project)}/event_definitions/", json={"name": name, **extra}, headers=project.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def group(client: httpx.AsyncClient, project: Project, name: str, properties: list[dict[str, Any]]) -> dict[str, Any]:
    r = await client.post(f"{base(project)}/schema_property_groups/", json={"name": name, "properties": properties}, headers=project.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def attach(client: httpx.AsyncClient, project: Project, definition: str, group_id: str) -> dict[str, Any]:
    r = await client.post(
        f"{base(project)}/event_schemas/", json={"event_definition": definition, "property_group_id": group_id}, headers=project.headers
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def prop(name: str, kind: str = "String", required: bool = True, rules: Any = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "property_type": kind, "is_required": required, "validation_rules": rules, **extra}


async def test_event_definitions_crud_search_and_writer_created(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post("/platform/ingest/v1/events", json={"event.name": "page_view"}, headers=project.headers)
    assert r.status_code == 202
    planned = await define(client, project, "signup", description="planned", enforcement_mode="reject")
    assert planned["enforcement_mode"] == "reject" and planned["description"] == "planned"
    assert planned["created_by"]["first_name"] == "all" and planned["created_by"]["uuid"] == project.key.id
    r = await client.get(f"{base(project)}/event_definitions", headers=project.headers)
    body = r.json()
    assert [d["name"] for d in body["results"]] == ["page_view", "signup"] and body["count"] == 2
    assert body["results"][0]["enforcement_mode"] == "allow"
    r = await client.get(f"{base(project)}/event_definitions/?search=SIGN", headers=project.headers)
    assert [d["name"] for d in r.json()["results"]] == ["signup"]
    r = await client.post(f"{base(project)}/event_definitions/", json={"name": "signup"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["code"] == "unique" and r.json()["attr"] == "name"
    r = await client.post(f"{base(project)}/event_definitions/", json={"name": "x", "enforcement_mode": "block"}, headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "invalid_choice", "detail": '"block" is not a valid choice.', "attr": "enforcement_mode"}
    r = await client.post(f"{base(project)}/event_definitions/", json={"description": "no name"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["code"] == "required" and r.json()["attr"] == "name"
    r = await client.patch(f"{base(project)}/event_definitions/{planned['id']}/", json={"description": "d2", "enforcement_mode": "allow"}, headers=project.headers)
    assert r.status_code == 200 and r.json()["description"] == "d2" and r.json()["enforcement_mode"] == "allow"
    r = await client.get(f"{base(project)}/event_definitions/{planned['id']}", headers=project.headers)
    assert r.json()["description"] == "d2"
    r = await client.put(f"{base(project)}/event_definitions/{planned['id']}/", json={}, headers=project.headers)
    assert r.status_code == 405
    assert r.json() == {"type": "invalid_request", "code": "method_not_allowed", "detail": 'Method "PUT" not allowed.', "attr": None}
    r = await client.delete(f"{base(project)}/event_definitions/{planned['id']}/", headers=project.headers)
    assert r.status_code == 204
    r = await client.get(f"{base(project)}/event_definitions/{planned['id']}/", headers=project.headers)
    assert r.status_code == 404 and r.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


async def test_pages_have_absolute_next_and_previous(client: httpx.AsyncClient, project: Project) -> None:
    for i in range(5):
        await define(client, project, f"e{i}")
    r = await client.get(f"{base(project)}/event_definitions/?limit=2&offset=2", headers=project.headers)
    body = r.json()
    assert body["count"] == 5 and [d["name"] for d in body["results"]] == ["e2", "e3"]
    assert body["next"] == f"http://testserver{base(project)}/event_definitions/?limit=2&offset=4"
    assert body["previous"] == f"http://testserver{base(project)}/event_definitions/?limit=2"
    last = (await client.get(body["next"], headers=project.headers)).json()
    assert last["next"] is None and [d["name"] for d in last["results"]] == ["e4"]


async def test_property_groups_crud_patch_replaces_properties(client: httpx.AsyncClient, project: Project) -> None:
    g = await group(client, project, "checkout", [prop("  total ", "Numeric"), prop("currency", required=False, description="ISO")])
    assert [p["name"] for p in g["properties"]] == ["currency", "total"]
    assert g["created_by"]["first_name"] == "all" and g["events"] == []
    total = next(p for p in g["properties"] if p["name"] == "total")
    assert total["property_type"] == "Numeric" and total["is_required"] is True and total["is_optional_in_types"] is False
    r = await client.post(f"{base(project)}/schema_property_groups/", json={"name": "checkout"}, headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "invalid_input", "detail": "A property group with this name already exists for this team", "attr": "name"}
    body = {"properties": [{**total, "is_required": False}, prop("coupon")]}
    r = await client.patch(f"{base(project)}/schema_property_groups/{g['id']}/", json=body, headers=project.headers)
    assert r.status_code == 200, r.text
    after = r.json()
    assert [p["name"] for p in after["properties"]] == ["coupon", "total"]
    kept = next(p for p in after["properties"] if p["name"] == "total")
    assert kept["id"] == total["id"] and kept["is_required"] is False
    other = await group(client, project, "other", [])
    r = await client.patch(f"{base(project)}/schema_property_groups/{other['id']}", json={"name": "checkout"}, headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "invalid_input", "detail": "A property group with this name already exists", "attr": "name"}
    r = await client.get(f"{base(project)}/schema_property_groups/", headers=project.headers)
    assert [x["name"] for x in r.json()["results"]] == ["checkout", "other"]
    r = await client.delete(f"{base(project)}/schema_property_groups/{g['id']}/", headers=project.headers)
    assert r.status_code == 204
    assert (await client.get(f"{base(project)}/schema_property_groups/{g['id']}/", headers=project.headers)).status_code == 404


@pytest.mark.parametrize(
    ("properties", "attr", "detail"),
    [
        ([prop("   ")], "properties__0__name", "This field may not be blank."),
        ([prop("x" * 201)], "properties__0__name", "Property name must be 200 characters or less"),
        ([prop("a", description=None)], "properties__0__description", "This field may not be null."),
        ([prop("a"), prop("a ")], "properties", "A property named 'a' already exists in this group"),
        ([prop("a", "Text")], "properties__0__property_type", '"Text" is not a valid choice.'),
        ([prop("a", rules={"enum": []})], "properties__0__validation_rules", "enum must not be empty"),
        ([prop("a", rules={"enum": "x"})], "properties__0__validation_rules", "enum must be a list"),
        ([prop("a", rules={"enum": [1]})], "properties__0__validation_rules", "enum values must be strings"),
        ([prop("a", rules={"enum": ["x"] * 1001})], "properties__0__validation_rules", "enum must have at most 1000 values"),
        ([prop("a", rules={"enum": ["x"], "not": {"enum": ["y"]}})], "properties__0__validation_rules", "Cannot specify both enum and not.enum"),
        ([prop("a", rules={"not": {"enum": []}})], "properties__0__validation_rules", "not.enum must not be empty"),
        ([prop("a", rules={"not": {"enum": ["y"], "x": 1}})], "properties__0__validation_rules", "not must be an object with exactly one key: enum"),
        ([prop("a", rules={"pattern": "x"})], "properties__0__validation_rules", "Unrecognized keys for String validation rules: pattern"),
        ([prop("a", rules=["x"])], "properties__0__validation_rules", "validation_rules must be an object"),
        ([prop("a", "Numeric", rules={"minimum": 1, "exclusiveMinimum": 0})], "properties__0__validation_rules", "Cannot specify both minimum and exclusiveMinimum"),
        ([prop("a", "Numeric", rules={"maximum": 1, "exclusiveMaximum": 2})], "properties__0__validation_rules", "Cannot specify both maximum and exclusiveMaximum"),
        ([prop("a", "Numeric", rules={"minimum": 5, "maximum": 5})], "properties__0__validation_rules", "Lower bound must be less than upper bound"),
        ([prop("a", "Numeric", rules={"minimum": "1"})], "properties__0__validation_rules", "minimum must be a number"),
        ([prop("a", "Numeric", rules={"enum": ["1"]})], "properties__0__validation_rules", "Unrecognized keys for Numeric validation rules: enum"),
        ([prop("a", "Boolean", rules={"enum": ["true"]})], "properties__0__validation_rules", "validation_rules are only supported for String and Numeric properties, not Boolean"),
        ([prop("a", "DateTime", rules={"minimum": 1})], "properties__0__validation_rules", "validation_rules are only supported for String and Numeric properties, not DateTime"),
        ([prop("a", "Object", rules={"enum": ["x"]})], "properties__0__validation_rules", "validation_rules are only supported for String and Numeric properties, not Object"),
        ([prop("a", "Any", rules={"enum": ["x"]})], "properties__0__validation_rules", "validation_rules are only supported for String and Numeric properties, not Any"),
    ],
)
async def test_property_validation_errors(client: httpx.AsyncClient, project: Project, properties: Any, attr: str, detail: str) -> None:
    r = await client.post(f"{base(project)}/schema_property_groups/", json={"name": "g", "properties": properties}, headers=project.headers)
    assert r.status_code == 400, r.text
    # DRF-exceptions-hog renders a serializer's ValidationError code "invalid" as "invalid_input".
    codes = {"This field may not be blank.": "blank", "This field may not be null.": "null", '"Text" is not a valid choice.': "invalid_choice"}
    code = codes.get(detail, "invalid_input")
    assert r.json() == {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


@pytest.mark.parametrize(
    ("kind", "rules"),
    [
        ("String", {"enum": ["a", "b"]}),
        ("String", {"not": {"enum": ["a"]}}),
        ("Numeric", {"minimum": 0}),
        ("Numeric", {"exclusiveMinimum": 0, "exclusiveMaximum": 10.5}),
        ("Numeric", {"minimum": -1, "maximum": 1}),
        ("Boolean", None),
        ("Any", None),
    ],
)
async def test_property_validation_rules_accepted(client: httpx.AsyncClient, project: Project, kind: str, rules: Any) -> None:
    g = await group(client, project, "g", [prop("a", kind, rules=rules)])
    assert g["properties"][0]["validation_rules"] == rules


async def test_event_schemas_crud_filters_cascades(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    d1 = await define(client, project, "buy")
    d2 = await define(client, project, "sell")
    g = await group(client, project, "money", [prop("amount", "Numeric")])
    s1 = await attach(client, project, d1["id"], g["id"])
    assert s1["event_definition"] == d1["id"] and s1["property_group"]["name"] == "money" and s1["property_group_id"] == g["id"]
    assert s1["property_group"]["events"] == [{"id": d1["id"], "name": "buy"}]
    s2 = await attach(client, project, d2["id"], g["id"])
    r = await client.get(f"{base(project)}/event_schemas/", headers=project.headers)
    assert [s["id"] for s in r.json()["results"]] == [s2["id"], s1["id"]]  # newest first
    r = await client.get(f"{base(project)}/event_schemas?event_definition={d1['id']}", headers=project.headers)
    assert [s["id"] for s in r.json()["results"]] == [s1["id"]]
    r = await client.post(f"{base(project)}/event_schemas/", json={"event_definition": d1["id"], "property_group_id": g["id"]}, headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "unique", "detail": "The fields event_definition, property_group must make a unique set.", "attr": None}
    other = await create_project(client, admin)
    foreign = await define(client, other, "buy")
    r = await client.post(f"{base(project)}/event_schemas/", json={"event_definition": foreign["id"], "property_group_id": g["id"]}, headers=project.headers)
    assert r.json() == {
        "type": "validation_error",
        "code": "does_not_exist",
        "detail": f'Invalid pk "{foreign["id"]}" - object does not exist.',
        "attr": "event_definition",
    }
    r = await client.get(f"{base(other)}/event_schemas/{s1['id']}/", headers=other.headers)
    assert r.status_code == 404
    g2 = await group(client, project, "g2", [])
    r = await client.patch(f"{base(project)}/event_schemas/{s1['id']}/", json={"property_group_id": g2["id"]}, headers=project.headers)
    assert r.status_code == 200 and r.json()["property_group"]["name"] == "g2"
    r = await client.put(f"{base(project)}/event_schemas/{s1['id']}", json={"event_definition": d1["id"]}, headers=project.headers)
    assert r.status_code == 400 and r.json()["attr"] == "property_group_id" and r.json()["code"] == "required"
    r = await client.put(f"{base(project)}/event_schemas/{s1['id']}", json={"event_definition": d1["id"], "property_group_id": g["id"]}, headers=project.headers)
    assert r.status_code == 200 and r.json()["property_group_id"] == g["id"]
    # Deleting the group cascades to its schemas; deleting a definition to its own.
    r = await client.delete(f"{base(project)}/event_definitions/{d2['id']}/", headers=project.headers)
    assert r.status_code == 204
    assert (await client.get(f"{base(project)}/event_schemas/{s2['id']}/", headers=project.headers)).status_code == 404
    r = await client.delete(f"{base(project)}/schema_property_groups/{g['id']}", headers=project.headers)
    assert r.status_code == 204
    assert (await client.get(f"{base(project)}/event_schemas/", headers=project.headers)).json()["count"] == 0
    r = await client.delete(f"{base(project)}/event_schemas/{s1['id']}/", headers=project.headers)
    assert r.status_code == 404


async def test_scopes_and_authentication(client: httpx.AsyncClient, project: Project) -> None:
    reader = await project.new_key(client, "event_definition:read")
    writer = await project.new_key(client, "event_definition:write")
    events_only = await project.new_key(client, "events:write")
    url = f"{base(project)}/event_definitions/"
    assert (await client.get(url, headers=reader.headers)).status_code == 200
    assert (await client.get(url, headers=writer.headers)).status_code == 200  # write implies read
    r = await client.post(url, json={"name": "a"}, headers=reader.headers)
    assert r.status_code == 403
    assert r.json() == {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'event_definition:write'",
        "attr": None,
    }
    assert (await client.get(url, headers=events_only.headers)).json()["detail"] == "API key missing required scope 'event_definition:read'"
    r = await client.get(url)
    assert r.status_code == 401
    assert r.json() == {"type": "authentication_error", "code": "not_authenticated", "detail": "Authentication credentials were not provided.", "attr": None}
    r = await client.get(url, headers={"Authorization": "Bearer edk_nope"})
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
    # personal_api_key in the query string and in a JSON body, as PostHog takes it.
    assert (await client.get(url, params={"personal_api_key": reader.token})).status_code == 200
    r = await client.post(url, json={"name": "from-body", "personal_api_key": writer.token})
    assert r.status_code == 201 and r.json()["created_by"]["uuid"] == writer.id


async def test_form_and_multipart_bodies(client: httpx.AsyncClient, project: Project) -> None:
    url = f"{base(project)}/event_definitions/"
    r = await client.post(url, data={"name": "formed", "enforcement_mode": "reject"}, headers=project.headers)
    assert r.status_code == 201 and r.json()["enforcement_mode"] == "reject"
    r = await client.post(url, files={"name": (None, "multi")}, headers=project.headers)
    assert r.status_code == 201 and r.json()["name"] == "multi"
    g = await client.post(
        f"{base(project)}/schema_property_groups/",
        data={"name": "g", "properties": '[{"name": "a", "property_type": "Boolean", "is_required": "true"}]'},
        headers=project.headers,
    )
    assert g.status_code == 201 and g.json()["properties"][0]["is_required"] is True
    r = await client.post(
        f"{base(project)}/event_schemas/", data={"event_definition": r.json()["id"], "property_group_id": g.json()["id"]}, headers=project.headers
    )
    assert r.status_code == 201
    r = await client.post(url, content=b"{bad", headers={**project.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "parse_error"
    r = await client.post(url, content=b"name", headers={**project.headers, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["type"] == "invalid_request"


async def test_typescript_and_python_types(client: httpx.AsyncClient, project: Project, tmp_path: Any) -> None:
    import shutil
    import subprocess
    import typing

    d = await define(client, project, "order completed")
    g1 = await group(client, project, "g1", [prop("total", "Numeric"), prop("note", required=False), prop("when", "DateTime", is_optional_in_types=True)])
    g2 = await group(client, project, "g2", [prop("total", "String"), prop("meta data", "Object"), prop("ok", "Boolean")])
    await attach(client, project, d["id"], g1["id"])
    await attach(client, project, d["id"], g2["id"])
    r = await client.get(f"{base(project)}/event_definitions/{d['id']}/python", headers=project.headers)
    assert r.status_code == 200
    namespace: dict[str, Any] = {}
    exec(compile(r.text, "generated.py", "exec"), namespace)  # noqa: S102 - our own generated code
    typed = namespace["OrderCompletedProperties"]
    hints = typing.get_type_hints(typed)
    assert hints["total"] == float | str and hints["meta data"] == dict[str, Any] | list[Any] and hints["ok"] is bool
    assert typed.__required_keys__ == frozenset({"total", "meta data", "ok"})
    assert typed.__optional_keys__ == frozenset({"note", "when"})
    assert namespace["EVENT_NAME"] == "order completed"
    r = await client.get(f"{base(project)}/event_definitions/{d['id']}/typescript/", headers=project.headers)
    ts = r.text
    assert "export interface OrderCompletedProperties" in ts and "total: number | string;" in ts and "note?: string;" in ts
    assert '"meta data": Record<string, unknown> | unknown[];' in ts and "when?: string | number;" in ts
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed: the TypeScript output was checked textually only")
    (tmp_path / "types.ts").write_text(
        ts + '\nconst sample: OrderCompletedProperties = { total: 1, "meta data": {}, ok: true, extra: 1 };\nexport default sample;\n'
    )
    try:
        done = subprocess.run(
            ["npx", "--yes", "-p", "typescript@5", "tsc", "--noEmit", "--strict", str(tmp_path / "types.ts")], capture_output=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npx typescript@5 did not finish (no network?)")
    if done.returncode != 0 and b"error TS" not in done.stdout:
        pytest.skip(f"npx typescript@5 unavailable: {done.stderr[-300:]!r}")
    assert done.returncode == 0, done.stdout.decode()


async def test_openapi_documents_each_route_once_with_its_slash(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    group = paths["/api/projects/{project_id}/schema_property_groups/{group_id}/"]
    assert set(group) == {"get", "put", "patch", "delete"}
    assert "/api/projects/{project_id}/schema_property_groups/{group_id}" not in paths
    assert "post" in paths["/api/projects/{project_id}/violations/{violation_id}/replay/"]
    assert "get" in paths["/api/projects/{project_id}/event_definitions/{definition_id}/typescript/"]
