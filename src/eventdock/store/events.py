"""Event rows: the batched insert used by the writer, and the reads.

The writer's steps (``without_stored``, ``insert_events``, ``define_events``)
are plain functions of a SQLAlchemy ``Connection``: the writer runs its whole
transaction in one call (``store/writer_connection.py``).

The insert is the one place where the two back ends differ on purpose:
SQLite takes the batch by ``executemany`` in the writer's own process
(``_sqlite_insert`` says why there).
PostgreSQL takes events whose id the server generated with a binary
``COPY`` (the bench's store rate in 500-event transactions went from 27.7k
to 40.4k rows/s on the development VM), and the rest — client-chosen ids,
which may be stored already, and small batches, where COPY's extra round
trip costs more than it saves — as eight arrays in one ``INSERT … SELECT
FROM unnest(…) ON CONFLICT DO NOTHING``. Either way the ids already stored
are looked up in one statement whatever their number: an array on
PostgreSQL, a JSON array on SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import bindparam, case, select
from sqlalchemy.engine import Connection

from eventdock.core.events import Event, now_ms
from eventdock.store.database import Database
from eventdock.store.tables import event_definitions, events

# The columns every insert writes, in the order of ``event_row``.
EVENT_COLUMNS = ("project_id", "id", "name", "timestamp", "received_at", "source", "profile_id", "properties")
_SQLITE_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}) "
    "ON CONFLICT (project_id, id) DO NOTHING"
)
_json_encode = msgspec.json.Encoder().encode
_PG_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::jsonb[]) "
    "ON CONFLICT (project_id, id) DO NOTHING RETURNING project_id, id"
)

# Below this many server-generated ids in one transaction, the array insert
# is as fast as COPY (timed once with asyncpg alone: from 1 to 64 rows the
# two were within noise of each other; COPY first asks for the table's types).
COPY_MIN_ROWS = 64

_PG_STORED = "SELECT id FROM events WHERE project_id = $1 AND id = ANY($2::text[])"
_SQLITE_STORED = "SELECT id FROM events WHERE project_id = ? AND id IN (SELECT value FROM json_each(?))"

_SQLITE_DEFINE = (
    "INSERT INTO event_definitions (id, project_id, name, description, created_at, last_seen_at, volume, enforcement_mode) "
    "VALUES (?, ?, ?, '', ?, NULL, 0, 'allow') ON CONFLICT (project_id, name) DO NOTHING"
)
_PG_DEFINE = (
    "INSERT INTO event_definitions (id, project_id, name, description, created_at, last_seen_at, volume, enforcement_mode) "
    "SELECT *, '', $4::int8, NULL::int8, 0::int8, 'allow' FROM unnest($1::text[], $2::text[], $3::text[]) "
    "ON CONFLICT (project_id, name) DO NOTHING"
)


def unique_events(batch: Sequence[Event]) -> list[Event]:
    """The batch without repeats of a (project, id) pair; the first one wins."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in batch:
        key = (e.project_id, e.id)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def without_stored(conn: Connection, batch: list[Event]) -> list[Event]:
    """The events whose ids are not stored yet.

    Only client-chosen ids can repeat; generated UUIDv7 ids are new by
    construction, so the usual batch costs no lookup at all. Run inside the
    writer's transaction (BEGIN IMMEDIATE on SQLite), so the answer holds
    until commit on SQLite; on PostgreSQL ``insert_events`` re-checks.
    """
    candidates: dict[str, list[str]] = {}
    for e in batch:
        if e.client_id:
            candidates.setdefault(e.project_id, []).append(e.id)
    if not candidates:
        return batch
    stored: set[tuple[str, str]] = set()
    for project_id, ids in candidates.items():
        # One array parameter: one prepared statement whatever the batch
        # size, planned as primary-key probes (project_id, id).
        if conn.dialect.name == "postgresql":
            rows = conn.exec_driver_sql(_PG_STORED, (project_id, ids))
        else:
            rows = conn.exec_driver_sql(_SQLITE_STORED, (project_id, _json_encode(ids).decode()))
        stored.update((project_id, r[0]) for r in rows)
    if not stored:
        return batch
    return [e for e in batch if (e.project_id, e.id) not in stored]


def insert_events(conn: Connection, batch: Sequence[Event]) -> list[Event]:
    """Insert, skipping ids already stored; returns the events really inserted."""
    if conn.dialect.name == "sqlite":
        _sqlite_insert(conn, [event_row(e) for e in batch])
        return list(batch)  # without_stored ran under the write lock
    fresh = [e for e in batch if not e.client_id]
    if len(fresh) < COPY_MIN_ROWS:
        return _insert_arrays(conn, batch)
    # Generated UUIDv7 ids are new by construction: nothing for COPY to conflict with.
    _copy(conn, [event_row(e) for e in fresh])
    chosen = [e for e in batch if e.client_id]
    inserted = _insert_arrays(conn, chosen) if chosen else []
    if len(inserted) == len(chosen):
        return list(batch)
    kept = {id(e) for e in inserted}
    return [e for e in batch if not e.client_id or id(e) in kept]  # in request order


def _sqlite_insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """All rows by one ``executemany`` in SQLite's writer process.

    sqlite3 lets go of the GIL around every row it steps. On a thread beside
    the busy event loop each row then waited for the GIL (up to the 5 ms
    switch interval): 500-row transactions stored 150-258 rows/s that way,
    and the batch went as one JSON document in one statement instead. In
    the writer's own process nothing competes for its GIL, and
    ``executemany`` is the faster of the two (``python -m
    bench.sqlite_ceiling``: 212 k against 163 k rows/s alone).
    """
    conn.exec_driver_sql(_SQLITE_INSERT, rows)


def event_row(e: Event) -> tuple[Any, ...]:
    """One event as the values of ``EVENT_COLUMNS``."""
    return (e.project_id, e.id, e.name, e.timestamp_ms, e.received_at_ms, e.source, e.profile_id, e.properties_json.decode())


def _copy(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Binary COPY into ``events`` on the writer's own transaction."""
    adapted = conn.connection.dbapi_connection  # SQLAlchemy's adapter around asyncpg
    assert adapted is not None
    if not adapted.driver_connection.is_in_transaction():
        # The adapter sends BEGIN with the first statement; COPY goes to
        # asyncpg directly, so let the adapter open the transaction first.
        conn.exec_driver_sql("SELECT 1")
    # run_async: await asyncpg's own coroutine from this synchronous code
    # (it runs inside AsyncConnection.run_sync, on the event loop).
    adapted.run_async(lambda pg: pg.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS))


def _insert_arrays(conn: Connection, batch: Sequence[Event]) -> list[Event]:
    """``INSERT … ON CONFLICT DO NOTHING`` from arrays; returns the events really inserted."""
    # Rows in key order: two transactions inserting the same client ids
    # then wait for each other in one order and cannot deadlock.
    ordered = sorted(batch, key=lambda e: (e.project_id, e.id))
    columns = tuple(list(column) for column in zip(*map(event_row, ordered)))  # one parameter tuple, not executemany
    # Through SQLAlchemy's adapter, which opens the transaction lazily.
    result = conn.exec_driver_sql(_PG_INSERT, columns)
    inserted = {(row[0], row[1]) for row in result}
    if len(inserted) == len(batch):
        return list(batch)
    # Another process stored some of these ids since without_stored ran.
    return [e for e in batch if (e.project_id, e.id) in inserted]


def define_events(conn: Connection, names: Sequence[tuple[str, str]]) -> None:
    """Create the event definition of each (project, name) that has none yet."""
    if not names:
        return
    created = now_ms()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_DEFINE, [(str(uuid.uuid4()), p, n, created) for p, n in names])
    else:
        conn.exec_driver_sql(
            _PG_DEFINE, ([str(uuid.uuid4()) for _ in names], [p for p, _ in names], [n for _, n in names], created)
        )


_d = event_definitions.c
_ADD_USAGE = (
    event_definitions.update()
    .where(_d.project_id == bindparam("b_project_id"), _d.name == bindparam("b_name"))
    .values(
        volume=_d.volume + bindparam("count"),
        last_seen_at=case(
            (_d.last_seen_at.is_(None), bindparam("latest")),
            (_d.last_seen_at < bindparam("latest"), bindparam("latest")),
            else_=_d.last_seen_at,
        ),
    )
)


def record_usage(conn: Connection, usage: dict[tuple[str, str], tuple[int, int]]) -> None:
    """Add volume and advance last_seen_at for each (project, name): (count, latest ms).

    Runs on the writer's connection (``GroupCommitWriter.flush_usage``), in
    (project, name) order, so two processes updating the same definitions
    take their row locks in one order.
    """
    for (project_id, name), (count, latest) in sorted(usage.items()):
        conn.execute(_ADD_USAGE, {"b_project_id": project_id, "b_name": name, "count": count, "latest": latest})


# -- reads -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    id: str
    project_id: str
    name: str
    timestamp_ms: int
    received_at_ms: int
    source: str
    profile_id: str | None
    properties: dict[str, Any]


_COLUMNS = (
    events.c.id,
    events.c.project_id,
    events.c.name,
    events.c.timestamp,
    events.c.received_at,
    events.c.source,
    events.c.profile_id,
    events.c.properties,
)


async def get_event(db: Database, project_id: str, event_id: str) -> StoredEvent | None:
    async with db.read() as conn:
        row = (await conn.execute(select(*_COLUMNS).where(events.c.project_id == project_id, events.c.id == event_id))).first()
    return StoredEvent(*row) if row else None
