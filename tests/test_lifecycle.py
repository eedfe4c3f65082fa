"""Data lifecycle (SPEC §11) over HTTP: erasure, suppression, access export, retention.

Erasure is checked in the tables themselves, not only through the API: no
row that named the person may be left.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text

from eventdock.core.suppression import digest
from tests.conftest import Project
from tests.test_governance import INGEST, schema
from tests.test_event_schemas import prop

DAY_MS = 86_400_000


async def cdp(client: httpx.AsyncClient, project: Project, name: str = "visit", **fields: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": name, **fields}, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def erase(client: httpx.AsyncClient, project: Project, profile_id: str, **params: Any) -> dict[str, Any]:
    r = await client.delete(f"/v1/projects/{project.id}/profiles/{profile_id}", params=params, headers=project.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None
    return body["data"]  # type: ignore[no-any-return]


async def wait_completed(client: httpx.AsyncClient, project: Project, deletion_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(f"/v1/projects/{project.id}/deletions/{deletion_id}", headers=project.headers)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if data["status"] == "completed":
            return data  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.1)


async def rows(app: Any, sql: str, **params: Any) -> list[Any]:
    async with app.state.services.db.read() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def rows_naming(app: Any, project_id: str, needle: str) -> dict[str, int]:
    """Rows of every table that stores personal data and mention ``needle`` anywhere."""
    found = {}
    for table, column in (("events", "properties"), ("violations", "event"), ("profiles", "traits"), ("profile_identifiers", "value")):
        hits = await rows(app, f"SELECT count(*) FROM {table} WHERE project_id = :p AND lower(CAST({column} AS TEXT)) LIKE :n", p=project_id, n=f"%{needle.lower()}%")
        found[table] = hits[0][0]
    return found


async def test_erasure_removes_the_person_and_merged_profiles_from_every_table(app: Any, client: httpx.AsyncClient, project: Project) -> None:
    # Two profiles of one person, merged by an event that names both; another person beside them.
    first = (await cdp(client, project, uuidVisitor="vis-erase", firstName="Adalind"))["profileId"]
    second = (await cdp(client, project, email="ada@erase.example"))["profileId"]
    assert first != second
    merged = (await cdp(client, project, uuidVisitor="vis-erase", email="ada@erase.example", phone="+44 20 7946 0001"))["profileId"]
    assert merged == first  # the older survives
    other = (await cdp(client, project, email="bo@keep.example"))["profileId"]
    # A flagged violation carries one of her events; a quarantined one carries her email.
    await schema(client, project, "flagged_visit", [prop("page")], mode="allow")
    flagged = await cdp(client, project, "flagged_visit", email="ada@erase.example")
    await schema(client, project, "checkout", [prop("amount", "Numeric")])
    r = await client.post(INGEST, json=[{"event.name": "checkout", "email": "ADA@erase.example"}, {"event.name": "checkout", "email": "bo@keep.example"}], headers=project.headers)
    assert r.status_code == 202 and r.headers["X-Eventdock-Quarantined"] == "2", r.text
    assert (await rows_naming(app, project.id, "ada@erase"))["violations"] == 1  # the flagged one holds only the event id
    assert await rows(app, "SELECT action FROM violations WHERE event_id = :e", e=flagged["id"]) == [("flagged",)]

    deletion = await erase(client, project, second)  # the merged alias: its survivor goes
    assert deletion["profileId"] == first
    assert deletion["status"] in ("pending", "running", "completed")
    done = await wait_completed(client, project, deletion["id"])
    assert done["deleted"] == {"events": 4, "profiles": 2, "violations": 2}
    assert done["completedAt"] >= done["requestedAt"]

    assert await rows_naming(app, project.id, "ada@erase") == {"events": 0, "violations": 0, "profiles": 0, "profile_identifiers": 0}
    assert await rows_naming(app, project.id, "vis-erase") == {"events": 0, "violations": 0, "profiles": 0, "profile_identifiers": 0}
    # Each needle holds a letter past "f", so no hex id can contain it by chance.
    assert await rows_naming(app, project.id, "Adalind") == {"events": 0, "violations": 0, "profiles": 0, "profile_identifiers": 0}
    assert await rows(app, "SELECT id FROM profiles WHERE id IN (:a, :b) OR merged_into IN (:a, :b)", a=first, b=second) == []
    assert await rows(app, "SELECT id FROM events WHERE profile_id IN (:a, :b) OR id = :f", a=first, b=second, f=flagged["id"]) == []
    # The other person is untouched, and so is her quarantined checkout.
    assert (await rows_naming(app, project.id, "bo@keep"))["events"] == 1
    assert (await rows_naming(app, project.id, "bo@keep"))["violations"] == 1
    r = await client.get(f"/v1/projects/{project.id}/profiles/{other}", headers=project.headers)
    assert r.status_code == 200
    for gone in (first, second):
        r = await client.get(f"/v1/projects/{project.id}/profiles/{gone}", headers=project.headers)
        assert r.status_code == 404 and r.json()["success"] is False
    # The request is recorded with counts and times, and nothing that named her.
    (record,) = await rows(app, "SELECT * FROM deletion_requests WHERE id = :d", d=deletion["id"])
    assert not any(isinstance(v, str) and ("ada@" in v.lower() or "vis-erase" in v or "adalind" in v.lower()) for v in record)
    # A second request for the erased profile: nothing to find.
    r = await client.delete(f"/v1/projects/{project.id}/profiles/{first}", headers=project.headers)
    assert r.status_code == 404 and r.json()["success"] is False


async def test_suppressed_identifiers_drop_later_events(app: Any, client: httpx.AsyncClient, project: Project) -> None:
    pid = (await cdp(client, project, email="sup@example.com", uuidVisitor="sup-vis"))["profileId"]
    deletion = await erase(client, project, pid, suppress="true")
    assert deletion["suppress"] is True
    await wait_completed(client, project, deletion["id"])
    before = await suppressed_count(client, project)
    # Any one of the identifiers is enough, however it is spelled.
    again = await cdp(client, project, "after", email="  SUP@example.com ")
    assert again["profileId"] is None
    r = await client.post(INGEST, json=[{"event.name": "after", "uuidVisitor": "sup-vis"}, {"event.name": "after", "uuidVisitor": "someone-else"}], headers=project.headers)
    assert r.status_code == 202
    assert await suppressed_count(client, project) == before + 2
    stored = await rows(app, "SELECT properties FROM events WHERE project_id = :p AND name = 'after'", p=project.id)
    assert len(stored) == 1 and "someone-else" in str(stored[0][0])
    assert await rows_naming(app, project.id, "sup@example.com") == {"events": 0, "violations": 0, "profiles": 0, "profile_identifiers": 0}
    # What is kept are hashes keyed with the project's salt, not the identifiers.
    digests = {r[0] for r in await rows(app, "SELECT digest FROM suppressions WHERE project_id = :p", p=project.id)}
    (salt,) = [r[0] for r in await rows(app, "SELECT salt FROM suppression_keys WHERE project_id = :p", p=project.id)]
    assert digests == {digest(bytes.fromhex(salt), "email", "sup@example.com"), digest(bytes.fromhex(salt), "visitor_uuid", "sup-vis")}


async def suppressed_count(client: httpx.AsyncClient, project: Project) -> float:
    metrics = (await client.get("/metrics")).text
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("eventdock_events_rejected_total{") and f'project="{project.id}"' in line and 'reason="suppressed"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_without_suppress_the_person_may_come_back(client: httpx.AsyncClient, project: Project) -> None:
    pid = (await cdp(client, project, email="back@example.com"))["profileId"]
    await wait_completed(client, project, (await erase(client, project, pid))["id"])
    again = await cdp(client, project, email="back@example.com")
    assert again["profileId"] not in (None, pid)


async def test_export_streams_the_profile_then_every_event_of_its_family(client: httpx.AsyncClient, project: Project) -> None:
    a = await cdp(client, project, "first", uuidVisitor="exp-vis", firstName="Exa")
    b = await cdp(client, project, "second", email="exp@example.com")
    c = await cdp(client, project, "third", uuidVisitor="exp-vis", email="exp@example.com")
    await cdp(client, project, "stranger", email="other@example.com")
    r = await client.get(f"/v1/projects/{project.id}/profiles/{b['profileId']}/export", headers=project.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [msgspec.json.decode(line) for line in r.content.splitlines()]
    profile, *events = lines
    assert profile["id"] == a["profileId"] and profile["identifiers"]["email"] == ["exp@example.com"]
    assert profile["traits"]["firstName"] == "Exa"
    assert [e["id"] for e in events] == [a["id"], b["id"], c["id"]]
    assert {e["nameEvent"] for e in events} == {"first", "second", "third"}
    assert all(e["projectUuid"] == project.id and "properties" in e for e in events)


async def test_scopes_and_errors(client: httpx.AsyncClient, project: Project) -> None:
    pid = (await cdp(client, project, email="scope@example.com"))["profileId"]
    reader = await project.new_key(client, "profiles:read")
    r = await client.delete(f"/v1/projects/{project.id}/profiles/{pid}", headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}/export", headers=reader.headers)
    assert r.status_code == 200
    events_only = await project.new_key(client, "events:read")
    r = await client.get(f"/v1/projects/{project.id}/profiles/{pid}/export", headers=events_only.headers)
    assert r.status_code == 403
    r = await client.delete(f"/v1/projects/{project.id}/profiles/{pid}", params={"suppress": "maybe"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["error"]["fieldErrors"][0]["field"] == "suppress"
    for path in ("profiles/nobody", "profiles/nobody/export", "deletions/nothing"):
        method = client.delete if path == "profiles/nobody" else client.get
        r = await method(f"/v1/projects/{project.id}/{path}", headers=project.headers)
        assert r.status_code == 404 and r.json()["success"] is False, path
    writer = await project.new_key(client, "profiles:write")
    r = await client.delete(f"/v1/projects/{project.id}/profiles/{pid}", headers=writer.headers)
    assert r.status_code == 202
    r = await client.get(f"/v1/projects/{project.id}/deletions/{r.json()['data']['id']}", headers=writer.headers)
    assert r.status_code == 200  # profiles:write implies profiles:read


async def test_retention_removes_events_and_violations_past_the_window(app: Any, client: httpx.AsyncClient, project: Project) -> None:
    now = int(time.time() * 1000)
    await schema(client, project, "audited", [prop("amount", "Numeric")])
    body = [{"event.name": "old", "timestamp": now - 40 * DAY_MS - i} for i in range(25)]
    body += [{"event.name": "recent", "timestamp": now - 20 * DAY_MS - i} for i in range(5)]
    body += [{"event.name": "audited", "amount": "x", "timestamp": now - 40 * DAY_MS}]
    r = await client.post(INGEST, json=body, headers=project.headers)
    assert r.status_code == 202, r.text
    old_violations = await rows(app, "SELECT id FROM violations WHERE project_id = :p", p=project.id)
    assert len(old_violations) == 1
    # Make the quarantined entry old: violations go by when they arrived.
    async with app.state.services.db.write() as conn:
        await conn.execute(text("UPDATE violations SET received_at = :t WHERE project_id = :p"), {"t": now - 31 * DAY_MS, "p": project.id})

    r = await client.patch(f"/api/projects/{project.id}", json={"retention_days": 30}, headers=project.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["retention_days"] == 30
    deadline = time.monotonic() + 30
    while await rows(app, "SELECT id FROM events WHERE project_id = :p AND name = 'old'", p=project.id):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert len(await rows(app, "SELECT id FROM events WHERE project_id = :p AND name = 'recent'", p=project.id)) == 5
    deadline = time.monotonic() + 10
    while await rows(app, "SELECT id FROM violations WHERE project_id = :p", p=project.id):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    metrics = (await client.get("/metrics")).text
    assert 'eventdock_lifecycle_removed_total{reason="retention",table="events"}' in metrics
    assert "eventdock_retention_last_run_timestamp_seconds" in metrics
    deadline = time.monotonic() + 10
    while not (runs := await rows(app, "SELECT started_at, finished_at FROM lifecycle_runs WHERE events_removed > 0")):
        assert time.monotonic() < deadline  # recorded once the run ends (after its vacuum)
        await asyncio.sleep(0.1)
    assert all(start <= end for start, end in runs)
    r = await client.patch(f"/api/projects/{project.id}", json={"retention_days": None}, headers=project.admin.headers)
    assert r.status_code == 200 and r.json()["retention_days"] is None


@pytest.mark.parametrize("value", [0, -1, 36_501, "30", 1.5])
async def test_retention_days_is_validated(client: httpx.AsyncClient, project: Project, value: Any) -> None:
    r = await client.patch(f"/api/projects/{project.id}", json={"retention_days": value}, headers=project.admin.headers)
    assert r.status_code == 400, r.text
    r = await client.post("/api/projects", json={"name": "x", "retention_days": value}, headers=project.admin.headers)
    assert r.status_code == 400, r.text


async def test_project_created_with_retention(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post("/api/projects", json={"name": "kept-a-week", "retention_days": 7}, headers=project.admin.headers)
    assert r.status_code == 201 and r.json()["retention_days"] == 7
    r = await client.get(f"/api/projects/{r.json()['id']}", headers=project.admin.headers)
    assert r.json()["retention_days"] == 7


def test_migration_turns_incremental_auto_vacuum_on_for_an_existing_sqlite_file(tmp_path: Any) -> None:
    from alembic import command
    from alembic.config import Config

    from eventdock.store.database import MIGRATIONS, Database

    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    engine = db.blocking_engine()
    with engine.connect() as conn:  # a file made before 0006: auto_vacuum off
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.commit()
        conn.exec_driver_sql("INSERT INTO projects (id, name, created_at) VALUES ('p', 'kept', 1)")
        conn.commit()
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 0
    engine.dispose()
    db.migrate()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
        assert raw.execute("SELECT name, retention_days FROM projects").fetchall() == [("kept", None)]
    raw.close()


async def test_openapi_documents_the_lifecycle_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "202" in paths["/v1/projects/{projectUuid}/profiles/{profileId}"]["delete"]["responses"]
    assert "get" in paths["/v1/projects/{projectUuid}/deletions/{deletionId}"]
    export = paths["/v1/projects/{projectUuid}/profiles/{profileId}/export"]["get"]
    assert "application/x-ndjson" in export["responses"]["200"]["content"]
    assert "retention" in paths["/api/projects/{project_id}"]["patch"]["summary"]
