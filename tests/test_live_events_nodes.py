"""Two server processes (two workers each) on one PostgreSQL: each live-event
transition lands in the stream exactly once, and a repeat is copied once
(SPEC §6, "even with several workers"). Real time, a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import drop_database, fresh_database_url
from tests.support import jsonapi_schema
from tests.support.server import Server

EVENTS = 4


def bootstrap(url: str) -> tuple[str, str]:
    """(project id, admin token) of a fresh database, as `eventdock init` makes them."""
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
    document = json.loads(out.stdout)
    return document["project"]["id"], document["key"]["token"]


def test_two_nodes_write_each_system_event_once(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("several nodes share a PostgreSQL database")
    url = fresh_database_url("postgresql", tmp_path, f"live_nodes_{tmp_path.name[-8:]}")
    try:
        project_id, token = bootstrap(url)
        env = {"EVENTDOCK_LIVE_CLOCK_INTERVAL": "0.2"}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json"}
        http = httpx.Client(event_hooks=jsonapi_schema.SYNC_HOOKS)  # every /api/v2 response checked against the JSON:API 1.1 schema
        with http, Server(url, workers=2, env=env, log_dir=tmp_path) as a, Server(url, workers=2, env=env, log_dir=tmp_path) as b:
            start_at = round(time.time() + 1.5, 3)
            ids = []
            for i in range(EVENTS):
                attributes = {"name": f"kick-off {i}", "start_mode": "clock", "start_at": start_at, "duration": 1, "repeat": True, "repeat_in": 1}
                body = {"data": {"type": "events", "relationships": {"project": {"data": {"type": "projects", "id": project_id}}}, "attributes": attributes}}
                r = http.post(f"{(a, b)[i % 2].url}/api/v2/events", json=body, headers=headers)
                assert r.status_code == 201, r.text
                ids.append(r.json()["data"]["id"])
            expected = sorted(f"{kind}:{i}" for i in ids for kind in ("live_event_started", "live_event_ended"))

            def stored() -> list[str]:
                r = http.get(f"{b.url}/v1/projects/{project_id}/events", params={"limit": "1000"}, headers=headers)
                assert r.status_code == 200, r.text
                return sorted(item["id"] for item in r.json()["data"]["items"])

            deadline = time.monotonic() + 8
            while stored() != expected and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.6)  # a few more polls of all four clocks: nothing more may appear
            assert stored() == expected
            r = http.get(f"{a.url}/api/v2/projects/{project_id}/events", params={"filter[state]": "future"}, headers=headers)
            copies = r.json()["data"]
            assert len(copies) == EVENTS, "one repeat copy per event"
            assert {c["attributes"]["name"] for c in copies} == {f"kick-off {i}" for i in range(EVENTS)}
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                names = conn.execute(sa.text("SELECT name FROM events WHERE project_id = :p AND source = 'live_event'"), {"p": project_id}).scalars().all()
        finally:
            engine.dispose()
        assert sorted(names) == ["live_event_ended"] * EVENTS + ["live_event_started"] * EVENTS
    finally:
        drop_database(url)
