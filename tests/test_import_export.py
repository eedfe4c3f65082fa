"""``eventdock import`` / ``eventdock export`` as a user runs them: subprocesses against the test database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Project


async def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop: the in-process app shares
    this database, and a write it has begun must be able to commit while the
    CLI waits for the lock."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventdock", *args, "--database", database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def listing(client: httpx.AsyncClient, project: Project) -> list[dict[str, Any]]:
    r = await client.get(f"/api/projects/{project.id}/events", params={"limit": "1000"}, headers=project.headers)
    assert r.status_code == 200
    return r.json()["results"]  # type: ignore[no-any-return]


async def test_import_ndjson_then_reimport_adds_nothing(client: httpx.AsyncClient, project: Project, database_url: str, tmp_path: Path) -> None:
    lines = [{"event.id": f"imp-{i}", "event.name": "page", "timestamp": 1_700_000_000 + i, "i": i} for i in range(120)]
    lines += [{"event.type": "no-id", "visitor_uuid": "iv", "n": n} for n in range(5)]  # ids derived from content
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    done = await cli("import", str(path), "--project", project.id, "--batch-size", "50", "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["project_id"] == project.id and report["read"] == 125 and report["stored"] == 125 and report["duplicates"] == 0
    stored = await listing(client, project)
    assert len(stored) == 125
    assert {e["source"] for e in stored} == {"import"}
    page = next(e for e in stored if e["id"] == "imp-7")
    assert page["timestamp"] == "2023-11-14T22:13:27.000Z" and page["properties"]["i"] == 7
    visitors = {e["profile_id"] for e in stored if e["name"] == "no-id"}
    assert len(visitors) == 1 and None not in visitors  # identity resolution ran
    again = await cli("import", str(path), "--project", project.id, "--json", database_url=database_url)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["stored"] == 0 and json.loads(again.stdout)["duplicates"] == 125
    assert len(await listing(client, project)) == 125


async def test_import_json_array_and_export_roundtrip(client: httpx.AsyncClient, project: Project, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([{"event.id": i, "event.name": "arr", "timestamp": f"2024-01-0{i}T00:00:00Z"} for i in range(1, 6)]))
    done = await cli("import", str(path), "--project", project.id, "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 5
    # Export to a file, with a time window, oldest first.
    out = tmp_path / "out.ndjson"
    done = await cli("export", "--project", project.id, "--after", "2024-01-02T00:00:00Z", "--before", "2024-01-05T00:00:00Z", "--output", str(out), database_url=database_url)
    assert done.returncode == 0, done.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["id"] for e in exported] == ["2", "3", "4"]
    # Same lines as the HTTP export.
    r = await client.get(f"/api/projects/{project.id}/events/export", params={"after": "2024-01-02T00:00:00Z", "before": "2024-01-05T00:00:00Z"}, headers=project.headers)
    assert [json.loads(line) for line in r.text.splitlines()] == exported
    # To stdout, everything.
    done = await cli("export", "--project", project.id, database_url=database_url)
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["1", "2", "3", "4", "5"]
    # An export imports elsewhere as the same events.
    from tests.conftest import create_project

    other = await create_project(client, project.admin)
    done = await cli("import", str(out), "--project", other.id, "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    copied = sorted(await listing(client, other), key=lambda e: e["timestamp"])
    assert [(e["id"], e["name"], e["timestamp"]) for e in copied] == [(e["id"], e["name"], e["timestamp"]) for e in exported]


async def test_import_errors_name_the_line(project: Project, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"event.id": "ok"}\n{"event.id": true}\n')
    done = await cli("import", str(path), "--project", project.id, database_url=database_url)
    assert done.returncode == 1 and "line 2" in done.stderr and "event.id" in done.stderr
    path.write_text('{"event.id": "ok"}\n{not json\n')
    done = await cli("import", str(path), "--project", project.id, database_url=database_url)
    assert done.returncode == 1 and "bad.ndjson:2" in done.stderr
    done = await cli("import", str(path), "--project", "00000000-0000-0000-0000-00000000dead", database_url=database_url)
    assert done.returncode == 1 and "no project" in done.stderr
    done = await cli("export", "--project", project.id, "--after", "whenever", database_url=database_url)
    assert done.returncode == 2
