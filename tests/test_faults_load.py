"""Ingest under load through a PostgreSQL crash restart (issue 20).

Concurrent CDP and generic clients ingest into two workers while the private
cluster is crash-restarted (``pg_ctl restart -m immediate``: every backend
killed, WAL recovery, "the database system is starting up" meanwhile).
Clients do what docs/faults.md tells them: on 503 wait ``Retry-After`` and
send the same request again (same event ids). Afterwards: no 500, no dropped
connection, every 503 carried Retry-After, and the database holds exactly
the acknowledged events, each once.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from pathlib import Path

import httpx
import psycopg

from tests.support.faults import init_admin, log_text, project_with_key
from tests.support.pgcluster import PrivateCluster, private_pg  # noqa: F401 - the fixture
from tests.support.server import Server

GENERIC = "/platform/ingest/v1/events"
CLIENTS = 6  # half CDP (one event, Idempotency-Key), half generic (batches of 5 with event.id)
ACKS_BEFORE_CRASH = 150
ACKS_AFTER_RECOVERY = 150


async def test_ingest_through_a_postgres_crash_restart_loses_and_duplicates_nothing(
    private_pg: PrivateCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = private_pg.create_database(f"load_{uuid.uuid4().hex[:8]}")
    admin = init_admin(url)
    with Server(url, workers=2, log_dir=tmp_path) as server:
        project, token = project_with_key(server.url, admin, scopes=["events:write"])
        acked: list[str] = []
        statuses: collections.Counter[int] = collections.Counter()
        problems: list[str] = []
        stop = asyncio.Event()

        async def one_client(n: int, client: httpx.AsyncClient) -> None:
            seq = 0
            while not stop.is_set():
                seq += 1
                if n % 2:
                    ids = [f"g{n}-{seq}-{k}" for k in range(5)]
                    request = client.build_request("POST", GENERIC, json=[{"event.id": i, "event.name": "load", "n": seq} for i in ids])
                else:
                    ids = [f"c{n}-{seq}"]
                    request = client.build_request(
                        "POST", f"/v1/projects/{project}/events", json={"nameEvent": "load"}, headers={"Idempotency-Key": ids[0]}
                    )
                while True:  # the same request until it is acknowledged
                    try:
                        r = await client.send(request)
                    except httpx.TransportError as exc:
                        problems.append(f"{request.url.path}: {exc!r}")
                        return
                    statuses[r.status_code] += 1
                    if r.status_code in (200, 202):
                        acked.extend(ids)
                        break
                    if r.status_code != 503:
                        problems.append(f"{request.url.path}: {r.status_code} {r.text[:200]}")
                        return
                    if "Retry-After" not in r.headers:
                        problems.append(f"{request.url.path}: 503 without Retry-After")
                        return
                    await asyncio.sleep(float(r.headers["Retry-After"]))

        async def crash() -> None:
            while len(acked) < ACKS_BEFORE_CRASH and not problems:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(private_pg.restart, "immediate")
            recovered = len(acked)
            while len(acked) < recovered + ACKS_AFTER_RECOVERY and not problems:
                await asyncio.sleep(0.01)
            stop.set()

        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client:
            await asyncio.wait_for(asyncio.gather(crash(), *(one_client(n, client) for n in range(CLIENTS))), timeout=90)

    assert not problems, problems[:5]
    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[503] > 0, f"the crash was not felt: {statuses}"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, count(*) FROM events WHERE project_id = %s GROUP BY id", (project,)).fetchall()
    stored = {event_id: count for event_id, count in rows}
    assert len(acked) == len(set(acked))
    assert set(stored) == set(acked), (len(stored), len(acked), sorted(set(acked) ^ set(stored))[:10])
    assert all(count == 1 for count in stored.values())
    log = log_text(tmp_path)
    assert "Traceback" not in log and "Exception in ASGI" not in log, log
