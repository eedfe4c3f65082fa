"""Retention under load: removal rate, and ingest p99 with and without a removal.

    python -m bench.retention [--database sqlite|postgresql] [--events 1000000]
                              [--rate 500] [--duration 10] [--workers 2]

One server on a fresh database; a project holding ``--events`` events 40
days old, seeded straight into the table (a batched insert, not through
HTTP: the figure is about removing them). Then, side by side:

1. ingest alone: single-event POSTs at ``--rate`` per second (open loop)
   for ``--duration`` seconds — the p99 without a removal;
2. the project's retention is set to 30 days, which wakes the remover,
   and the same load runs while it removes — the p99 during a removal;
3. the removal's rate, from the remover's own record of its run
   (``lifecycle_runs``: rows removed, start and end).

Prints one JSON document. If the removal ends before the second load
does, ``removal_covered_load`` says what share of it overlapped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench import databases, openloop
from bench.servers import eventdock_server

DAY_MS = 86_400_000
GENERIC_PATH = "/platform/ingest/v1/events"
_COLUMNS = ("project_id", "id", "name", "timestamp", "received_at", "source", "profile_id", "properties")


def seed_old_events(database_url: str, project_id: str, count: int, *, age_days: int = 40, chunk: int = 50_000) -> None:
    """``count`` events ``age_days`` old, inserted directly in batches (the schema must exist)."""
    stamp = int(time.time() * 1000) - age_days * DAY_MS
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", timeout=60)
        try:
            for start in range(0, count, chunk):
                rows = [
                    (project_id, str(uuid.uuid4()), "old", stamp - i, stamp - i, "import", None, '{"seeded":true}')
                    for i in range(start, min(count, start + chunk))
                ]
                conn.executemany(f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.commit()
        finally:
            conn.close()
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((project_id, str(uuid.uuid4()), "old", stamp - i, stamp - i, "import", None, '{"seeded":true}'))
        conn.commit()


def removal_runs(database_url: str) -> list[tuple[int, int, int]]:
    """(started_at, finished_at, events_removed) of each recorded remover run."""
    url = make_url(database_url)
    query = "SELECT started_at, finished_at, events_removed FROM lifecycle_runs ORDER BY started_at"
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", timeout=60)
        try:
            return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]
        finally:
            conn.close()
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]


async def _load(url: str, token: str, rate: float, duration: float) -> openloop.Result:
    body = b'{"event.name":"bench_live","n":1}'
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return await openloop.run(url + GENERIC_PATH, body, headers, rate=rate, duration_s=duration, connections=32)


def measure(backend: str, *, events: int, rate: float, duration: float, workers: int, work_dir: Path, pg_url: str) -> dict[str, Any]:
    with databases.fresh_database(backend, work_dir, pg_url) as database_url:
        admin = databases.admin_token(database_url)
        # The remover looks only when woken (the retention change) during the run.
        server = eventdock_server(database_url, workers, work_dir, {"EVENTDOCK_LIFECYCLE_INTERVAL_SECONDS": "3600"})
        with server:
            project = databases.create_project(server.url, admin, "retention")
            started = time.perf_counter()
            seed_old_events(database_url, project.id, events)
            seed_seconds = time.perf_counter() - started
            alone = asyncio.run(_load(server.url, project.token, rate, duration))
            patched = time.time() * 1000
            r = httpx.patch(
                f"{server.url}/api/projects/{project.id}", json={"retention_days": 30}, headers={"Authorization": f"Bearer {admin}"}
            )
            r.raise_for_status()
            during = asyncio.run(_load(server.url, project.token, rate, duration))
            load_ended = time.time() * 1000
            deadline = time.monotonic() + 3600
            while not (runs := [run for run in removal_runs(database_url) if run[2] > 0]) and time.monotonic() < deadline:
                time.sleep(0.5)
    if not runs:
        raise RuntimeError("the remover recorded no run")
    begun, finished, removed = runs[0][0], runs[-1][1], sum(run[2] for run in runs)
    seconds = max(0.001, (finished - begun) / 1000)
    overlap = max(0.0, min(finished, load_ended) - max(begun, patched)) / max(1.0, load_ended - patched)
    return {
        "database": backend,
        "workers": workers,
        "events_seeded": events,
        "seed_seconds": round(seed_seconds, 1),
        "removal": {"events_removed": removed, "seconds": round(seconds, 2), "events_per_s": round(removed / seconds)},
        "removal_covered_load": round(overlap, 2),
        "ingest_alone": alone.as_dict(),
        "ingest_during_removal": during.as_dict(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=500.0, help="single-event requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load, each phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-url", default=databases.DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eventdock-retention-") as work:
        result = measure(
            args.database, events=args.events, rate=args.rate, duration=args.duration, workers=args.workers, work_dir=Path(work), pg_url=args.pg_url
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
