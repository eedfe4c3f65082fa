"""Query and import benchmark (issue 5).

    python -m bench.query_bench --database URL --events 1000000

1. Loads N events into a fresh project through the store's batched insert
   (30 days, 20 event names), then times, through the HTTP app in process:
   a day-interval trend over the 30 days, a filtered trend, and the first
   page of a filtered listing (target: < 1 s each).
2. Writes an N-event NDJSON file and times ``eventdock import`` of it into
   another project (throughput), then a second import of the same file
   (which must add nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

from eventdock.app import create_app
from eventdock.config import Settings
from eventdock.core.events import Event, format_ms, now_ms
from eventdock.store.database import Database
from eventdock.store.tenancy import Tenancy
from eventdock.store.writer import BatchTransaction
from eventdock.store.writer_connection import connect_writer

DAY = 86_400_000
NAMES = [f"event_{i:02d}" for i in range(20)]


async def load(db: Database, project_id: str, count: int, end_ms: int) -> float:
    rng = random.Random(5)
    encode = msgspec.json.Encoder().encode
    started = time.perf_counter()
    writer = connect_writer(db)
    batch_size = 20_000
    for start in range(0, count, batch_size):
        batch = []
        for i in range(start, min(count, start + batch_size)):
            props = {"i": i, "plan": rng.choice(("free", "pro", "team")), "path": f"/p/{i % 500}"}
            batch.append(
                Event(
                    id=f"b{i:09d}",
                    project_id=project_id,
                    name=NAMES[i % len(NAMES)],
                    timestamp_ms=end_ms - rng.randrange(30 * DAY),
                    received_at_ms=end_ms,
                    source="import",
                    properties=props,
                    properties_json=encode(props),
                )
            )
        await writer.run(BatchTransaction(batch, [], set()))
    await writer.close()
    return time.perf_counter() - started


async def time_queries(database: str, project_id: str, token: str, end_ms: int) -> list[tuple[str, float, str]]:
    from asgi_lifespan import LifespanManager

    app = create_app(Settings.from_env({"EVENTDOCK_DATABASE_URL": database}))
    results = []
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        headers = {"Authorization": f"Bearer {token}"}
        base = f"/api/projects/{project_id}/events"
        window = {"after": format_ms(end_ms - 30 * DAY), "before": format_ms(end_ms)}
        cases = [
            ("trend, day interval, 30 days, all events", base + "/trend", {"interval": "day", **window}),
            ("trend, day interval, 30 days, event=event_07", base + "/trend", {"interval": "day", "event": "event_07", **window}),
            ("listing first page, event=event_07", base, {"event": "event_07", "limit": "100"}),
            ("listing first page, event=event_07, 7-day window", base, {"event": "event_07", "after": format_ms(end_ms - 14 * DAY), "before": format_ms(end_ms - 7 * DAY)}),
        ]
        for label, path, params in cases:
            await c.get(path, params=params, headers=headers)  # warm the cache once
            started = time.perf_counter()
            r = await c.get(path, params=params, headers=headers)
            elapsed = time.perf_counter() - started
            assert r.status_code == 200, r.text
            body = r.json()
            shape = f"{len(body['series'])} buckets, {sum(b['count'] for b in body['series'])} events" if "series" in body else f"{len(body['results'])} results"
            results.append((label, elapsed, shape))
    return results


def run_import(database: str, project_id: str, path: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "eventdock", "import", str(path), "--project", project_id, "--database", database, "--json"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    report = json.loads(done.stdout)
    report["wall_seconds"] = wall
    return report


def write_ndjson(path: Path, count: int, end_ms: int) -> None:
    rng = random.Random(7)
    with path.open("w") as f:
        for i in range(count):
            line = {"event.id": f"imp-{i}", "event.name": NAMES[i % 20], "timestamp": end_ms - rng.randrange(30 * DAY), "i": i, "plan": "pro"}
            if i % 10 == 0:
                line["visitor_uuid"] = f"v{rng.randrange(20_000)}"  # every tenth event carries an identifier
            f.write(json.dumps(line) + "\n")


async def main_async(args: argparse.Namespace) -> None:
    db = Database(args.database)
    await asyncio.to_thread(db.migrate)
    tenancy = Tenancy(db)
    project = await tenancy.create_project(f"query-bench-{int(time.time())}")
    key = await tenancy.create_key(project_id=project.id, scopes=["events:read"], name="bench")
    end_ms = now_ms() - now_ms() % DAY
    print(f"database {db.display_url}; {args.events:,} events into project {project.id}")
    seconds = await load(db, project.id, args.events, end_ms)
    print(f"loaded {args.events:,} events via the store's batched insert in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
    if not db.is_sqlite:
        async with db.write() as conn:
            await conn.exec_driver_sql("ANALYZE events")
    else:
        async with db.write() as conn:
            await conn.exec_driver_sql("ANALYZE")
    importer = await tenancy.create_project(f"import-bench-{int(time.time())}")
    await db.dispose()
    for label, elapsed, shape in await time_queries(args.database, project.id, key.token, end_ms):
        print(f"  {elapsed * 1000:8.1f} ms  {label}  ({shape}){'' if elapsed < 1 else '  OVER 1 s'}")
    if args.import_events:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.ndjson"
            write_ndjson(path, args.import_events, end_ms)
            size = os.path.getsize(path)
            print(f"import of {args.import_events:,} events ({size / 1e6:.0f} MB NDJSON) into project {importer.id}")
            for attempt in ("first", "second"):
                report = run_import(args.database, importer.id, path)
                print(
                    f"  {attempt} import: {report['stored']:,} stored, {report['duplicates']:,} already stored, "
                    f"{report['seconds']:.1f} s in the pipeline ({report['events_per_second']:,} events/s), {report['wall_seconds']:.1f} s wall"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=os.environ.get("EVENTDOCK_DATABASE_URL", "sqlite:///./bench-query.db"))
    parser.add_argument("--events", type=int, default=1_000_000, help="events loaded for the query timings")
    parser.add_argument("--import-events", type=int, default=None, help="events in the NDJSON import (default: --events; 0 skips)")
    args = parser.parse_args()
    if args.import_events is None:
        args.import_events = args.events
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
