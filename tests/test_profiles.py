"""Identity resolution (SPEC §3.5) and the CDP profile endpoints, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Project


async def cdp(client: httpx.AsyncClient, project: Project, **fields: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": "visit", **fields}, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def profile(client: httpx.AsyncClient, project: Project, profile_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/projects/{project.id}/profiles/{profile_id}", headers=project.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None
    return body["data"]  # type: ignore[no-any-return]


async def test_event_without_identifiers_has_no_profile(client: httpx.AsyncClient, project: Project) -> None:
    data = await cdp(client, project, attributes={"page": "/"})
    assert data["profileId"] is None


async def test_new_profile_then_join_and_add_identifiers(client: httpx.AsyncClient, project: Project) -> None:
    first = await cdp(client, project, uuidVisitor="v-1", firstName="Ada", timestamp=None)
    pid = first["profileId"]
    assert pid
    second = await cdp(client, project, uuidVisitor="v-1", email="  Ada@Example.COM ", phone="+44 (20) 7946-0958")
    assert second["profileId"] == pid
    p = await profile(client, project, pid)
    assert p["id"] == pid
    assert p["identifiers"]["uuidVisitor"] == ["v-1"]
    assert p["identifiers"]["email"] == ["ada@example.com"]
    assert p["identifiers"]["phone"] == ["+442079460958"]
    assert p["identifiers"]["customerUUID"] == []
    assert p["traits"]["firstName"] == "Ada"
    assert p["traits"]["email"] == "ada@example.com"
    assert p["eventCount"] == 2
    assert p["firstSeen"] <= p["lastSeen"]


@pytest.mark.parametrize("blank", ["", "null", "undefined", "0", "-1", "anonymous", "ANONYMOUS", "00000000-0000-0000-0000-000000000000"])
async def test_blank_like_values_identify_nobody(client: httpx.AsyncClient, project: Project, blank: str) -> None:
    a = await cdp(client, project, uuidVisitor=blank, email=blank)
    b = await cdp(client, project, uuidVisitor=blank, email=blank)
    assert a["profileId"] is None and b["profileId"] is None


async def test_merge_chain_visitor_email_customer(client: httpx.AsyncClient, project: Project) -> None:
    # Three strangers at first: a visitor, an email, a customer.
    visitor = (await cdp(client, project, uuidVisitor="vis-9"))["profileId"]
    by_email = (await cdp(client, project, email="bo@example.com"))["profileId"]
    customer = (await cdp(client, project, customerUUID="CUST-1"))["profileId"]
    assert len({visitor, by_email, customer}) == 3
    # The visitor gives their email: two profiles merge into the oldest (the visitor's).
    joined = (await cdp(client, project, uuidVisitor="vis-9", email="BO@example.com"))["profileId"]
    assert joined == visitor
    # Then logs in: the customer's profile merges in too.
    final = (await cdp(client, project, email="bo@example.com", customerUUID="CUST-1", lastName="Bo"))["profileId"]
    assert final == visitor
    for old in (visitor, by_email, customer):
        p = await profile(client, project, old)
        assert p["id"] == visitor  # merged ids answer with the survivor
    assert p["identifiers"]["uuidVisitor"] == ["vis-9"]
    assert p["identifiers"]["email"] == ["bo@example.com"]
    assert p["identifiers"]["customerUUID"] == ["CUST-1"]
    assert p["eventCount"] == 5
    assert p["traits"]["lastName"] == "Bo"
    # Its events are those of every merged profile.
    r = await client.get(f"/v1/projects/{project.id}/profiles/{by_email}/events", headers=project.headers)
    assert r.status_code == 200
    assert len(r.json()["data"]["items"]) == 5
    # Any identifier finds it.
    for query in ({"uuidVisitor": "vis-9"}, {"email": " BO@EXAMPLE.com"}, {"customerUUID": "CUST-1"}):
        r = await client.get(f"/v1/projects/{project.id}/profiles", params=query, headers=project.headers)
        assert [x["id"] for x in r.json()["data"]["items"]] == [visitor], query


async def test_two_customer_uuids_never_merge(client: httpx.AsyncClient, project: Project) -> None:
    alice = (await cdp(client, project, customerUUID="alice", email="shared@example.com"))["profileId"]
    # Same email, another customer: the event joins the profile of its own customer.
    bob = (await cdp(client, project, customerUUID="bob", email="shared@example.com"))["profileId"]
    assert bob != alice
    pa, pb = await profile(client, project, alice), await profile(client, project, bob)
    assert pa["identifiers"]["customerUUID"] == ["alice"] and pa["identifiers"]["email"] == ["shared@example.com"]
    assert pb["identifiers"]["customerUUID"] == ["bob"] and pb["identifiers"]["email"] == []
    # Bob's existing profile gets a visitor id; an event carrying both visitor ids joins neither merge.
    await cdp(client, project, customerUUID="bob", uuidVisitor="vb")
    both = (await cdp(client, project, email="shared@example.com", uuidVisitor="vb"))["profileId"]
    assert both == alice  # the best-ranked identifier (email) decides
    pa, pb = await profile(client, project, alice), await profile(client, project, bob)
    assert pa["id"] != pb["id"]
    assert pa["identifiers"]["customerUUID"] == ["alice"] and pb["identifiers"]["customerUUID"] == ["bob"]


async def test_traits_keep_the_latest_non_null_value(client: httpx.AsyncClient, project: Project) -> None:
    pid = (await cdp(client, project, softId="s1", firstName="Old"))["profileId"]
    await cdp(client, project, softId="s1", firstName="New")
    await cdp(client, project, softId="s1")  # no firstName: keeps "New"
    # A late, older event does not overwrite a newer trait.
    r = await client.post(
        "/platform/ingest/v1/events",
        json={"event.name": "x", "soft_id": "s1", "first_name": "Ancient", "timestamp": 1_000_000_000},
        headers=project.headers,
    )
    assert r.status_code == 202
    p = await profile(client, project, pid)
    assert p["traits"]["firstName"] == "New"
    assert p["eventCount"] == 4
    assert p["firstSeen"] == "2001-09-09T01:46:40.000Z"


async def test_generic_ingest_snake_case_identifiers_and_batch(client: httpx.AsyncClient, project: Project) -> None:
    # One request, one transaction: the second event joins the profile the first one created.
    batch = [
        {"event.name": "a", "visitor_uuid": "gv", "event.id": "g1"},
        {"event.name": "b", "visitor_uuid": "gv", "customer_uuid": "gc", "event.id": "g2"},
        {"event.name": "c", "fingerprint": "fp", "event.id": "g3"},
    ]
    r = await client.post("/platform/ingest/v1/events", json=batch, headers=project.headers)
    assert r.status_code == 202
    got = {}
    for eid in ("g1", "g2", "g3"):
        r = await client.get(f"/v1/projects/{project.id}/events/{eid}", headers=project.headers)
        got[eid] = r.json()["data"]["profileId"]
    assert got["g1"] == got["g2"] and got["g3"] not in (None, got["g1"])
    p = await profile(client, project, got["g1"])
    assert p["identifiers"]["customerUUID"] == ["gc"] and p["identifiers"]["uuidVisitor"] == ["gv"]


async def test_profile_endpoints_errors_and_scope(client: httpx.AsyncClient, project: Project) -> None:
    pid = (await cdp(client, project, email="z@example.com"))["profileId"]
    r = await client.get(f"/v1/projects/{project.id}/profiles/nope", headers=project.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = await client.get(f"/v1/projects/{project.id}/profiles", headers=project.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    r = await client.get(f"/v1/projects/{project.id}/profiles", params={"email": "undefined"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["error"]["fieldErrors"][0]["field"] == "email"
    r = await client.get(f"/v1/projects/{project.id}/profiles", params={"email": "nobody@example.com"}, headers=project.headers)
    assert r.status_code == 200 and r.json()["data"]["items"] == []
    reader = await project.new_key(client, "events:read")
    r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}", headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    profiles_key = await project.new_key(client, "profiles:read")
    r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}", headers=profiles_key.headers)
    assert r.status_code == 200
    r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}/events", params={"cursor": "!!"}, headers=profiles_key.headers)
    assert r.status_code == 400


async def test_profile_events_cursor_pages(client: httpx.AsyncClient, project: Project) -> None:
    pid = None
    for i in range(5):
        pid = (await cdp(client, project, uuidVisitor="pager", attributes={"i": str(i)}))["profileId"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}/events", params=params, headers=project.headers)
        data = r.json()["data"]
        seen.extend(item["properties"]["i"] for item in data["items"])
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert seen == ["4", "3", "2", "1", "0"]


async def test_profiles_are_per_project(client: httpx.AsyncClient, project: Project, admin: Any) -> None:
    from tests.conftest import create_project

    other = await create_project(client, admin)
    a = (await cdp(client, project, email="same@example.com"))["profileId"]
    b = (await cdp(client, other, email="same@example.com"))["profileId"]
    assert a != b
    r = await client.get(f"/v1/projects/{other.id}/profiles/{a}", headers=other.headers)
    assert r.status_code == 404
    r = await client.get(f"/v1/projects/{other.id}/profiles/{a}", headers=project.headers)
    assert r.status_code == 403


async def test_concurrent_workers_resolve_one_identity(database_url: str, project: Project, tmp_path: Any) -> None:
    """Two server processes, many concurrent requests sharing one email: one profile, nothing lost."""
    import asyncio

    from tests.support.server import Server

    with Server(database_url, workers=2, log_dir=tmp_path) as server:
        async def send(i: int) -> str:
            # A connection per request, so the kernel spreads them over both workers.
            async with httpx.AsyncClient(base_url=server.url) as c:
                r = await c.post(
                    f"/v1/projects/{project.id}/events",
                    json={"nameEvent": "race", "email": "race@example.com", "uuidVisitor": f"rv-{i}"},
                    headers=project.headers,
                )
                assert r.status_code == 200, r.text
                return r.json()["data"]["profileId"]  # type: ignore[no-any-return]

        ids = await asyncio.gather(*(send(i) for i in range(40)))
        async with httpx.AsyncClient(base_url=server.url) as c:
            roots = set()
            for pid in set(ids):
                r = await c.get(f"/v1/projects/{project.id}/profiles/{pid}", headers=project.headers)
                roots.add(r.json()["data"]["id"])
            assert len(roots) == 1
            p = r.json()["data"]
    assert p["eventCount"] == 40
    assert sorted(p["identifiers"]["uuidVisitor"]) == sorted(f"rv-{i}" for i in range(40))
    assert p["identifiers"]["email"] == ["race@example.com"]
