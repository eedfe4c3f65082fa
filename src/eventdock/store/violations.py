"""Quarantine and flag records (SPEC §3.4), written in the writer's transaction.

Governance hands the writer ``ViolationRecord``s with each request; the
``record_violations`` step stores them in the same transaction as the
request's events, so an acknowledged request has its quarantine rows too.
A flagged record is kept only when its event was newly stored (a retried
event is not flagged twice). A replay hands a ``ReplayClaim`` instead: the
violation is marked replayed in the transaction that stores the event, and
a violation already replayed fails that transaction (``Conflict``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from eventdock.core.errors import Conflict
from eventdock.core.events import Event, now_ms
from eventdock.core.governance import ViolationRecord
from eventdock.store.database import Database
from eventdock.store.schemas import upsert, violations

ACTIONS = ("rejected", "flagged")


@dataclass(frozen=True)
class ReplayClaim:
    """Marks a quarantined event replayed, in the transaction that stores it."""

    project_id: str
    violation_id: str


class AlreadyReplayed(Conflict):
    code = "already_replayed"
    default_message = "This violation was already replayed."


def record_violations(conn: Connection, events: list[Event], records: Sequence[Any]) -> None:
    """Writer step: store the batch's violation records and replay claims."""
    if not records:
        return  # the usual batch: nothing to record, no per-event work
    stored = {(e.project_id, e.id) for e in events}
    rows: list[dict[str, Any]] = []
    for record in records:
        if isinstance(record, ViolationRecord):
            if record.action == "flagged" and (record.project_id, record.event_id) not in stored:
                continue
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "project_id": record.project_id,
                    "event_name": record.event_name,
                    "event_id": record.event_id,
                    "action": record.action,
                    "errors": record.errors,
                    "source": record.source,
                    "received_at": record.received_at_ms,
                    "event": record.payload,
                    "replayed_at": None,
                }
            )
        elif isinstance(record, ReplayClaim):
            claimed = conn.execute(
                update(violations)
                .where(
                    violations.c.id == record.violation_id,
                    violations.c.project_id == record.project_id,
                    violations.c.replayed_at.is_(None),
                )
                .values(replayed_at=now_ms())
            )
            if claimed.rowcount != 1:
                raise AlreadyReplayed()
    if rows:
        stmt = upsert(conn, violations).on_conflict_do_nothing(index_elements=["project_id", "event_id", "action"])
        conn.execute(stmt, rows)


# -- reads ------------------------------------------------------------------


async def list_violations(
    db: Database, project_id: str, *, event: str | None, action: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Newest first; returns (count, page)."""
    c = violations.c
    where = [c.project_id == project_id]
    if event:
        where.append(c.event_name == event)
    if action:
        where.append(c.action == action)
    async with db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(violations).where(*where))).scalar_one()
        rows = await conn.execute(select(violations).where(*where).order_by(c.received_at.desc(), c.id.desc()).limit(limit).offset(offset))
        return int(count), [dict(r._mapping) for r in rows]


async def get_violation(db: Database, project_id: str, violation_id: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(violations).where(violations.c.project_id == project_id, violations.c.id == violation_id))).first()
    return dict(row._mapping) if row else None

