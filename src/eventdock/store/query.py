"""Reads behind the query API (SPEC §8): filtered listing, trend, export pages.

Everything is keyset-paged on (timestamp, id) and scoped to one project, so
each query walks an index range: ``(project_id, timestamp, id)``,
``(project_id, name, timestamp)`` or ``(project_id, profile_id, timestamp, id)``.
Trend buckets are computed in SQL with integer millisecond arithmetic,
``(timestamp - origin) / width``, which is integer division on both
PostgreSQL (bigint) and SQLite (integer) and never negative here (rows
start at ``origin``), so it is the floor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.store.database import Database
from eventdock.store.events import _COLUMNS, StoredEvent
from eventdock.store.profiles import family_of, survivor_id
from eventdock.store.tables import events

INTERVALS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


@dataclass(frozen=True)
class EventFilter:
    project_id: str
    name: str | None = None
    after_ms: int | None = None  # inclusive
    before_ms: int | None = None  # exclusive
    profile_ids: Sequence[str] | None = None  # None: any; []: nobody

    def clauses(self) -> list[ColumnElement[bool]]:
        c = events.c
        out: list[ColumnElement[bool]] = [c.project_id == self.project_id]
        if self.name is not None:
            out.append(c.name == self.name)
        if self.after_ms is not None:
            out.append(c.timestamp >= self.after_ms)
        if self.before_ms is not None:
            out.append(c.timestamp < self.before_ms)
        if self.profile_ids is not None:
            out.append(c.profile_id == self.profile_ids[0] if len(self.profile_ids) == 1 else c.profile_id.in_(self.profile_ids))
        return out


async def profile_family(db: Database, project_id: str, profile_id: str) -> list[str]:
    """Every profile id whose events belong to ``profile_id`` (itself, its survivor, merged ones)."""
    async with db.read() as conn:
        root = await survivor_id(conn, project_id, profile_id)
        if root is None:
            return [profile_id]
        return await family_of(conn, project_id, root)


async def list_page(db: Database, f: EventFilter, *, cursor: tuple[int, str] | None, limit: int) -> list[StoredEvent]:
    """Newest first; ``cursor`` is the last (timestamp, id) seen."""
    if f.profile_ids == []:
        return []
    c = events.c
    query = select(*_COLUMNS).where(*f.clauses())
    if cursor is not None:
        ts, last_id = cursor
        query = query.where(or_(c.timestamp < ts, and_(c.timestamp == ts, c.id < last_id)))
    query = query.order_by(c.timestamp.desc(), c.id.desc()).limit(limit)
    async with db.read() as conn:
        return [StoredEvent(*row) for row in await conn.execute(query)]


async def iter_oldest_first(db: Database, f: EventFilter, *, page: int = 1000) -> AsyncIterator[list[StoredEvent]]:
    """Pages of events, oldest first; each page is its own short read, nothing is held in memory."""
    c = events.c
    position: tuple[int, str] | None = None
    while True:
        query = select(*_COLUMNS).where(*f.clauses())
        if position is not None:
            ts, last_id = position
            query = query.where(or_(c.timestamp > ts, and_(c.timestamp == ts, c.id > last_id)))
        query = query.order_by(c.timestamp, c.id).limit(page)
        async with db.read() as conn:
            rows = [StoredEvent(*row) for row in await conn.execute(query)]
        if rows:
            yield rows
        if len(rows) < page:
            return
        position = (rows[-1].timestamp_ms, rows[-1].id)


async def trend(db: Database, f: EventFilter, *, interval_ms: int, origin_ms: int, buckets: int) -> list[int]:
    """Counts for ``buckets`` consecutive buckets of ``interval_ms`` starting at ``origin_ms``."""
    counts = [0] * buckets
    if f.profile_ids == []:
        return counts
    c = events.c
    origin = literal(origin_ms, BigInteger)
    width = literal(interval_ms, BigInteger)
    bucket = (c.timestamp - origin).self_group().op("/", return_type=BigInteger)(width).label("bucket")
    inner = select(bucket).where(*f.clauses()).subquery()
    query = select(inner.c.bucket, func.count()).group_by(inner.c.bucket)
    async with db.read() as conn:
        for index, count in await conn.execute(query):
            if 0 <= index < buckets:
                counts[index] = count
    return counts


async def count_events(conn: AsyncConnection, project_id: str) -> int:
    return int((await conn.execute(select(func.count()).select_from(events).where(events.c.project_id == project_id))).scalar_one())
