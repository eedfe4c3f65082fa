"""SPEC §3.3: an event definition's volume and last_seen_at are kept current
(they may lag a few seconds), and retried ids count once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Project
from tests.support.custom_app import custom_app
from tests.test_import_export import cli

INGEST = "/platform/ingest/v1/events"


async def definition(client: httpx.AsyncClient, project: Project, name: str) -> dict[str, Any]:
    r = await client.get(f"/api/projects/{project.id}/event_definitions/", params={"search": name}, headers=project.headers)
    assert r.status_code == 200
    (found,) = [d for d in r.json()["results"] if d["name"] == name]
    return found  # type: ignore[no-any-return]


async def test_volume_and_last_seen_follow_the_stored_events(client: httpx.AsyncClient, project: Project) -> None:
    batch = [
        {"event.id": "u1", "event.name": "usage", "timestamp": "2026-01-01T00:00:00Z"},
        {"event.id": "u2", "event.name": "usage", "timestamp": "2026-01-03T00:00:00Z"},
        {"event.id": "u3", "event.name": "usage", "timestamp": "2026-01-02T00:00:00Z"},
    ]
    assert (await client.post(INGEST, json=batch, headers=project.headers)).status_code == 202
    # Listed as soon as the request is acknowledged (created in the same transaction).
    assert (await definition(client, project, "usage"))["name"] == "usage"
    # A retry of the same ids is acknowledged and stored (and counted) once.
    assert (await client.post(INGEST, json=batch, headers=project.headers)).status_code == 202
    for _ in range(50):  # usage counters are flushed about once a second
        found = await definition(client, project, "usage")
        if found["volume"] == 3:
            break
        await asyncio.sleep(0.1)
    assert found["volume"] == 3
    assert found["last_seen_at"].startswith("2026-01-03T00:00:00")
    await asyncio.sleep(1.5)  # one more flush must not count the retry
    assert (await definition(client, project, "usage"))["volume"] == 3


async def test_an_import_counts_its_events_when_it_ends(client: httpx.AsyncClient, project: Project, database_url: str, tmp_path: Path) -> None:
    """``eventdock import`` stops its writer, which writes the usage it
    gathered: the counters hold every imported event."""
    path = tmp_path / "usage.ndjson"
    path.write_text("".join(json.dumps({"event.id": f"iu{i}", "event.name": "imported-usage", "timestamp": 1_700_000_000_000 + i}) + "\n" for i in range(7)))
    done = await cli("import", str(path), "--project", project.id, "--batch-size", "3", "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    found = await definition(client, project, "imported-usage")
    assert found["volume"] == 7
    assert found["last_seen_at"].startswith("2023-11-14T22:13:20.006")


async def test_stopping_the_writer_writes_the_last_counters(tmp_path: Path, backend: str) -> None:
    """The writer writes the counters it still holds on its own connection as
    it stops, not leaving them for a flush on a new connection afterwards."""
    async with custom_app(backend, tmp_path) as c:
        writer = c.app.state.services.writer
        posted = 0
        while not writer.usage:  # committed and not yet flushed (the once-a-second flush may just have run)
            assert posted < 3
            answer = await c.client.post(INGEST, json={"event.id": f"last{posted}", "event.name": "stop-usage"}, headers=c.project.headers)
            assert answer.status_code == 202, answer.text
            posted += 1
        await writer.stop()
        assert writer.usage == {}
        assert (await definition(c.client, c.project, "stop-usage"))["volume"] == posted
