"""A revoked key is refused by every worker and node at once (issue 20, item 6).

Real server processes with a key cache of 30 s, so only the push can explain
a refusal: on PostgreSQL two nodes of two workers each, revoked on one,
refused by all within 250 ms; on SQLite one server of two workers, refused
by the next request of either worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server

ENV = {"EVENTDOCK_KEY_CACHE_SECONDS": "30"}
REQUESTS = 24  # new connections each, so the kernel spreads them over the workers


def bootstrap(url: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
    document = json.loads(out.stdout)
    return document["project"]["id"], document["key"]["token"]


def write(server: Server, token: str, n: int) -> list[int]:
    statuses = []
    for i in range(n):
        with httpx.Client(base_url=server.url, timeout=10) as fresh:  # a new connection: any worker may take it
            r = fresh.post("/platform/ingest/v1/events", json={"event.name": "revocation", "n": i}, headers={"Authorization": f"Bearer {token}"})
        statuses.append(r.status_code)
    return statuses


def make_key(server: Server, project_id: str, admin_token: str) -> tuple[str, str]:
    r = httpx.post(f"{server.url}/api/projects/{project_id}/keys", json={"name": "w", "scopes": ["events:write"]}, headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def revoke(server: Server, project_id: str, key_id: str, admin_token: str) -> None:
    r = httpx.delete(f"{server.url}/api/projects/{project_id}/keys/{key_id}", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 204, r.text


def test_revoked_on_one_node_is_refused_by_every_worker_of_another_within_250_ms(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("several nodes share a PostgreSQL database")
    url = fresh_database_url("postgresql", tmp_path, f"revoke_{tmp_path.name[-8:]}")
    try:
        project_id, admin = bootstrap(url)
        with Server(url, workers=2, env=ENV, log_dir=tmp_path) as a, Server(url, workers=2, env=ENV, log_dir=tmp_path) as b:
            key_id, token = make_key(a, project_id, admin)
            assert set(write(b, token, REQUESTS)) == {202}  # cached by B's workers, for 30 s
            assert set(write(a, token, REQUESTS)) == {202}
            revoke(a, project_id, key_id, admin)
            time.sleep(0.25)
            assert set(write(b, token, REQUESTS)) == {401}
            assert set(write(a, token, REQUESTS)) == {401}
    finally:
        drop_database(url)


def test_revoked_is_refused_by_every_sqlite_worker_at_once(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("the SQLite path")
    url = f"sqlite:///{tmp_path}/revoke.db"
    project_id, admin = bootstrap(url)
    with Server(url, workers=2, env=ENV, log_dir=tmp_path) as server:
        key_id, token = make_key(server, project_id, admin)
        assert set(write(server, token, REQUESTS)) == {202}
        revoke(server, project_id, key_id, admin)
        assert set(write(server, token, REQUESTS)) == {401}


def test_a_revocation_from_the_cli_reaches_a_running_server(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, f"revoke_cli_{tmp_path.name[-8:]}")
    try:
        project_id, admin = bootstrap(url)
        with Server(url, workers=2, env=ENV, log_dir=tmp_path) as server:
            key_id, token = make_key(server, project_id, admin)
            assert set(write(server, token, REQUESTS)) == {202}
            subprocess.run([sys.executable, "-m", "eventdock", "key", "revoke", key_id, "--project", project_id, "--database", url], check=True, timeout=60)
            time.sleep(0.25)
            assert set(write(server, token, REQUESTS)) == {401}
    finally:
        drop_database(url)
