"""PostHog's own API tests of property groups and event schemas, carried over.

Each test names the test of the public repository PostHog/posthog whose
assertions it makes (``posthog/api/test/test_schema_property_group.py``),
adapted to eventdock's API keys and ids; a client written against PostHog
must see the same answers. Also the seed's shapes (``created_by``, event
schema keys) and DRF's 404 for unknown ids on every method.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Key, Project, create_project
from tests.test_event_schemas import attach, base, define, group, prop

# The seed's event schema object (seed 001), and its UserBasic ``created_by``.
SCHEMA_KEYS = {"id", "event_definition", "property_group", "property_group_id", "created_at", "updated_at"}
USER_KEYS = {"id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config", "role_at_organization"}


async def test_create_property_group_with_properties(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::TestSchemaPropertyGroupAPI::test_create_property_group_with_properties"""
    r = await client.post(
        f"{base(project)}/schema_property_groups/",
        json={
            "name": "User Info",
            "description": "Basic user information",
            "properties": [
                {"name": "user_id", "property_type": "String", "is_required": True, "description": "User ID"},
                {"name": "email", "property_type": "String", "is_required": False, "description": "Email"},
            ],
        },
        headers=project.headers,
    )
    assert r.status_code == 201
    data = r.json()
    assert data["name"] == "User Info" and data["description"] == "Basic user information"
    assert [(p["name"], p["is_required"]) for p in data["properties"]] == [("email", False), ("user_id", True)]


async def test_update_property_group_preserves_and_deletes_properties(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::test_update_property_group_preserves_existing_properties
    and ::test_update_property_group_deletes_removed_properties"""
    g = await group(client, project, "Test Group", [prop("prop1", required=False), prop("prop2", "Numeric", required=False)])
    ids = {p["name"]: p["id"] for p in g["properties"]}
    url = f"{base(project)}/schema_property_groups/{g['id']}/"
    body = {
        "properties": [
            {"id": ids["prop1"], "name": "prop1", "property_type": "String"},
            {"id": ids["prop2"], "name": "prop2_updated", "property_type": "Numeric"},
            {"name": "prop3", "property_type": "Boolean"},
        ]
    }
    r = await client.patch(url, json=body, headers=project.headers)
    assert r.status_code == 200, r.text
    types = {p["name"]: p["property_type"] for p in r.json()["properties"]}
    assert types == {"prop1": "String", "prop2_updated": "Numeric", "prop3": "Boolean"}
    r = await client.patch(url, json={"properties": [{"id": ids["prop1"], "name": "prop1", "property_type": "String"}]}, headers=project.headers)
    assert r.status_code == 200 and [p["name"] for p in r.json()["properties"]] == ["prop1"]


async def test_unique_constraint_on_team_and_name(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::test_unique_constraint_on_team_and_name; the words and
    code of PostHog's serializer (create and update say it differently)."""
    await group(client, project, "Duplicate Name", [])
    r = await client.post(f"{base(project)}/schema_property_groups/", json={"name": "Duplicate Name", "description": "Should fail"}, headers=project.headers)
    assert r.status_code == 400 and "already exists" in r.text
    assert r.json() == {"type": "validation_error", "code": "invalid_input", "detail": "A property group with this name already exists for this team", "attr": "name"}


async def test_delete_property_group_and_list_includes_events(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::test_list_includes_events and ::test_delete_property_group"""
    g = await group(client, project, "Test Group", [prop("prop1")])
    d = await define(client, project, "test_event")
    await attach(client, project, d["id"], g["id"])
    r = await client.get(f"{base(project)}/schema_property_groups/", headers=project.headers)
    (listed,) = [x for x in r.json()["results"] if x["id"] == g["id"]]
    assert listed["events"] == [{"id": d["id"], "name": "test_event"}]
    assert (await client.delete(f"{base(project)}/schema_property_groups/{g['id']}/", headers=project.headers)).status_code == 204
    assert (await client.get(f"{base(project)}/schema_property_groups/{g['id']}/", headers=project.headers)).status_code == 404


@pytest.mark.parametrize(
    ("properties", "attr", "detail"),
    [
        # A 201-character name: PostHog says "200 characters or less" (a serializer error, not DRF's max_length).
        ([prop("p" * 201)], "properties__0__name", "Property name must be 200 characters or less"),
        ([prop("dup"), prop("other"), prop("dup")], "properties", "A property named 'dup' already exists in this group"),
        ([prop("s", rules={"enum": []})], "properties__0__validation_rules", "enum must not be empty"),
        ([prop("s", rules={"enum": ["a", 2]})], "properties__0__validation_rules", "enum values must be strings"),
        ([prop("n", "Numeric", rules={"minimum": 0, "exclusiveMinimum": 0})], "properties__0__validation_rules", "Cannot specify both minimum and exclusiveMinimum"),
        ([prop("s", rules={"not": {"enum": ["a"], "minimum": 1}})], "properties__0__validation_rules", "not must be an object with exactly one key: enum"),
    ],
)
async def test_create_with_invalid_properties(client: httpx.AsyncClient, project: Project, properties: list[dict[str, object]], attr: str, detail: str) -> None:
    """PostHog test_schema_property_group.py: test_create_with_duplicate_property_names, the 201-character
    name and the validation_rules checks, with the code and attr its serializer gives."""
    r = await client.post(f"{base(project)}/schema_property_groups/", json={"name": "g", "properties": properties}, headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": attr}
    assert (await client.get(f"{base(project)}/schema_property_groups/", headers=project.headers)).json()["count"] == 0


async def test_property_type_any_is_stored_listed_and_typed(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog's current SchemaPropertyType has ``Any`` (schema value validation): a property of it is
    stored and listed, and the generated types say "anything" (TypeScript ``unknown``, Python ``Any``)."""
    g = await group(client, project, "anything", [prop("payload", "Any"), prop("extra", "Any", required=False)])
    assert [p["property_type"] for p in g["properties"]] == ["Any", "Any"]
    r = await client.get(f"{base(project)}/schema_property_groups/", headers=project.headers)
    assert [p["property_type"] for p in r.json()["results"][0]["properties"]] == ["Any", "Any"]
    d = await define(client, project, "loose")
    await attach(client, project, d["id"], g["id"])
    ts = (await client.get(f"{base(project)}/event_definitions/{d['id']}/typescript", headers=project.headers)).text
    assert "  payload: unknown;" in ts and "  extra?: unknown;" in ts
    py = (await client.get(f"{base(project)}/event_definitions/{d['id']}/python", headers=project.headers)).text
    assert '"payload": Any,' in py and '"extra": NotRequired[Any],' in py


async def test_create_event_schema_has_the_seed_keys(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::TestEventSchemaAPI::test_create_event_schema; the object has
    exactly the seed's keys (no ``created_by``), the group's ``created_by`` the seed's UserBasic shape."""
    g = await group(client, project, "Test Group", [])
    d = await define(client, project, "test_event")
    s = await attach(client, project, d["id"], g["id"])
    assert s["property_group"]["id"] == g["id"]
    assert set(s) == SCHEMA_KEYS
    for who in (s["property_group"]["created_by"], d["created_by"]):
        assert set(who) == USER_KEYS
        assert who["email"] == "" and who["is_email_verified"] is False and who["hedgehog_config"] == {} and who["role_at_organization"] is None
    listed = (await client.get(f"{base(project)}/event_schemas/", headers=project.headers)).json()["results"]
    assert [set(x) for x in listed] == [SCHEMA_KEYS]


async def test_prevent_duplicate_event_schema(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_schema_property_group.py::TestEventSchemaAPI::test_prevent_duplicate_event_schema
    (DRF's UniqueTogetherValidator: a non-field error, code ``unique``)."""
    g = await group(client, project, "Test Group", [])
    d = await define(client, project, "test_event")
    await attach(client, project, d["id"], g["id"])
    r = await client.post(f"{base(project)}/event_schemas/", json={"event_definition": d["id"], "property_group_id": g["id"]}, headers=project.headers)
    assert r.status_code == 400 and "unique" in r.text.lower()
    assert r.json() == {"type": "validation_error", "code": "unique", "detail": "The fields event_definition, property_group must make a unique set.", "attr": None}


@pytest.mark.parametrize("foreign", ["property_group_id", "event_definition"])
async def test_cross_team_rejection(client: httpx.AsyncClient, project: Project, admin: Key, foreign: str) -> None:
    """PostHog test_schema_property_group.py::TestEventSchemaAPI::test_cross_team_property_group_rejection
    and ::test_cross_team_event_definition_rejection"""
    other = await create_project(client, admin)
    ids = {
        "property_group_id": (await group(client, other if foreign == "property_group_id" else project, "Group", []))["id"],
        "event_definition": (await define(client, other if foreign == "event_definition" else project, "test_event"))["id"],
    }
    r = await client.post(f"{base(project)}/event_schemas/", json=ids, headers=project.headers)
    assert r.status_code == 400 and "does not exist" in r.text
    assert r.json()["attr"] == foreign and r.json()["code"] == "does_not_exist"


UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "event_definitions", None),
        ("PATCH", "event_definitions", {"enforcement_mode": "nonsense"}),
        ("DELETE", "event_definitions", None),
        ("GET", "schema_property_groups", None),
        ("PUT", "schema_property_groups", {}),
        ("PATCH", "schema_property_groups", {"name": ""}),
        ("DELETE", "schema_property_groups", None),
        ("GET", "event_schemas", None),
        ("PUT", "event_schemas", {}),
        ("PATCH", "event_schemas", {"property_group_id": None}),
        ("DELETE", "event_schemas", None),
    ],
)
async def test_unknown_id_is_404_on_every_method(client: httpx.AsyncClient, project: Project, method: str, path: str, body: object) -> None:
    """DRF looks the object up before it reads the body (``get_object`` in UpdateModelMixin):
    an unknown id answers 404 even when the body is invalid (a PUT without fields included)."""
    r = await client.request(method, f"{base(project)}/{path}/{UNKNOWN}/", json=body, headers=project.headers)
    assert r.status_code == 404
    assert r.json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


async def test_cant_see_another_projects_definitions(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    """PostHog test_event_definition.py::test_cant_see_event_definitions_for_another_team: a key of another
    project gets 403 with PostHog's own permission_denied message."""
    other = await create_project(client, admin)
    await define(client, other, "should_be_invisible")
    r = await client.get(f"{base(project)}/event_definitions/", headers=project.headers)
    assert all("should_be_invisible" not in d["name"] for d in r.json()["results"])
    r = await client.get(f"{base(other)}/event_definitions/", headers=project.headers)
    assert r.status_code == 403
    assert r.json() == {"type": "authentication_error", "code": "permission_denied", "detail": "You don't have access to the project.", "attr": None}

