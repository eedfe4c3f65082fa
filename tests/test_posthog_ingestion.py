"""PostHog's ingestion test of schema enforcement, carried over.

Each test names the case of PostHog/posthog's
``nodejs/src/ingestion/.../validate-event-schema.test.ts`` whose assertions
it makes, through eventdock's ingest and violations API (SPEC §3.4): a
rejected event is quarantined with the errors PostHog's warning carries.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.test_event_schemas import attach, define, group, prop
from tests.test_governance import INGEST, quarantined_ids, schema, violations


async def test_optional_property_of_the_wrong_type_is_a_type_mismatch(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog schema value validation: "optional properties are type-checked when present and
    skipped when missing" (before, an optional property of the wrong type was stored unchecked)."""
    await schema(client, project, "e", [prop("v", "Numeric", required=False)])
    got = await quarantined_ids(client, project, "e", [1, "2.5", ..., None, "abc", True, {"a": 1}])
    assert got == {"i4", "i5", "i6"}
    errors = {row["event_id"]: row["errors"] for row in await violations(client, project)}
    assert errors["i4"] == [
        {"property": "v", "reason": "type_mismatch", "expected_types": ["Numeric"], "actual_value": "abc", "message": errors["i4"][0]["message"]}
    ]


async def test_optional_type_mismatch_is_flagged_in_allow_mode(client: httpx.AsyncClient, project: Project) -> None:
    """validate-event-schema.test.ts 'should include warnings on failed enforce mode validation':
    in allow (PostHog: enforce) mode the event is stored and the mismatch recorded."""
    await schema(client, project, "e", [prop("flag", "Boolean", required=False)], mode="allow")
    r = await client.post(INGEST, json={"event.name": "e", "event.id": "a-1", "flag": "yes"}, headers=project.headers)
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "0"
    (row,) = await violations(client, project, action="flagged")
    assert row["event_id"] == "a-1" and row["errors"][0]["reason"] == "type_mismatch"


async def test_expected_types_in_the_order_the_groups_declare_them(client: httpx.AsyncClient, project: Project) -> None:
    """validate-event-schema.test.ts 'should reject value matching none of the listed types':
    expectedTypes is ['Numeric', 'Boolean'] for a property declared Numeric, then Boolean."""
    d = await define(client, project, "e", enforcement_mode="reject")
    for name, kind in (("first", "Numeric"), ("second", "Boolean")):
        g = await group(client, project, name, [prop("prop", kind)])
        await attach(client, project, d["id"], g["id"])
    assert await quarantined_ids(client, project, "e", [{"nested": True}], key="prop") == {"i0"}
    (row,) = await violations(client, project)
    assert row["errors"][0]["expected_types"] == ["Numeric", "Boolean"]


@pytest.mark.parametrize(("value", "shown"), [({"nested": "object"}, '{"nested":"object"}'), ([1, "x", None], '[1,"x",null]')])
async def test_object_values_are_shown_as_compact_json(client: httpx.AsyncClient, project: Project, value: Any, shown: str) -> None:
    """validate-event-schema.test.ts 'should stringify object values in error details':
    actualValue is '{"nested":"object"}' for a Boolean property given an object."""
    await schema(client, project, "e", [prop("prop", "Boolean")])
    await quarantined_ids(client, project, "e", [value], key="prop")
    (row,) = await violations(client, project)
    assert row["errors"][0]["actual_value"] == shown
    assert row["event"]["properties"]["prop"] == value  # the payload keeps the value itself


async def test_missing_required_and_multiple_errors(client: httpx.AsyncClient, project: Project) -> None:
    """validate-event-schema.test.ts 'should report multiple missing required fields' and
    'should include multiple errors in warning details'."""
    await schema(client, project, "e", [prop("field1"), prop("field2", "Numeric"), prop("field3", "Boolean")])
    r = await client.post(INGEST, json={"event.name": "e", "event.id": "m-1", "field2": "not-numeric"}, headers=project.headers)
    assert r.headers["X-Eventdock-Quarantined"] == "1"
    (row,) = await violations(client, project)
    assert [(e["property"], e["reason"]) for e in row["errors"]] == [
        ("field1", "missing_required"),
        ("field2", "type_mismatch"),
        ("field3", "missing_required"),
    ]


async def test_any_accepts_every_value(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog's ``Any`` property type skips type validation: every present value passes;
    a required ``Any`` property must still be present and non-null."""
    await schema(client, project, "e", [prop("anything", "Any"), prop("maybe", "Any", required=False)])
    body = [
        {"event.name": "e", "event.id": f"i{i}", "anything": v, "maybe": v}
        for i, v in enumerate(["x", 0, 1.5, True, False, {"a": [1]}, [], "", None])
    ]
    r = await client.post(INGEST, json=body, headers=project.headers)
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "1"
    (row,) = await violations(client, project)
    assert row["event_id"] == "i8" and [e["reason"] for e in row["errors"]] == ["missing_required"]
    assert row["errors"][0]["expected_types"] == ["Any"]


async def test_any_alongside_another_type_accepts_every_value(client: httpx.AsyncClient, project: Project) -> None:
    """A property Numeric in one group and Any in another: the value matches Any, whatever it is."""
    d = await define(client, project, "e", enforcement_mode="reject")
    for name, kind in (("n", "Numeric"), ("a", "Any")):
        g = await group(client, project, name, [prop("v", kind)])
        await attach(client, project, d["id"], g["id"])
    assert await quarantined_ids(client, project, "e", ["abc", {}, 3, ...]) == {"i3"}
