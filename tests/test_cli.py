"""The ``eventdock`` command (SPEC §1), run as a subprocess like a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import free_port


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "eventdock", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def one_json(result: subprocess.CompletedProcess[str]) -> Any:
    """stdout is exactly one JSON document."""
    return json.loads(result.stdout)


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[str]:
    url = fresh_database_url(backend, tmp_path, f"cli_{os.getpid()}_{tmp_path.name[-6:]}")
    yield url
    drop_database(url)


def test_init_twice(db: str) -> None:
    first = one_json(run("init", "--database", db, "--json"))
    assert set(first) == {"project", "key"}
    assert set(first["project"]) == {"id", "name"} and first["project"]["name"] == "default"
    assert set(first["key"]) == {"id", "token", "scopes"} and first["key"]["scopes"] == ["admin"]
    assert re.fullmatch(r"edk_[A-Za-z0-9_-]{43,}", first["key"]["token"])
    second = one_json(run("init", "--database", db, "--json"))
    assert second["project"] == first["project"]
    assert second["key"]["id"] != first["key"]["id"] and second["key"]["token"] != first["key"]["token"]


def test_project_and_key_create(db: str) -> None:
    project = one_json(run("project", "create", "shop", "--database", db, "--json"))
    assert set(project) == {"id", "name", "created_at"} and project["name"] == "shop"
    key = one_json(
        run("key", "create", "--project", project["id"], "--scope", "events:write", "--scope", "events:read", "--name", "ingest", "--database", db, "--json")
    )
    assert set(key) == {"id", "token", "scopes", "project_id", "name"}
    assert key["scopes"] == ["events:write", "events:read"] and key["project_id"] == project["id"] and key["name"] == "ingest"
    bad = run("key", "create", "--project", project["id"], "--scope", "nope", "--database", db, "--json", check=False)
    assert bad.returncode != 0 and bad.stdout == ""
    missing = run("key", "create", "--project", "no-such-project", "--scope", "*", "--database", db, "--json", check=False)
    assert missing.returncode != 0 and missing.stdout == ""


def test_project_create_with_rate_limit(db: str) -> None:
    project = one_json(run("project", "create", "limited", "--rate-limit", "5", "--burst", "10", "--database", db, "--json"))
    assert project["rate_limit_per_second"] == 5 and project["rate_limit_burst"] == 10
    bad = run("project", "create", "neg", "--rate-limit", "-1", "--database", db, check=False)
    assert bad.returncode != 0


def test_migrate(db: str) -> None:
    run("migrate", "--database", db)
    run("migrate", "--database", db)  # idempotent
    engine = sa.create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"projects", "api_keys", "events", "event_definitions", "alembic_version"} <= tables


def serve_once(db: str) -> str:
    """Start ``eventdock serve`` until it is ready, stop it, return its stdout."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventdock", "serve", "--port", str(port), "--database", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    return out


def test_serve_prints_the_bootstrap_token_once(db: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventdock", "serve", "--port", str(port), "--database", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        token = re.search(r"(edk_[A-Za-z0-9_-]+)", "".join(lines))
        assert token, lines
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        r = httpx.get(f"http://127.0.0.1:{port}/api/projects", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert r.status_code == 200 and [p["name"] for p in r.json()["results"]] == ["default"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert "edk_" not in serve_once(db)


def test_profile_export_and_delete(db: str, tmp_path: Path) -> None:
    project = one_json(run("project", "create", "people", "--retention-days", "90", "--database", db, "--json"))
    assert project["retention_days"] == 90
    events = tmp_path / "people.ndjson"
    events.write_text(
        "\n".join(json.dumps({"event.name": "visit", "event.id": f"e{i}", "email": "cli@example.com", "n": i}) for i in range(3))
        + "\n" + json.dumps({"event.name": "visit", "event.id": "other", "email": "other@example.com"}) + "\n"
    )
    run("import", str(events), "--project", project["id"], "--database", db, "--json")
    engine = sa.create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            profile = conn.execute(sa.text("SELECT profile_id FROM profile_identifiers WHERE value = 'cli@example.com'")).scalar()
        out = tmp_path / "export.ndjson"
        run("profile", "export", str(profile), "--project", project["id"], "--output", str(out), "--database", db)
        first, *rest = [json.loads(line) for line in out.read_text().splitlines()]
        assert first["id"] == profile and first["identifiers"]["email"] == ["cli@example.com"]
        assert [e["id"] for e in rest] == ["e0", "e1", "e2"]
        deletion = one_json(run("profile", "delete", str(profile), "--project", project["id"], "--database", db, "--json"))
        assert deletion["status"] == "completed" and deletion["profileId"] == profile
        assert deletion["deleted"] == {"events": 3, "profiles": 1, "violations": 0}
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT id FROM events WHERE project_id = :p"), {"p": project["id"]}).scalars().all()
            assert left == ["other"]
            assert conn.execute(sa.text("SELECT count(*) FROM profile_identifiers WHERE value = 'cli@example.com'")).scalar() == 0
        missing = run("profile", "delete", str(profile), "--project", project["id"], "--database", db, check=False)
        assert missing.returncode == 2 and "no profile" in missing.stderr
        # Suppressed: a later import of an event carrying the address stores nothing.
        with engine.connect() as conn:
            other = conn.execute(sa.text("SELECT profile_id FROM profile_identifiers WHERE value = 'other@example.com'")).scalar()
        suppressed = one_json(run("profile", "delete", str(other), "--project", project["id"], "--suppress", "--database", db, "--json"))
        assert suppressed["status"] == "completed" and suppressed["suppress"] is True
        late = tmp_path / "late.ndjson"
        late.write_text(json.dumps({"event.name": "visit", "event.id": "late", "email": "OTHER@example.com"}) + "\n")
        run("import", str(late), "--project", project["id"], "--database", db, "--json")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events WHERE project_id = :p"), {"p": project["id"]}).scalar() == 0
    finally:
        engine.dispose()
    updated = one_json(run("project", "update", project["id"], "--retention-days", "7", "--database", db, "--json"))
    assert updated["retention_days"] == 7 and updated["name"] == "people"
    cleared = one_json(run("project", "update", project["id"], "--retention-days", "0", "--database", db, "--json"))
    assert cleared["retention_days"] is None
