"""Retention (SPEC §11): events and violations older than a project's window.

A project's window is its ``retention_days``, or the server's default
(``Settings.retention_days``) when it has none; 0 or none keeps everything.
Events go by their event time (``timestamp``), violations by when they
arrived (``received_at``), oldest first, at most N rows per transaction:
each step below is one short transaction run by the remover
(``store/lifecycle.py``) on a writer connection, which lets the
group-commit writer in between (on SQLite the two take turns at the
cross-process writer lock).

On SQLite the pages freed are handed back to the file system
(``auto_vacuum=INCREMENTAL``, set by migration 0006) a bounded number at a
time by ``give_back_pages``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from eventdock.store.database import Database
from eventdock.store.schemas import violations
from eventdock.store.tables import events, projects

DAY_MS = 86_400_000
_e = events.c
_v = violations.c


@dataclass(frozen=True)
class Window:
    project_id: str
    days: int

    def cutoff(self, now_ms: int) -> int:
        """Rows older than this (ms) are past the window."""
        return now_ms - self.days * DAY_MS


async def windows(db: Database, default_days: int) -> list[Window]:
    """Every project that keeps its data for a limited time."""
    async with db.read() as conn:
        rows = (await conn.execute(select(projects.c.id, projects.c.retention_days))).all()
    found = [Window(project_id, default_days if days is None else days) for project_id, days in rows]
    return [w for w in found if w.days > 0]


async def oldest(db: Database, window: Window) -> tuple[int | None, int | None]:
    """The oldest event time and violation arrival of the project (each an index's first entry)."""
    async with db.read() as conn:
        event = (await conn.execute(select(func.min(_e.timestamp)).where(_e.project_id == window.project_id))).scalar()
        violation = (await conn.execute(select(func.min(_v.received_at)).where(_v.project_id == window.project_id))).scalar()
    return event, violation


def remove_events(conn: Connection, project_id: str, cutoff_ms: int, limit: int) -> int:
    """Up to ``limit`` of the project's oldest events older than ``cutoff_ms``; returns how many went."""
    doomed = select(_e.id).where(_e.project_id == project_id, _e.timestamp < cutoff_ms).order_by(_e.timestamp).limit(limit)
    return int(conn.execute(delete(events).where(_e.project_id == project_id, _e.id.in_(doomed.scalar_subquery()))).rowcount)


def remove_violations(conn: Connection, project_id: str, cutoff_ms: int, limit: int) -> int:
    """Up to ``limit`` of the project's violations that arrived before ``cutoff_ms``."""
    doomed = select(_v.id).where(_v.project_id == project_id, _v.received_at < cutoff_ms).order_by(_v.received_at).limit(limit)
    return int(conn.execute(delete(violations).where(_v.id.in_(doomed.scalar_subquery()))).rowcount)


def give_back_pages(conn: Connection, pages: int) -> int:
    """SQLite: return up to ``pages`` free pages to the file system; returns how many stay free.

    ``PRAGMA incremental_vacuum`` frees one page per step of the statement,
    and sqlite3 steps a statement that returns no rows once: so one page per
    execution, each a few microseconds.
    """
    raw = conn.connection.driver_connection
    free = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
    for _ in range(min(free, pages)):
        raw.execute("PRAGMA incremental_vacuum")
    return int(raw.execute("PRAGMA freelist_count").fetchone()[0])
