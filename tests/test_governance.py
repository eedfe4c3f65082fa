"""Schema enforcement at ingest (SPEC §3.4): coercion, rules, modes, quarantine, replay."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.test_event_schemas import attach, base, define, group, prop

INGEST = "/platform/ingest/v1/events"


async def schema(client: httpx.AsyncClient, project: Project, event: str, properties: list[dict[str, Any]], mode: str = "reject") -> dict[str, Any]:
    d = await define(client, project, event, enforcement_mode=mode)
    g = await group(client, project, f"{event}-group", properties)
    await attach(client, project, d["id"], g["id"])
    return {"definition": d, "group": g}


async def violations(client: httpx.AsyncClient, project: Project, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"{base(project)}/violations", params=params, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


async def quarantined_ids(client: httpx.AsyncClient, project: Project, event: str, values: list[Any], key: str = "v") -> set[str]:
    """Send one event per value (id ``i<index>``, ``key`` absent for the marker ``...``); ids quarantined."""
    body = [{"event.name": event, "event.id": f"i{i}", **({} if v is ... else {key: v})} for i, v in enumerate(values)]
    r = await client.post(INGEST, json=body, headers=project.headers)
    assert r.status_code == 202, r.text
    found = {v["event_id"] for v in await violations(client, project, event=event, action="rejected")}
    assert r.headers["X-Eventdock-Quarantined"] == str(len(found))
    return found


COERCION = {
    "String": (["x", "", 1, 2.5, True, {"a": 1}, [1]], [None, ...]),
    "Numeric": ([1, -2, 1.5, "12.5", "-3", "1e3", 0], [True, False, "abc", "", "NaN", "inf", {}, [], None]),
    "Boolean": ([True, False, "true", "false"], [1, 0, "True", "yes", "", None]),
    "DateTime": (
        [1700000000, 1700000000.5, "2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.123+02:00", "2024-01-01 10:00:00"],
        [True, "yesterday", "", "2024-13-01", {}, None],
    ),
    "Object": ([{}, {"a": 1}, [], [1, "x"]], ["{}", 1, True, "x", None]),
}


@pytest.mark.parametrize("kind", sorted(COERCION))
async def test_coercion_table(client: httpx.AsyncClient, project: Project, kind: str) -> None:
    passing, failing = COERCION[kind]
    await schema(client, project, "e", [prop("v", kind)])
    got = await quarantined_ids(client, project, "e", [*passing, *failing])
    assert got == {f"i{i}" for i in range(len(passing), len(passing) + len(failing))}
    rows = {v["event_id"]: v for v in await violations(client, project)}
    for row in rows.values():
        (error,) = row["errors"]
        assert error["property"] == "v" and error["expected_types"] == [kind]
        assert error["reason"] in ("missing_required", "type_mismatch") and error["message"].startswith(error["reason"])


RULES = [
    ("String", {"enum": ["a", "b"]}, ["a", "b"], ["c", ""], "must be one of ['a', 'b']"),
    ("String", {"not": {"enum": ["bad"]}}, ["good", ""], ["bad"], "must not be 'bad'"),
    ("Numeric", {"minimum": 5}, [5, 6, "5.5"], [4.99, "4"], "must be greater than or equal to 5"),
    ("Numeric", {"exclusiveMinimum": 5}, [5.01, "6"], [5, 4], "must be greater than 5"),
    ("Numeric", {"maximum": 10}, [10, -1], [10.5, "11"], "must be less than or equal to 10"),
    ("Numeric", {"exclusiveMaximum": 10}, [9.99], [10, 11], "must be less than 10"),
    ("Numeric", {"minimum": 0, "exclusiveMaximum": 1}, [0, 0.5], [-1, 1], "must be"),
]


@pytest.mark.parametrize(("kind", "rules", "passing", "failing", "message"), RULES)
async def test_validation_rules_enforced(
    client: httpx.AsyncClient, project: Project, kind: str, rules: dict[str, Any], passing: list[Any], failing: list[Any], message: str
) -> None:
    # Optional property: rules apply only when it is present; absent and null pass.
    await schema(client, project, "e", [prop("v", kind, required=False, rules=rules)])
    got = await quarantined_ids(client, project, "e", [*passing, ..., None, *failing])
    offset = len(passing) + 2
    assert got == {f"i{i}" for i in range(offset, offset + len(failing))}
    for row in await violations(client, project):
        (error,) = row["errors"]
        assert error["reason"] == "rule_violation" and message in error["message"]


async def test_property_in_two_groups_passes_with_either_type(client: httpx.AsyncClient, project: Project) -> None:
    d = await define(client, project, "e", enforcement_mode="reject")
    g1 = await group(client, project, "g1", [prop("v", "Numeric", rules={"minimum": 10})])
    g2 = await group(client, project, "g2", [prop("v", "Boolean"), prop("w", required=False)])
    await attach(client, project, d["id"], g1["id"])
    await attach(client, project, d["id"], g2["id"])
    got = await quarantined_ids(client, project, "e", [10, True, "false", 5, "x", ...])
    assert got == {"i3", "i4", "i5"}
    errors = {v["event_id"]: v["errors"][0] for v in await violations(client, project)}
    # PostHog's ingestion lists the types in the order the groups declare them.
    assert errors["i4"]["reason"] == "type_mismatch" and errors["i4"]["expected_types"] == ["Numeric", "Boolean"]
    assert errors["i3"]["reason"] == "rule_violation"


async def test_reject_quarantines_then_replay_after_relaxing(client: httpx.AsyncClient, project: Project) -> None:
    s = await schema(client, project, "purchase", [prop("amount", "Numeric"), prop("currency", rules={"enum": ["EUR"]})])
    # CDP: 422 SCHEMA_VIOLATION, one field error per violation, nothing stored.
    r = await client.post(
        f"/v1/projects/{project.id}/events",
        json={"nameEvent": "purchase", "attributes": {"currency": "USD"}},
        headers={**project.headers, "Idempotency-Key": "cdp-1"},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "SCHEMA_VIOLATION"
    assert {(f["field"], f["message"].split(":")[0]) for f in error["fieldErrors"]} == {("amount", "missing_required"), ("currency", "rule_violation")}
    assert (await client.get(f"/v1/projects/{project.id}/events/cdp-1", headers=project.headers)).status_code == 404
    # Generic ingest: 202 with the count quarantined; the good event is stored.
    r = await client.post(
        INGEST,
        json=[{"event.name": "purchase", "event.id": "g-1", "amount": "abc", "currency": "EUR", "timestamp": 1700000000},
              {"event.name": "purchase", "event.id": "g-2", "amount": 3, "currency": "EUR"}],
        headers=project.headers,
    )
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "1"
    assert (await client.get(f"/v1/projects/{project.id}/events/g-2", headers=project.headers)).status_code == 200
    rows = {v["event_id"]: v for v in await violations(client, project, action="rejected")}
    assert set(rows) == {"cdp-1", "g-1"}
    quarantined = rows["g-1"]
    assert quarantined["event"]["properties"]["amount"] == "abc" and quarantined["source"] == "ingest"
    assert quarantined["errors"] == [
        {"property": "amount", "reason": "type_mismatch", "expected_types": ["Numeric"], "actual_value": "abc", "message": quarantined["errors"][0]["message"]}
    ]
    replay = f"{base(project)}/violations/{quarantined['id']}/replay"
    r = await client.post(replay, headers=project.headers)
    assert r.status_code == 422 and r.json()["code"] == "type_mismatch" and r.json()["attr"] == "amount"
    assert [e["attr"] for e in r.json()["errors"]] == ["amount"]
    # Relax: amount becomes a String property; the replay stores the original event.
    amount = next(p for p in s["group"]["properties"] if p["name"] == "amount")
    currency = next(p for p in s["group"]["properties"] if p["name"] == "currency")
    r = await client.patch(
        f"{base(project)}/schema_property_groups/{s['group']['id']}/",
        json={"properties": [{**amount, "property_type": "String", "validation_rules": None}, currency]},
        headers=project.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(replay, headers=project.headers)
    assert r.status_code == 200 and r.json() == {"replayed": True, "event_id": "g-1"}
    stored = (await client.get(f"/v1/projects/{project.id}/events/g-1", headers=project.headers)).json()["data"]
    assert stored["source"] == "ingest" and stored["timestamp"] == "2023-11-14T22:13:20.000Z" and stored["properties"]["amount"] == "abc"
    r = await client.post(replay, headers=project.headers)
    assert r.status_code == 409 and r.json()["code"] == "already_replayed"
    listed = {v["event_id"]: v for v in await violations(client, project)}
    assert listed["g-1"]["replayed"] is True
    assert (await client.post(f"{base(project)}/violations/nope/replay", headers=project.headers)).status_code == 404


async def test_a_replayed_event_resolves_its_profile(client: httpx.AsyncClient, project: Project) -> None:
    """A replayed event is stored like any other (SPEC §3.4), so the identifiers
    in it resolve a profile (SPEC §3.5), the one the visitor's other events name."""
    s = await schema(client, project, "checkout", [prop("amount", "Numeric")])
    visitor = {"visitor_uuid": "2b1c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"}
    body = [{"event.name": "checkout", "event.id": "q-1", "amount": "abc", **visitor}, {"event.name": "page_view", "event.id": "q-2", **visitor}]
    r = await client.post(INGEST, json=body, headers=project.headers)
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "1"
    (row,) = await violations(client, project, action="rejected")
    amount = next(p for p in s["group"]["properties"] if p["name"] == "amount")
    r = await client.patch(
        f"{base(project)}/schema_property_groups/{s['group']['id']}/",
        json={"properties": [{**amount, "property_type": "String"}]},
        headers=project.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"{base(project)}/violations/{row['id']}/replay", headers=project.headers)
    assert r.status_code == 200, r.text
    replayed, other = [
        (await client.get(f"/v1/projects/{project.id}/events/{event_id}", headers=project.headers)).json()["data"] for event_id in ("q-1", "q-2")
    ]
    assert replayed["profileId"] is not None and replayed["profileId"] == other["profileId"]


async def test_a_flagged_retry_of_an_event_stored_before_is_not_flagged(client: httpx.AsyncClient, project: Project) -> None:
    """A flag records a violation of an event that was stored. A retry of an
    id stored before the schema tightened is not stored again (idempotency),
    so it is not flagged either: the stored event passed when it was stored.
    In the same request a new event that fails is flagged."""
    s = await schema(client, project, "upgrade", [prop("plan", rules={"enum": ["free", "pro", "gold"]})], mode="allow")
    body = {"event.name": "upgrade", "event.id": "u-1", "plan": "gold"}
    assert (await client.post(INGEST, json=body, headers=project.headers)).status_code == 202
    (plan,) = s["group"]["properties"]
    r = await client.patch(
        f"{base(project)}/schema_property_groups/{s['group']['id']}/",
        json={"properties": [{**plan, "validation_rules": {"enum": ["free", "pro"]}}]},
        headers=project.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(INGEST, json=[body, {**body, "event.id": "u-2"}], headers=project.headers)
    assert r.status_code == 202, r.text
    assert [row["event_id"] for row in await violations(client, project, action="flagged")] == ["u-2"]


async def test_allow_mode_stores_and_flags_without_payload(client: httpx.AsyncClient, project: Project) -> None:
    await schema(client, project, "signup", [prop("plan", rules={"enum": ["free", "pro"]})], mode="allow")
    r = await client.post(INGEST, json={"event.name": "signup", "event.id": "s-1", "plan": "gold"}, headers=project.headers)
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "0"
    assert (await client.get(f"/v1/projects/{project.id}/events/s-1", headers=project.headers)).status_code == 200
    # A retry of the same event is not flagged twice.
    await client.post(INGEST, json={"event.name": "signup", "event.id": "s-1", "plan": "gold"}, headers=project.headers)
    (row,) = await violations(client, project, action="flagged")
    assert row["event_id"] == "s-1" and row["event"] is None and row["errors"][0]["reason"] == "rule_violation"
    assert await violations(client, project, action="rejected") == []
    r = await client.post(f"{base(project)}/violations/{row['id']}/replay", headers=project.headers)
    assert r.status_code == 400 and r.json()["code"] == "not_replayable"
    r = await client.get(f"{base(project)}/violations?action=maybe", headers=project.headers)
    assert r.status_code == 400 and r.json()["attr"] == "action"


async def test_mode_switch_and_schema_removal_apply_at_once(client: httpx.AsyncClient, project: Project) -> None:
    s = await schema(client, project, "e", [prop("v")], mode="allow")
    assert await quarantined_ids(client, project, "e", [...]) == set()
    r = await client.patch(f"{base(project)}/event_definitions/{s['definition']['id']}", json={"enforcement_mode": "reject"}, headers=project.headers)
    assert r.status_code == 200
    r = await client.post(INGEST, json={"event.name": "e"}, headers=project.headers)
    assert r.headers["X-Eventdock-Quarantined"] == "1"
    r = await client.delete(f"{base(project)}/schema_property_groups/{s['group']['id']}", headers=project.headers)
    r = await client.post(INGEST, json={"event.name": "e"}, headers=project.headers)
    assert r.headers["X-Eventdock-Quarantined"] == "0"


async def test_deleted_definition_is_recreated_by_the_next_event(client: httpx.AsyncClient, project: Project) -> None:
    await client.post(INGEST, json={"event.name": "comeback"}, headers=project.headers)
    url = f"{base(project)}/event_definitions/"
    (d,) = (await client.get(url, headers=project.headers)).json()["results"]
    assert (await client.delete(f"{url}{d['id']}", headers=project.headers)).status_code == 204
    assert (await client.get(url, headers=project.headers)).json()["count"] == 0
    await client.post(INGEST, json={"event.name": "comeback"}, headers=project.headers)
    (again,) = (await client.get(url, headers=project.headers)).json()["results"]
    assert again["name"] == "comeback" and again["id"] != d["id"]
