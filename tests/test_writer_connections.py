"""The writer's connections (SPEC §3.2): on PostgreSQL several transactions
of one process commit at once; SQLite admits one writer and keeps one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventdock.config import WriterSettings
from eventdock.core.events import Event
from eventdock.core.governance import ViolationRecord
from eventdock.core.identity import Identity
from eventdock.store import profiles, violations
from eventdock.store.database import Database
from eventdock.store.writer import BatchTransaction
from eventdock.store.writer_process import CHECKPOINT_AFTER_CHANGES, encode_frame
from tests.support.custom_app import custom_app
from tests.test_limits import INGEST, WriteLock, _until, cdp


async def test_two_connections_commit_overlapping_client_ids_without_deadlock(tmp_path: Path, backend: str) -> None:
    """Two requests carrying the same 300 client ids in opposite orders, in two
    transactions that wait on the same lock and then insert at once: each id
    is stored once and both requests succeed (rows go in in key order, so the
    two transactions cannot wait for each other in a cycle)."""
    async with custom_app(backend, tmp_path, writer=WriterSettings(max_wait_ms=0, connections=2)) as c:
        writer = c.app.state.services.writer
        ids = [f"id{n:03d}" for n in range(300)]
        forward = [{"event.id": i, "event.type": "a"} for i in ids]
        backward = [{"event.id": i, "event.type": "b"} for i in reversed(ids)]

        def post(body: list[dict[str, str]]) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(c.client.post(INGEST, json=body, headers=c.project.headers))

        with WriteLock(c.database_url):
            first = post(forward)
            await _until(lambda: writer.in_flight_events == 300)
            second = post(backward)
            if backend == "postgresql":
                await _until(lambda: writer.in_flight_events == 600)  # two transactions, both waiting on the lock
            else:
                await _until(lambda: writer.queued_events == 300)  # one writer; the other request waits its turn
                assert writer.in_flight_events == 300
        responses = await asyncio.gather(first, second)
        assert [r.status_code for r in responses] == [202, 202], [r.text for r in responses]
        items = (await c.client.get(cdp(c.project.id), params={"limit": 1000}, headers=c.project.headers)).json()["data"]["items"]
        assert sorted(i["id"] for i in items) == ids


async def test_the_connections_share_max_batch_events(tmp_path: Path, backend: str) -> None:
    """What a worker holds in transactions stays within max_batch_events: with
    two connections each transaction takes at most half (SPEC §9's memory bound)."""
    async with custom_app(backend, tmp_path, writer=WriterSettings(max_wait_ms=0, connections=2, max_batch_events=4)) as c:
        writer = c.app.state.services.writer

        def post(n: int) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(c.client.post(INGEST, json={"event.id": f"s{n}"}, headers=c.project.headers))

        with WriteLock(c.database_url):
            waiting = [post(0)]
            await _until(lambda: writer.in_flight_events == 1)
            waiting += [post(n) for n in range(1, 4)]
            if backend == "postgresql":
                await _until(lambda: writer.in_flight_events == 3)  # the second transaction took its share: 2
                assert writer.queued_events == 1
            else:
                await _until(lambda: writer.queued_events == 3)  # SQLite: one connection, one transaction
                assert writer.in_flight_events == 1
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 4


async def test_with_no_transaction_in_flight_a_request_is_committed_at_once(tmp_path: Path, backend: str) -> None:
    """The writer does not wait for company when the database is idle: the
    commit in flight is the window the next batch gathers in. A lone request
    answers long before ``max_wait_ms`` (here 20 s) has passed."""
    async with custom_app(backend, tmp_path, writer=WriterSettings(max_wait_ms=20_000)) as c:
        started = asyncio.get_running_loop().time()
        for n in range(3):
            answer = await c.client.post(INGEST, json={"event.id": f"lone{n}"}, headers=c.project.headers)
            assert answer.status_code == 202, answer.text
        assert asyncio.get_running_loop().time() - started < 10


async def test_while_a_transaction_commits_the_next_batch_waits_to_gather(tmp_path: Path, backend: str) -> None:
    """PostgreSQL, two writer connections: while one transaction is in flight,
    the other connection lets requests gather for ``max_wait_ms`` before it
    takes them, so two requests that arrive within that window share a
    transaction instead of the first one taking the connection alone."""
    if backend != "postgresql":
        pytest.skip("SQLite keeps one writer connection: the next batch always waits for the commit")
    async with custom_app(backend, tmp_path, writer=WriterSettings(max_wait_ms=1_000, connections=2)) as c:
        writer = c.app.state.services.writer

        def post(n: int) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(c.client.post(INGEST, json={"event.id": f"g{n}"}, headers=c.project.headers))

        with WriteLock(c.database_url):
            waiting = [post(0)]
            await _until(lambda: writer.in_flight_events == 1)  # the first transaction, held by the lock
            waiting.append(post(1))
            await _until(lambda: writer.queued_events == 1)
            waiting.append(post(2))
            # Both in the second connection's one transaction: 1 + 2 in flight.
            await _until(lambda: writer.in_flight_events == 3)
            assert writer.queued_events == 0
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 3


def _writer_processes(database_url: str) -> list[int]:
    """This test process's SQLite writer processes for this database, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"eventdock.store.writer_process" in cmdline and database_url.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def test_a_writer_process_that_died_is_replaced(tmp_path: Path) -> None:
    """SQLite's transactions run in a process of the worker's own, started with
    the writer. Killed between two transactions, it is replaced before the next
    one is sent: no request notices, and what was acknowledged before and
    after is stored. It ends with the app."""
    async with custom_app("sqlite", tmp_path) as c:
        r = await c.client.post(INGEST, json={"event.id": "before", "event.type": "a"}, headers=c.project.headers)
        assert r.status_code == 202, r.text
        (first,) = _writer_processes(c.database_url)
        os.kill(first, signal.SIGKILL)
        # Dead means it can be reaped (peeked at with WNOWAIT: the worker
        # still reaps it). Its command line empties earlier, and its main
        # thread shows as a zombie while its checkpointer thread is still
        # exiting: a frame sent then is lost.
        await _until(lambda: os.waitid(os.P_PID, first, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None)
        r = await c.client.post(INGEST, json={"event.id": "after", "event.type": "a"}, headers=c.project.headers)
        assert r.status_code == 202, r.text
        (second,) = _writer_processes(c.database_url)
        assert second != first
        for event_id in ("before", "after"):
            r = await c.client.get(f"/v1/projects/{c.project.id}/events/{event_id}", headers=c.project.headers)
            assert r.status_code == 200, r.text
        url = c.database_url
    assert _writer_processes(url) == []


async def test_a_writer_process_dying_mid_transaction_answers_503_and_the_next_write_works(tmp_path: Path) -> None:
    """Killed while a transaction is in it (SQLite's own write lock, held from
    outside, keeps it waiting in BEGIN IMMEDIATE), its request is answered 503
    with Retry-After, not 500, and the next request is stored."""
    async with custom_app("sqlite", tmp_path) as c:
        (pid,) = _writer_processes(c.database_url)
        writer = c.app.state.services.writer
        with WriteLock(c.database_url):
            pending = asyncio.create_task(c.client.post(INGEST, json={"event.type": "lost"}, headers=c.project.headers))
            await _until(lambda: writer.in_flight_events == 1)
            await asyncio.sleep(0.2)
            os.kill(pid, signal.SIGKILL)
            r = await pending
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        r = await c.client.post(INGEST, json={"event.type": "next"}, headers=c.project.headers)
        assert r.status_code == 202, r.text


async def test_the_writer_process_copies_the_wal_into_the_database_file_without_a_commit_waiting(tmp_path: Path) -> None:
    """Past ``CHECKPOINT_AFTER_CHANGES`` rows the writer process's own thread
    checkpoints the WAL, well before the 1,000 pages at which SQLite would
    make a COMMIT do it: the database file read alone, without its WAL,
    soon holds every acknowledged event."""
    async with custom_app("sqlite", tmp_path) as c:
        batch = [{"event.type": "checkpointed", "n": n} for n in range(CHECKPOINT_AFTER_CHANGES + 500)]
        r = await c.client.post(INGEST, json=batch, headers=c.project.headers)
        assert r.status_code == 202, r.text
        database = Path(c.database_url.removeprefix("sqlite:///"))
        copy = tmp_path / "database-file-alone.db"

        def stored_in_the_file_alone() -> int:
            shutil.copyfile(database, copy)  # without -wal and -shm: what the checkpoints copied
            try:
                with contextlib.closing(sqlite3.connect(copy)) as conn:
                    return conn.execute("SELECT count(*) FROM events WHERE name = 'checkpointed'").fetchone()[0]  # type: ignore[no-any-return]
            except sqlite3.DatabaseError:  # copied while a checkpoint was writing it
                return -1

        await _until(lambda: stored_in_the_file_alone() == len(batch))


_NO_POSTGRESQL = r"""
import asyncio, io, json, pickle, sys

def postgresql_loaded() -> bool:
    return any(name.startswith("sqlalchemy.dialects.postgresql") for name in sys.modules)

async def worker(url: str) -> dict:
    import httpx
    from asgi_lifespan import LifespanManager
    from eventdock.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(url, migrate_on_start=False))  # as under `eventdock serve`
    async with LifespanManager(app):
        _, admin = await app.state.services.tenancy.bootstrap(force_new_key=True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            headers = {"Authorization": f"Bearer {admin.token}"}
            project = (await c.post("/api/projects", json={"name": "p"}, headers=headers)).json()["id"]
            key = (await c.post(f"/api/projects/{project}/keys", json={"name": "k", "scopes": ["*"]}, headers=headers)).json()["token"]
            r = await c.post(f"/v1/projects/{project}/events", json={"nameEvent": "e", "uuidVisitor": "v"}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
    return {"project": project, "postgresql": postgresql_loaded()}

def writer(url: str) -> dict:
    from eventdock.store.writer_process import HEADER, serve  # what `python -m eventdock.store.writer_process` runs

    answers = io.BytesIO()
    serve(url, sys.stdin.buffer, answers)
    ok, value = pickle.loads(answers.getvalue()[HEADER.size:])
    return {"ok": ok, "answer": repr(value), "postgresql": postgresql_loaded()}

mode, url = sys.argv[1], sys.argv[2]
print(json.dumps(asyncio.run(worker(url)) if mode == "worker" else writer(url)))
"""


def test_a_sqlite_server_never_loads_postgresqls_dialect(tmp_path: Path) -> None:
    """Neither a SQLite worker nor its writer's process imports PostgreSQL's
    SQLAlchemy dialect (about 2.7 MB in each, issue 6): JSONB and the upsert
    are PostgreSQL's only on a PostgreSQL connection. Each runs in a fresh
    interpreter; the writer's is sent a transaction with every step's work."""
    url = f"sqlite:///{tmp_path / 'only.db'}"
    Database(url).migrate()  # here: migrations may name PostgreSQL's types

    def run(mode: str, stdin: bytes = b"") -> dict[str, Any]:
        root = Path(__file__).resolve().parents[1]
        done = subprocess.run([sys.executable, "-c", _NO_POSTGRESQL, mode, url], input=stdin, capture_output=True, cwd=root, timeout=60)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return json.loads(done.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]

    worker = run("worker")
    assert worker["postgresql"] is False
    project = worker["project"]
    event = Event("e-2", project, "new-name", 1, 1, "cdp", None, b"{}", identity=Identity(identifiers=[("customer_uuid", "v2")]))
    flagged = ViolationRecord(project, "e-2", "new-name", "cdp", 1, "flagged", [{"message": "m"}], None)
    transaction = BatchTransaction([event], [flagged], {(project, "new-name")}, [profiles.resolve_profiles], [violations.record_violations])
    writer = run("writer", encode_frame(transaction))
    assert writer["ok"] is True, writer["answer"]
    assert writer["postgresql"] is False
