"""Database faults (issue 20): while PostgreSQL is down every route answers 503
with Retry-After in its own dialect's envelope, the server recovers by
itself, and the log says once that the database went and once that it came
back. Played on a private cluster (``tests/support/pgcluster.py``) that the
test stops and starts; the shared server serves the rest of the suite."""

from __future__ import annotations

import pickle
import resource
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import psycopg
import pytest
import sqlalchemy as sa

from eventdock.core.errors import StoreFull, StoreUnavailable
from eventdock.store.faults import FULL_QUIET_S, translate
from tests.support.faults import (
    init_admin,
    is_cdp_503,
    is_drf_503,
    is_generic_503,
    is_jsonapi_503,
    log_text,
    project_with_key,
)
from tests.support.pgcluster import PrivateCluster, private_pg  # noqa: F401 - the fixture
from tests.support.server import Server

GENERIC = "/platform/ingest/v1/events"
KEY_CACHE_S = 4.0


JSONAPI = {"Content-Type": "application/vnd.api+json"}


def live_event(project: str) -> dict[str, Any]:
    """A JSON:API document creating a live event an hour from now."""
    return {
        "data": {
            "type": "events",
            "attributes": {"name": "show", "start_mode": "clock", "start_at": int(time.time()) + 3600, "duration": 60},
            "relationships": {"project": {"data": {"type": "projects", "id": project}}},
        }
    }


def routes(project: str, live_id: str, event_id: str) -> list[tuple[str, str, dict[str, Any], Callable[[httpx.Response], bool]]]:
    """(method, path, request kwargs, the dialect's 503 check) for a route of each kind."""
    p = f"/api/projects/{project}"
    return [
        ("POST", f"/v1/projects/{project}/events", {"json": {"nameEvent": "outage"}}, is_cdp_503),
        ("GET", f"/v1/projects/{project}/events", {}, is_cdp_503),
        ("GET", f"/v1/projects/{project}/events/{event_id}", {}, is_cdp_503),
        ("GET", f"/v1/projects/{project}/profiles?email=a@example.com", {}, is_cdp_503),
        ("POST", GENERIC, {"json": [{"event.name": "outage"}]}, is_generic_503),
        ("GET", f"{p}/event_definitions/", {}, is_drf_503),
        ("POST", f"{p}/schema_property_groups/", {"json": {"name": f"g{uuid.uuid4().hex[:6]}", "properties": []}}, is_drf_503),
        ("GET", f"{p}/violations", {}, is_drf_503),
        ("GET", f"{p}/events", {}, is_drf_503),
        ("GET", f"{p}/events/trend", {}, is_drf_503),
        ("GET", f"{p}/events/export", {}, is_drf_503),
        ("GET", f"{p}/events/stream", {}, is_drf_503),
        ("GET", f"{p}/keys", {}, is_drf_503),
        ("GET", f"/api/v2/projects/{project}/events", {}, is_jsonapi_503),
        ("GET", f"/api/v2/events/{live_id}", {}, is_jsonapi_503),
        ("POST", "/api/v2/events", {"json": live_event(project), "headers": JSONAPI}, is_jsonapi_503),
    ]


def test_postgres_outage_is_503_in_every_dialect_and_recovers(private_pg: PrivateCluster, tmp_path: Path) -> None:  # noqa: F811
    url = private_pg.create_database(f"outage_{uuid.uuid4().hex[:8]}")
    admin = init_admin(url)
    with Server(url, log_dir=tmp_path, env={"EVENTDOCK_KEY_CACHE_SECONDS": str(KEY_CACHE_S)}) as server:
        project, token = project_with_key(server.url, admin, scopes=["*"])
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=20) as client:
            r = client.post(f"/v1/projects/{project}/events", json={"nameEvent": "before"})
            key_cached_at = time.monotonic()  # the key's first lookup
            assert r.status_code == 200, r.text
            event_id = r.json()["data"]["id"]
            live = client.post("/api/v2/events", json=live_event(project), headers=JSONAPI)
            assert live.status_code == 201, live.text
            live_id = live.json()["data"]["id"]

            with client.stream("GET", f"/api/projects/{project}/events/stream") as stream:
                lines = stream.iter_lines()
                assert next(lines) == ": connected"
                private_pg.stop("fast")
                # Streaming had begun: the stream ends, cleanly, with an event saying why.
                tail = list(lines)
            assert "event: unavailable" in tail and "retry: 1000" in tail, tail

            # Once with the key still cached (ingest reaches the writer), once
            # after the cache expired (the key's lookup meets the outage).
            for wait_until in (0.0, key_cached_at + KEY_CACHE_S + 0.2):
                time.sleep(max(0.0, wait_until - time.monotonic()))
                for method, path, kwargs, dialect_503 in routes(project, live_id, event_id):
                    r = client.request(method, path, **kwargs)
                    assert r.status_code == 503, (method, path, r.status_code, r.text)
                    assert int(r.headers["Retry-After"]) >= 1, (method, path)
                    assert dialect_503(r), (method, path, r.text)
            r = client.get("/readyz")
            assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
            refused = [
                float(line.rsplit(" ", 1)[1])
                for line in client.get("/metrics").text.splitlines()
                if line.startswith("eventdock_events_rejected_total{") and f'"{project}"' in line and 'reason="unavailable"' in line
            ]
            assert sum(refused) >= 1, "events refused with 503 are counted"

            private_pg.start()
            deadline = time.monotonic() + 20
            for method, path, kwargs, _ in routes(project, live_id, event_id):
                while True:  # a client retrying after Retry-After
                    r = client.request(method, path, **kwargs) if not path.endswith("/stream") else _stream_head(client, path)
                    if r.status_code != 503:
                        break
                    assert time.monotonic() < deadline, f"{method} {path} still 503 after the database came back"
                    time.sleep(0.2)
                assert r.status_code in (200, 201, 202), (method, path, r.status_code, r.text)
            assert client.get("/readyz").status_code == 200

    log = log_text(tmp_path)
    assert log.count("the database is unavailable") == 1, log
    assert log.count("the database is available again") == 1, log
    assert "Traceback" not in log and "Exception in ASGI" not in log, log


def _stream_head(client: httpx.Client, path: str) -> httpx.Response:
    with client.stream("GET", path) as r:
        if r.status_code == 200:
            assert next(r.iter_lines()) == ": connected"
        else:
            r.read()
        return r


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), StoreUnavailable),
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"), StoreUnavailable),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), StoreUnavailable),
        (asyncpg.exceptions.DiskFullError("could not extend file"), StoreFull),
        (ConnectionRefusedError(111, "Connection refused"), StoreUnavailable),
        (psycopg.OperationalError("connection failed: Connection refused"), StoreUnavailable),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
        (ValueError("a bug"), None),
    ],
)
def test_driver_exceptions_translate_to_store_unavailable_or_stay(exc: BaseException, kind: type | None) -> None:
    wrapped = sa.exc.OperationalError("SELECT 1", {}, exc)
    for candidate in (exc, wrapped):
        found = translate(candidate)
        assert (type(found) if found is not None else None) is kind


def test_sqlite_full_translates_and_a_constraint_does_not(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "full.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count=3")
    with pytest.raises(sqlite3.Error) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    conn.close()
    assert isinstance(translate(full.value), StoreFull)
    assert translate(sqlite3.IntegrityError("UNIQUE constraint failed")) is None


def test_store_unavailable_travels_by_pickle() -> None:
    """SQLite's writer process sends it back to the worker by pickle."""
    full = pickle.loads(pickle.dumps(StoreFull("full", retry_after=5)))
    assert type(full) is StoreFull and full.retry_after == 5 and full.message == "full"


def test_sqlite_full_is_503_in_every_dialect_keeps_the_file_intact_and_resumes(tmp_path: Path) -> None:
    """``EVENTDOCK_SQLITE_MAX_BYTES`` makes SQLITE_FULL on demand: the writer's
    process, the worker's own writes and every dialect answer 503; deleting
    rows makes room, and ingest resumes without a restart."""
    path = tmp_path / "full.db"
    url = f"sqlite:///{path}"
    admin = init_admin(url)
    with sqlite3.connect(path) as probe:
        size = probe.execute("PRAGMA page_count").fetchone()[0] * probe.execute("PRAGMA page_size").fetchone()[0]
    cap = size + 400_000
    with Server(url, log_dir=tmp_path, env={"EVENTDOCK_SQLITE_MAX_BYTES": str(cap)}) as server:
        project, token = project_with_key(server.url, admin, scopes=["*"])
        headers = {"Authorization": f"Bearer {token}"}
        admin_headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            sent = 0
            for blob_size, per_request in ((2000, 20), (200, 10), (0, 1)):  # to the cap, then into the pages' last bytes
                while True:
                    batch = [{"event.id": f"filler-{sent + i}", "event.name": "filler", "blob": "x" * blob_size} for i in range(per_request)]
                    r = client.post(GENERIC, json=batch)
                    if r.status_code == 503:
                        break
                    assert r.status_code == 202, r.text
                    sent += len(batch)
                    assert sent < 5000, "the cap was never reached"
                assert is_generic_503(r) and int(r.headers["Retry-After"]) >= 1, r.text

            def fill_until_503(method: str, path: str, **kwargs: Any) -> httpx.Response:
                for _ in range(60):  # a small write may still fit in a page's last bytes
                    r = client.request(method, path, **kwargs)
                    if r.status_code == 503:
                        assert int(r.headers["Retry-After"]) >= 1, (path, r.headers)
                        return r
                    assert r.status_code < 300, (path, r.status_code, r.text)
                raise AssertionError(f"{method} {path} never got 503")

            assert is_cdp_503(fill_until_503("POST", f"/v1/projects/{project}/events", json={"nameEvent": "small"}))
            assert is_generic_503(fill_until_503("POST", GENERIC, json={"event.name": "small"}))
            assert is_jsonapi_503(fill_until_503("POST", "/api/v2/events", json=live_event(project), headers=JSONAPI))
            assert is_drf_503(fill_until_503("POST", "/api/projects", json={"name": "more" * 40}, headers=admin_headers))
            # Reads go on.
            assert client.get(f"/v1/projects/{project}/events", params={"limit": 1}).status_code == 200
            with sqlite3.connect(path) as check:
                assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                check.execute("DELETE FROM events WHERE name = 'filler'")  # the operator makes room

            deadline = time.monotonic() + 10
            while (r := client.post(f"/v1/projects/{project}/events", json={"nameEvent": "after"})).status_code == 503:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert client.post(GENERIC, json=[{"event.name": "after"}] * 3).status_code == 202
            assert client.post("/api/projects", json={"name": "more"}, headers=admin_headers).status_code == 201
            time.sleep(FULL_QUIET_S)  # the log says "takes writes again" once writes have gone through for this long
            assert client.post(GENERIC, json=[{"event.name": "after"}]).status_code == 202
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("SELECT count(*) FROM events WHERE name = 'after'").fetchone()[0] == 5
    # Not a line per refused request: one per episode (the test's own filling
    # may take longer than FULL_QUIET_S between two refusals on a slow
    # machine, which ends an episode), each closed once writes went through.
    log = log_text(tmp_path)
    assert 1 <= log.count("the database is full") <= 3, log
    assert log.count("the database takes writes again") == log.count("the database is full"), log
    assert "Traceback" not in log, log


def test_an_export_cut_short_by_an_outage_does_not_end_like_a_complete_one(private_pg: PrivateCluster, tmp_path: Path) -> None:  # noqa: F811
    """Pages of 1,000 events of ~8 kB: the server is still sending the first
    page, far more than the sockets buffer, when the database goes away
    before the second is read. The body then lacks its last chunk."""
    url = private_pg.create_database(f"export_{uuid.uuid4().hex[:8]}")
    admin = init_admin(url)
    try:
        with Server(url, log_dir=tmp_path) as server:
            project, token = project_with_key(server.url, admin, scopes=["*"])
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                blob = "x" * 8000
                for start in range(0, 2500, 250):
                    r = client.post(GENERIC, json=[{"event.id": f"e{start + i}", "event.name": "big", "blob": blob} for i in range(250)])
                    assert r.status_code == 202, r.text
                received = 0
                with client.stream("GET", f"/api/projects/{project}/events/export") as r:
                    assert r.status_code == 200
                    chunks = r.iter_bytes()
                    received += len(next(chunks))
                    private_pg.stop("fast")
                    with pytest.raises(httpx.RemoteProtocolError):
                        for chunk in chunks:
                            received += len(chunk)
                assert 0 < received < 2500 * 8000
    finally:
        if not private_pg.is_running():
            private_pg.start()
    assert "Traceback" not in log_text(tmp_path)


def test_a_file_size_limit_on_sqlites_writer_is_503_and_ingest_resumes_when_lifted(tmp_path: Path) -> None:
    """The operating system refusing the writes (RLIMIT_FSIZE on the writer's
    process, as ``ulimit -f`` would): SQLite's I/O error or full error comes
    back through the writer process as 503; lifting the limit resumes ingest
    on the same process, and the file stays intact."""
    path = tmp_path / "fsize.db"
    url = f"sqlite:///{path}"
    admin = init_admin(url)
    with Server(url, log_dir=tmp_path) as server:
        project, token = project_with_key(server.url, admin, scopes=["events:write"])
        writer = next(
            p for p in psutil.Process(server.process.pid).children(recursive=True) if "eventdock.store.writer_process" in " ".join(p.cmdline())
        )
        acked: list[str] = []
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

            def send(n: int) -> httpx.Response:
                ids = [f"f{n}-{i}" for i in range(20)]
                r = client.post(GENERIC, json=[{"event.id": i, "event.name": "filler", "blob": "y" * 4000} for i in ids])
                if r.status_code == 202:
                    acked.extend(ids)
                return r

            assert send(0).status_code == 202
            files = [path, Path(f"{path}-wal")]
            limit = max(f.stat().st_size for f in files if f.exists()) + 65536
            resource.prlimit(writer.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            try:
                for n in range(1, 400):
                    r = send(n)
                    if r.status_code == 503:
                        break
                    assert r.status_code == 202, r.text
                else:
                    raise AssertionError("the file-size limit was never reached")
                assert is_generic_503(r) and int(r.headers["Retry-After"]) >= 1, r.text
                assert writer.is_running()
                with sqlite3.connect(path) as check:
                    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            finally:
                resource.prlimit(writer.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            deadline = time.monotonic() + 10
            while (r := send(n)).status_code == 503:  # the same request again
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
            assert r.status_code == 202, r.text
            assert writer.is_running()  # the same process took the writes again
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in check.execute("SELECT id FROM events WHERE name = 'filler'")}
    assert stored == set(acked)
    log = log_text(tmp_path)
    assert log.count("the database is full") + log.count("the database fails") == 1, log
    assert "Traceback" not in log, log
