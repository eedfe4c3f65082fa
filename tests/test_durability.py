"""Durability and group commit (SPEC §3.2): a real server killed mid-load
keeps every acknowledged event exactly once; concurrent requests share
transactions."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Project, drop_database, fresh_database_url
from tests.support.server import Server

INGEST = "/platform/ingest/v1/events"
CLIENTS = 32
KILL_AFTER_ACKS = 400


def init_admin(url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)["key"]["token"]  # type: ignore[no-any-return]


def project_with_key(base: str, admin_token: str) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    project = httpx.post(f"{base}/api/projects", json={"name": "durable"}, headers=headers).json()["id"]
    token = httpx.post(f"{base}/api/projects/{project}/keys", json={"scopes": ["events:write", "events:read"]}, headers=headers).json()["token"]
    return project, token


async def load_until_killed(server: Server, project: str, token: str) -> set[str]:
    """Single-event requests from many clients; SIGKILL once enough were acknowledged."""
    acked: set[str] = set()
    killed = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}

    async def one_client(n: int, client: httpx.AsyncClient) -> None:
        seq = 0
        while not killed.is_set():
            event_id = f"c{n}-{seq}"
            seq += 1
            try:
                if n % 2:
                    r = await client.post(INGEST, json={"event.id": event_id, "event.name": "load", "n": seq}, headers=headers)
                else:
                    r = await client.post(
                        f"/v1/projects/{project}/events", json={"nameEvent": "load"}, headers={**headers, "Idempotency-Key": event_id}
                    )
            except httpx.HTTPError:
                return  # the server is gone; this request was never acknowledged
            if r.status_code in (200, 202):
                acked.add(event_id)

    async def killer() -> None:
        while len(acked) < KILL_AFTER_ACKS:
            await asyncio.sleep(0.005)
        killed.set()
        await asyncio.to_thread(server.kill)

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        await asyncio.wait_for(asyncio.gather(killer(), *(one_client(n, client) for n in range(CLIENTS))), timeout=120)
    return acked


async def test_sigkill_mid_load_loses_and_duplicates_nothing_acknowledged(backend: str, tmp_path: Path) -> None:
    url = fresh_database_url(backend, tmp_path, f"durable_{tmp_path.name[-8:]}")
    try:
        admin = init_admin(url)
        server = Server(url, workers=2).start()
        try:
            project, token = project_with_key(server.url, admin)
            acked = await load_until_killed(server, project, token)
        finally:
            server.kill()
        assert len(acked) >= KILL_AFTER_ACKS
        with Server(url) as again:
            # The restarted server answers for every acknowledged event.
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=again.url, headers=headers) as client:
                sample = sorted(acked)[:: max(1, len(acked) // 25)]
                for event_id in sample:
                    r = await client.get(f"/v1/projects/{project}/events/{event_id}")
                    assert r.status_code == 200, (event_id, r.text)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id FROM events WHERE project_id = :p"), {"p": project}).scalars().all()
        finally:
            engine.dispose()
        assert len(rows) == len(set(rows)), "an event was stored twice"
        missing = acked - set(rows)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    finally:
        drop_database(url)


def _batch_requests(metrics: str) -> tuple[float, float]:
    """(observations, observations of exactly one request) of the batch-size histogram."""
    count = float(re.search(r"^eventdock_writer_batch_requests_count (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    single = float(re.search(r'^eventdock_writer_batch_requests_bucket\{le="1\.0"\} (\S+)$', metrics, re.M).group(1))  # type: ignore[union-attr]
    return count, single


async def test_concurrent_single_event_requests_share_transactions(client: httpx.AsyncClient, project: Project) -> None:
    before = _batch_requests((await client.get("/metrics")).text)
    responses = await asyncio.gather(
        *(client.post(INGEST, json={"event.id": f"g{n}"}, headers=project.headers) for n in range(64))
    )
    assert {r.status_code for r in responses} == {202}
    after = _batch_requests((await client.get("/metrics")).text)
    transactions = after[0] - before[0]
    shared = transactions - (after[1] - before[1])
    assert shared >= 1, "no transaction held more than one request"
    assert transactions < 64
    items = (await client.get(f"/v1/projects/{project.id}/events", params={"limit": 100}, headers=project.headers)).json()["data"]["items"]
    assert len(items) == 64


def _insert_then_fail(batch: list[Any], conn: sa.Connection) -> None:
    from eventdock.store.events import insert_events

    insert_events(conn, batch)
    raise RuntimeError("a later step of the batch failed")


async def test_a_rolled_back_batch_leaves_no_rows_also_when_copied(backend: str, tmp_path: Path) -> None:
    """All or none (SPEC §3.2) for the insert itself. PostgreSQL's COPY goes to
    asyncpg beside SQLAlchemy; it must run inside the writer's transaction,
    not commit on its own."""
    from eventdock.config import Limits
    from eventdock.core.events import Draft, normalise, now_ms
    from eventdock.store.database import Database
    from eventdock.store.events import COPY_MIN_ROWS
    from eventdock.store.writer_connection import connect_writer

    url = fresh_database_url(backend, tmp_path, "rollback")
    db = Database(url)
    try:
        await asyncio.to_thread(db.migrate)
        batch = [
            normalise(Draft(name="n", properties={"i": i}), project_id="p", source="ingest", limits=Limits(), received_at_ms=now_ms())
            for i in range(COPY_MIN_ROWS * 2)
        ]

        writer = connect_writer(db)
        try:
            with pytest.raises(RuntimeError, match="a later step"):
                # Module-level: SQLite's writer process is sent it pickled.
                await writer.run(functools.partial(_insert_then_fail, batch))
        finally:
            await writer.close()
        async with db.read() as read:
            assert (await read.execute(sa.text("SELECT count(*) FROM events"))).scalar() == 0
    finally:
        await db.dispose()
        drop_database(url)
