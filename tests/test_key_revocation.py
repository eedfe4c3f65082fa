"""A revoked key is refused by every worker and node at once (issue 20, item 6).

Real server processes with a key cache of 30 s, so only the push can explain
a refusal. Each worker is reached through a keep-alive connection known to be
served by it (the kernel hands new connections to whichever worker accepts
first, so fresh connections could all land on the one that revoked): on
PostgreSQL two nodes of two workers each, revoked on one, refused by all four
within 250 ms; on SQLite one server of two workers, refused by the other
worker's next request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server

# The connections to each worker stay open through the test's pauses (a CLI run takes seconds).
ENV = {"EVENTDOCK_KEY_CACHE_SECONDS": "30", "EVENTDOCK_HEADER_TIMEOUT": "120", "UVICORN_TIMEOUT_KEEP_ALIVE": "120"}


def bootstrap(url: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
    document = json.loads(out.stdout)
    return document["project"]["id"], document["key"]["token"]


def serving_pid(server: Server, conn: http.client.HTTPConnection) -> int | None:
    """The server process that holds the other end of ``conn``."""
    assert server.process is not None and conn.sock is not None
    port = conn.sock.getsockname()[1]
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if any(c.raddr and c.raddr.port == port for c in process.net_connections("tcp")):
                return process.pid
        except psutil.NoSuchProcess:
            continue
    return None


@contextlib.contextmanager
def one_per_worker(server: Server, workers: int) -> Iterator[list[http.client.HTTPConnection]]:
    """A keep-alive connection to each of the server's ``workers`` worker processes."""
    found: dict[int, http.client.HTTPConnection] = {}
    spare = []
    try:
        deadline = time.monotonic() + 30
        while len(found) < workers and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.connect()
            time.sleep(0.02)  # accepted by now
            pid = serving_pid(server, conn)
            if pid is not None and pid not in found:
                found[pid] = conn
            else:
                spare.append(conn)  # held open, so the next one may go elsewhere
        assert len(found) == workers, f"reached {len(found)} of {workers} workers"
        yield list(found.values())
    finally:
        for conn in [*spare, *found.values()]:
            conn.close()


def write(conn: http.client.HTTPConnection, token: str) -> int:
    body = json.dumps({"event.name": "revocation"})
    conn.request("POST", "/platform/ingest/v1/events", body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def call(conn: http.client.HTTPConnection, method: str, path: str, token: str, doc: object = None) -> tuple[int, dict[str, str]]:
    conn.request(method, path, body=None if doc is None else json.dumps(doc), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else {}


def make_key(conn: http.client.HTTPConnection, project_id: str, admin: str) -> tuple[str, str]:
    status, doc = call(conn, "POST", f"/api/projects/{project_id}/keys", admin, {"name": "w", "scopes": ["events:write"]})
    assert status == 201, doc
    return doc["id"], doc["token"]


def revoke(conn: http.client.HTTPConnection, project_id: str, key_id: str, admin: str) -> None:
    status, doc = call(conn, "DELETE", f"/api/projects/{project_id}/keys/{key_id}", admin)
    assert status == 204, doc


def test_revoked_on_one_node_is_refused_by_every_worker_of_both_within_250_ms(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("several nodes share a PostgreSQL database")
    url = fresh_database_url("postgresql", tmp_path, f"revoke_{tmp_path.name[-8:]}")
    try:
        project_id, admin = bootstrap(url)
        with (
            Server(url, workers=2, env=ENV, log_dir=tmp_path) as a,
            Server(url, workers=2, env=ENV, log_dir=tmp_path) as b,
            one_per_worker(a, 2) as on_a,
            one_per_worker(b, 2) as on_b,
        ):
            key_id, token = make_key(on_a[0], project_id, admin)
            assert [write(conn, token) for conn in on_a + on_b] == [202] * 4  # cached by every worker, for 30 s
            revoke(on_a[0], project_id, key_id, admin)
            time.sleep(0.25)
            assert [write(conn, token) for conn in on_b + on_a] == [401] * 4
    finally:
        drop_database(url)


def test_revoked_is_refused_by_every_sqlite_worker_at_once(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("the SQLite path")
    url = f"sqlite:///{tmp_path}/revoke.db"
    project_id, admin = bootstrap(url)
    with Server(url, workers=2, env=ENV, log_dir=tmp_path) as server, one_per_worker(server, 2) as (first, second):
        key_id, token = make_key(first, project_id, admin)
        assert [write(first, token), write(second, token)] == [202, 202]
        revoke(first, project_id, key_id, admin)
        assert write(second, token) == 401  # the other worker, with no pause
        assert write(first, token) == 401


def test_a_revocation_from_the_cli_reaches_every_worker(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, f"revoke_cli_{tmp_path.name[-8:]}")
    try:
        project_id, admin = bootstrap(url)
        with Server(url, workers=2, env=ENV, log_dir=tmp_path) as server, one_per_worker(server, 2) as conns:
            key_id, token = make_key(conns[0], project_id, admin)
            assert [write(conn, token) for conn in conns] == [202, 202]
            subprocess.run([sys.executable, "-m", "eventdock", "key", "revoke", key_id, "--project", project_id, "--database", url], check=True, timeout=60)
            time.sleep(0.25)
            assert [write(conn, token) for conn in conns] == [401, 401]
    finally:
        drop_database(url)
