"""Live-event rows (SPEC §6): the table, the reads, and the row-locked changes.

Every change to a live event runs in one write transaction that first reads
the row ``FOR UPDATE`` (PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already
serialises writers), hands it to a pure function of the core that decides
what the row becomes, and writes that back. So two workers, or a worker and
an API request, never both act on a stale copy.

``due_at`` is the next moment the clock must look at the row (its start or
its end, whichever system event is not written yet; NULL when nothing is
pending), so the clock's poll is one range scan of one index.
``claimed_until`` is a short lease: the worker that sets it writes the due
system events; a crashed worker's lease simply runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.core.live import LiveEvent
from eventdock.store.database import Database
from eventdock.store.tables import Json, events, metadata

live_events = Table(
    "live_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("start_mode", String(16), nullable=False),
    Column("end_mode", String(16), nullable=False),
    # Times and durations in integer milliseconds, like every time we store.
    Column("start_at", BigInteger, nullable=False),
    Column("end_at", BigInteger, nullable=False),
    Column("duration", BigInteger, nullable=False),
    Column("original_duration", BigInteger, nullable=False),
    Column("repeat", Boolean, nullable=False),
    Column("repeat_in", Integer, nullable=True),
    Column("extra_time", BigInteger, nullable=False),
    Column("feed_uuid", String(36), nullable=False),
    Column("settings", Json, nullable=False),
    # True once the event runs by the clock: clock events always, manual
    # events after their ``start`` action.
    Column("armed", Boolean, nullable=False),
    Column("started_written", BigInteger, nullable=True),
    Column("ended_written", BigInteger, nullable=True),
    Column("due_at", BigInteger, nullable=True),
    Column("claimed_until", BigInteger, nullable=True),
    # The copy a repeating event made of itself (at most one: unique).
    Column("repeat_of", String(36), nullable=True, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_live_events_project_start", "project_id", "start_at", "id"),
    Index("ix_live_events_due", "due_at"),
)

_c = live_events.c
_FIELDS = tuple(LiveEvent.__dataclass_fields__)


def _row(row: Any) -> LiveEvent:
    return LiveEvent(**{name: row._mapping[name] for name in _FIELDS})


def _values(ev: LiveEvent) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in _FIELDS}


# -- state at a moment, as SQL (mirrors core.live.state) ----------------------


def _state_clause(state: str, now: int) -> Any:
    if state == "future":
        return or_(_c.armed == false(), _c.start_at > now)
    if state == "current":
        return and_(_c.armed == true(), _c.start_at <= now, _c.end_at > now)
    if state == "past":
        return and_(_c.armed == true(), _c.start_at <= now, _c.end_at <= now)
    return false()  # on_demand: accepted, matches nothing


class LiveEventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads ------------------------------------------------------------

    async def get(self, live_id: str, project_id: str | None) -> LiveEvent | None:
        """One live event; ``project_id`` None only for an admin key."""
        query = select(live_events).where(_c.id == live_id)
        if project_id is not None:
            query = query.where(_c.project_id == project_id)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        return _row(row) if row else None

    async def page(
        self,
        project_id: str,
        *,
        now: int,
        states: Sequence[str] | None,
        descending: bool,
        after: tuple[int, str] | None,
        limit: int,
    ) -> tuple[list[LiveEvent], int]:
        """A keyset page ordered by (start_at, id), and the count of all matches."""
        where = [_c.project_id == project_id]
        if states is not None:
            where.append(or_(*(_state_clause(s, now) for s in states)))
        query = select(live_events).where(*where)
        if after is not None:
            at, last_id = after
            if descending:
                query = query.where(or_(_c.start_at < at, and_(_c.start_at == at, _c.id < last_id)))
            else:
                query = query.where(or_(_c.start_at > at, and_(_c.start_at == at, _c.id > last_id)))
        order = (_c.start_at.desc(), _c.id.desc()) if descending else (_c.start_at, _c.id)
        async with self.db.read() as conn:
            rows = [_row(r) for r in await conn.execute(query.order_by(*order).limit(limit))]
            total = (await conn.execute(select(func.count()).select_from(live_events).where(*where))).scalar_one()
        return rows, int(total)

    async def count_events(self, project_id: str, start_ms: int, end_ms: int) -> int:
        """Stored events of the project with a timestamp in [start, end): the (project, timestamp) index."""
        if end_ms <= start_ms:
            return 0
        query = (
            select(func.count())
            .select_from(events)
            .where(events.c.project_id == project_id, events.c.timestamp >= start_ms, events.c.timestamp < end_ms)
        )
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def due(self, now: int, limit: int) -> list[tuple[str, str]]:
        """(project id, id) of live events whose next transition is due and not leased."""
        query = (
            select(_c.project_id, _c.id)
            .where(_c.due_at <= now, or_(_c.claimed_until.is_(None), _c.claimed_until <= now))
            .order_by(_c.due_at)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [(r[0], r[1]) for r in await conn.execute(query)]

    # -- writes -----------------------------------------------------------

    async def insert(self, ev: LiveEvent) -> None:
        async with self.db.write() as conn:
            await conn.execute(insert(live_events).values(**_values(ev)))

    async def delete(self, live_id: str, project_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(delete(live_events).where(_c.id == live_id, _c.project_id == project_id))
        return bool(result.rowcount)

    async def change(
        self,
        live_id: str,
        project_id: str,
        decide: Callable[[LiveEvent], tuple[LiveEvent | None, list[LiveEvent]]],
    ) -> LiveEvent | None:
        """Lock the row, let ``decide`` say what it becomes (and which new rows
        to insert with it, e.g. a repeat copy), write that; one transaction.

        ``decide`` returns (None, []) to leave the row alone. Returns the row
        as it is afterwards, or None when it does not exist. Exceptions raised
        by ``decide`` roll the transaction back and propagate.
        """
        async with self.db.write() as conn:
            current = await _locked(conn, live_id, project_id)
            if current is None:
                return None
            changed, new_rows = decide(current)
            if changed is None:
                return current
            values = _values(changed)
            del values["id"], values["project_id"]
            await conn.execute(update(live_events).where(_c.id == live_id).values(**values))
            for row in new_rows:
                await conn.execute(insert(live_events).values(**_values(row)))
            return changed


async def _locked(conn: AsyncConnection, live_id: str, project_id: str) -> LiveEvent | None:
    query = select(live_events).where(_c.id == live_id, _c.project_id == project_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _row(row) if row else None

