"""The store's own batched write rate: the ceiling the writer is compared with.

Events shaped exactly as generic ingest stores them (normalised by the same
``normalise``, encoded properties, generated UUIDv7 ids) are inserted by
the writer's own ``BatchTransaction`` without steps in 500-event batches,
one transaction each on the group-commit writer's own connection
(``store/writer_connection.py``: BEGIN IMMEDIATE + COMMIT with
synchronous=FULL in SQLite's writer process, the batch sent to it as the
writer sends it; a synchronous commit on PostgreSQL), one after the other —
what the group-commit writer does, minus HTTP, parsing, queueing and
definitions. The events are built before the
clock starts, so only the store is timed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from eventdock.config import Limits
from eventdock.core.events import Draft, Event, new_event_id, normalise, now_ms
from eventdock.store.database import Database
from eventdock.store.tables import projects
from eventdock.store.writer import BatchTransaction
from eventdock.store.writer_connection import connect_writer


@dataclass
class StoreRate:
    events: int
    transactions: int
    duration_s: float
    p50_ms: float
    p99_ms: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s else 0.0


def build_batch(project_id: str, properties: dict[str, Any], size: int) -> list[Event]:
    """``size`` ingest-shaped events (fresh ids) carrying ``properties``."""
    received = now_ms()
    limits = Limits()
    return [
        normalise(Draft(name=str(properties.get("event.name", "event")), properties=dict(properties)), project_id=project_id,
                  source="ingest", limits=limits, received_at_ms=received)
        for _ in range(size)
    ]  # fmt: skip


async def measure(database_url: str, properties: dict[str, Any], *, batch_size: int = 500, duration_s: float = 5.0, warmup_s: float = 1.0) -> StoreRate:
    """Insert batches for ``warmup_s`` (not counted), then for ``duration_s``."""
    db = Database(database_url)
    try:
        await asyncio.to_thread(db.migrate)
        project_id = str(uuid.uuid4())
        async with db.write() as conn:
            await conn.execute(insert(projects).values(id=project_id, name="bench-store", created_at=now_ms()))
        # Enough distinct batches for the run, built ahead of the clock; a
        # batch is re-stamped with new ids when the pool runs out.
        pool = [build_batch(project_id, properties, batch_size) for _ in range(64)]
        writer = connect_writer(db)  # the group-commit writer's own connection

        async def one(i: int) -> float:
            batch = pool[i % len(pool)]
            if i >= len(pool):
                for e in batch:
                    e.id = new_event_id()
            started = time.perf_counter()
            await writer.run(BatchTransaction(batch, [], set()))  # the writer's own transaction, no steps
            return time.perf_counter() - started

        i = 0
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            await one(i)
            i += 1
        latencies: list[float] = []
        end = time.perf_counter() + duration_s
        while time.perf_counter() < end:
            latencies.append(await one(i))
            i += 1
        # Time inside the transactions only: re-stamping ids is not the store's.
        elapsed = sum(latencies)
        await writer.close()
    finally:
        await db.dispose()
    latencies.sort()
    return StoreRate(
        events=len(latencies) * batch_size,
        transactions=len(latencies),
        duration_s=elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else float("nan"),
    )
