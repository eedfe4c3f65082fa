"""Data lifecycle with real server processes (SPEC §11): an erasure killed
halfway completes after a restart; two nodes of two workers never run two
removers at once; ingest keeps acknowledging during a large removal.

Batches are slowed with the ordinary settings ``EVENTDOCK_LIFECYCLE_BATCH_ROWS``
(rows per removal transaction) and ``EVENTDOCK_LIFECYCLE_PAUSE_SECONDS``
(the pause after each), so that a kill lands mid-way and runs last long
enough to overlap if the lock failed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bench.retention import seed_old_events
from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server
from tests.test_durability import init_admin

INGEST = "/platform/ingest/v1/events"
DAY_MS = 86_400_000
# The suite removes this many events while ingesting: 100,000 took 30-45 s
# per database on the shared 2-core machine, the 1,000,000 minutes
# (EVENTDOCK_TEST_REMOVAL_EVENTS=1000000 runs it; bench/retention.py times it).
REMOVAL_EVENTS = int(os.environ.get("EVENTDOCK_TEST_REMOVAL_EVENTS", "50000"))


@pytest.fixture
def url(backend: str, tmp_path: Path) -> Iterator[str]:
    database = fresh_database_url(backend, tmp_path, f"lifecycle_{os.getpid()}_{tmp_path.name[-6:]}")
    yield database
    drop_database(database)


def project_with_key(base: str, admin: str) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(f"{base}/api/projects", json={"name": "lifecycle"}, headers=headers)
    r.raise_for_status()
    project = r.json()["id"]
    r = httpx.post(f"{base}/api/projects/{project}/keys", json={"scopes": ["*"]}, headers=headers)
    r.raise_for_status()
    return project, {"Authorization": f"Bearer {r.json()['token']}"}


def scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def test_erasure_killed_halfway_completes_after_restart(url: str, tmp_path: Path) -> None:
    admin = init_admin(url)
    slow = {"EVENTDOCK_LIFECYCLE_BATCH_ROWS": "10", "EVENTDOCK_LIFECYCLE_PAUSE_SECONDS": "0.2"}
    server = Server(url, env=slow, log_dir=tmp_path).start()
    try:
        project, headers = project_with_key(server.url, admin)
        body = [{"event.name": "visit", "email": "kill@example.com", "n": i} for i in range(300)]
        assert httpx.post(server.url + INGEST, json=body, headers=headers).status_code == 202
        profile = scalar(url, "SELECT profile_id FROM profile_identifiers WHERE value = 'kill@example.com'")
        r = httpx.delete(f"{server.url}/v1/projects/{project}/profiles/{profile}", headers=headers)
        assert r.status_code == 202, r.text
        deletion = r.json()["data"]["id"]
        deadline = time.monotonic() + 30
        while True:  # until it is visibly halfway
            state = httpx.get(f"{server.url}/v1/projects/{project}/deletions/{deletion}", headers=headers).json()["data"]
            if state["status"] == "running" and state["deleted"]["events"] >= 50:
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
    finally:
        server.kill(signal.SIGKILL)
    assert scalar(url, "SELECT status FROM deletion_requests WHERE id = :d", d=deletion) == "running"
    left = scalar(url, "SELECT count(*) FROM events WHERE profile_id = :p", p=profile)
    assert isinstance(left, int) and 0 < left < 300

    with Server(url, log_dir=tmp_path) as again:
        deadline = time.monotonic() + 30
        while (state := httpx.get(f"{again.url}/v1/projects/{project}/deletions/{deletion}", headers=headers).json()["data"])["status"] != "completed":
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
    assert state["deleted"] == {"events": 300, "profiles": 1, "violations": 0}
    assert scalar(url, "SELECT count(*) FROM events WHERE project_id = :p", p=project) == 0
    assert scalar(url, "SELECT count(*) FROM profiles WHERE project_id = :p", p=project) == 0
    assert scalar(url, "SELECT count(*) FROM profile_identifiers WHERE project_id = :p", p=project) == 0


def test_two_nodes_of_two_workers_run_one_remover_at_a_time(url: str, tmp_path: Path) -> None:
    admin = init_admin(url)
    env = {"EVENTDOCK_LIFECYCLE_INTERVAL_SECONDS": "0.2", "EVENTDOCK_LIFECYCLE_BATCH_ROWS": "200", "EVENTDOCK_LIFECYCLE_PAUSE_SECONDS": "0.05"}
    with Server(url, workers=2, env=env, log_dir=tmp_path) as a, Server(url, workers=2, env=env, log_dir=tmp_path) as b:
        project, _ = project_with_key(a.url, admin)
        seed_old_events(url, project, 6000)
        r = httpx.patch(f"{b.url}/api/projects/{project}", json={"retention_days": 30}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while scalar(url, "SELECT count(*) FROM events WHERE project_id = :p", p=project):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # Seed again so that a second run has work while all four look every 0.2 s.
        seed_old_events(url, project, 3000)
        while scalar(url, "SELECT count(*) FROM events WHERE project_id = :p", p=project):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # A run records itself once it has given pages back and measured its lag.
        while scalar(url, "SELECT sum(events_removed) FROM lifecycle_runs") != 9000:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.NullPool)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT started_at, finished_at, holder, events_removed FROM lifecycle_runs ORDER BY started_at")).all()
    engine.dispose()
    for earlier, later in zip(runs, runs[1:]):
        assert earlier.finished_at <= later.started_at, (earlier, later)


async def test_ingest_keeps_acknowledging_during_a_large_removal(backend: str, url: str, tmp_path: Path) -> None:
    admin = init_admin(url)
    with Server(url, workers=2, env={"EVENTDOCK_LIFECYCLE_INTERVAL_SECONDS": "3600"}, log_dir=tmp_path) as server:
        project, headers = project_with_key(server.url, admin)
        seed_old_events(url, project, REMOVAL_EVENTS)
        pages_before = scalar(url, "PRAGMA page_count") if backend == "sqlite" else 0
        r = httpx.patch(f"{server.url}/api/projects/{project}", json={"retention_days": 30}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        removing = True
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:

            async def sender(n: int) -> None:
                while removing:
                    started = time.perf_counter()
                    r = await client.post(INGEST, json={"event.name": "live", "n": n})
                    latencies.append(time.perf_counter() - started)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    await asyncio.sleep(0.01)

            senders = [asyncio.create_task(sender(n)) for n in range(4)]
            deadline = time.monotonic() + 600
            seen_partial = False
            while (left := await asyncio.to_thread(scalar, url, "SELECT count(*) FROM events WHERE project_id = :p AND name = 'old'", p=project)):
                seen_partial = seen_partial or 0 < left < REMOVAL_EVENTS  # type: ignore[operator]
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
            removing = False
            await asyncio.gather(*senders)
            # The run records itself once it has given the free pages back.
            while not await asyncio.to_thread(scalar, url, "SELECT count(*) FROM lifecycle_runs"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
    assert seen_partial  # the load ran while the removal was under way
    assert set(statuses) == {202}, statuses
    acknowledged = statuses[202]
    assert scalar(url, "SELECT count(*) FROM events WHERE project_id = :p AND name = 'live'", p=project) == acknowledged
    if backend == "sqlite":  # the file gave its free pages back (auto_vacuum=INCREMENTAL)
        assert scalar(url, "PRAGMA freelist_count") == 0
        assert scalar(url, "PRAGMA page_count") < pages_before / 2  # type: ignore[operator]
    # A loose bound: the suite shares two cores with everything else; the
    # benchmark (bench/retention.py) measures the p99 on a quiet machine.
    latencies.sort()
    assert latencies[int(0.99 * (len(latencies) - 1))] < 5.0, latencies[-10:]
