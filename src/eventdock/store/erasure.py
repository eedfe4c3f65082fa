"""Erasure of a person (SPEC §11, GDPR art. 17), in resumable steps.

``request_deletion`` records the request (and, with ``suppress``, the
hashes of the profile's identifiers) in one short transaction; the
background remover (``store/lifecycle.py``) then runs it:

1. ``claim``: the request is ``running``.
2. ``erase_events``, over and over: up to N events of the profile's family
   (the survivor and every profile merged into it) and the violations that
   carry them; each transaction adds what it removed to the request's
   counts, so a run killed halfway resumes with the right numbers.
3. ``erase_rejected``: quarantined (rejected) events were never stored and
   never resolved to a profile, so the quarantine is read in pages and an
   entry whose payload carries one of the family's identifiers goes.
4. ``finish``: whatever events arrived meanwhile, then the identifiers and
   the profile rows; the request is ``completed``.

The identifiers go last: until then an event that names the person still
resolves to the family, so it is found and erased too, and a request left
``running`` by a dead process can be run again from the start with the
same result. Each step is a plain function of a SQLAlchemy ``Connection``
run by a ``WriterConnection`` (on SQLite in a writer process, under the
cross-process writer lock; it pickles, so it is module-level).

On PostgreSQL ``finish`` first takes the resolver's advisory locks on the
family's identifiers (``profiles.lock_key``), so a writer transaction that
carries one of them either committed before (its event is erased here) or
waits and then finds none (a new profile, or a dropped event when they are
suppressed).

The request row holds the profile's random id, times and counts: no
identifier, trait or event.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from eventdock.core.events import format_ms, now_ms
from eventdock.core.identity import identity_of
from eventdock.core.suppression import ProjectSuppressions, digest
from eventdock.store.database import Database
from eventdock.store.lifecycle_tables import deletion_requests, suppression_keys, suppressions
from eventdock.store.profile_tables import profile_identifiers, profiles
from eventdock.store.profiles import lock_key
from eventdock.store.schemas import upsert, violations
from eventdock.store.tables import events

_d = deletion_requests.c
_e = events.c
_p = profiles.c
_pi = profile_identifiers.c
_v = violations.c


@dataclass(frozen=True)
class Deletion:
    id: str
    project_id: str
    profile_id: str
    status: str
    suppress: bool
    requested_at_ms: int
    completed_at_ms: int | None
    events: int
    profiles: int
    violations: int

    def as_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "profileId": self.profile_id,
            "status": self.status,
            "suppress": self.suppress,
            "requestedAt": format_ms(self.requested_at_ms),
            "completedAt": format_ms(self.completed_at_ms) if self.completed_at_ms is not None else None,
            "deleted": {"events": self.events, "profiles": self.profiles, "violations": self.violations},
        }


_DELETION_COLUMNS = (
    _d.id, _d.project_id, _d.profile_id, _d.status, _d.suppress, _d.requested_at, _d.completed_at,
    _d.deleted_events, _d.deleted_profiles, _d.deleted_violations,
)  # fmt: skip


def _deletion(row: Any) -> Deletion:
    return Deletion(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8], row[9])


# -- the profile's family ------------------------------------------------------


def _survivor(conn: Connection, project_id: str, profile_id: str) -> str | None:
    row = conn.execute(select(_p.id, _p.merged_into).where(_p.project_id == project_id, _p.id == profile_id)).first()
    if row is None:
        return None
    return row.merged_into or row.id  # merges are flattened: merged_into is the final survivor


def _family(conn: Connection, project_id: str, profile_id: str) -> list[str]:
    """The survivor of ``profile_id`` and every profile merged into it; [] once erased."""
    root = _survivor(conn, project_id, profile_id)
    if root is None:
        return []
    merged = conn.execute(select(_p.id).where(_p.project_id == project_id, _p.merged_into == root)).scalars()
    return [root, *merged]


def _identifiers(conn: Connection, project_id: str, family: list[str]) -> list[tuple[str, str]]:
    """The family's identifiers (a merge moves the merged profile's to the survivor)."""
    rows = conn.execute(select(_pi.kind, _pi.value).where(_pi.project_id == project_id, _pi.profile_id.in_(family)))
    return sorted((kind, value) for kind, value in rows)


# -- the steps -------------------------------------------------------------------


def request_deletion(conn: Connection, project_id: str, profile_id: str, suppress: bool) -> Deletion | None:
    """Record an erasure request for the profile ``profile_id`` is (or was merged into); None if unknown."""
    root = _survivor(conn, project_id, profile_id)
    if root is None:
        return None
    if suppress:
        suppress_identifiers(conn, project_id, _identifiers(conn, project_id, _family(conn, project_id, root)))
    deletion = Deletion(str(uuid.uuid4()), project_id, root, "pending", suppress, now_ms(), None, 0, 0, 0)
    conn.execute(
        insert(deletion_requests).values(
            id=deletion.id, project_id=project_id, profile_id=root, status="pending", suppress=int(suppress),
            requested_at=deletion.requested_at_ms, started_at=None, completed_at=None,
            deleted_events=0, deleted_profiles=0, deleted_violations=0,
        )
    )  # fmt: skip
    return deletion


def suppress_identifiers(conn: Connection, project_id: str, identifiers: list[tuple[str, str]]) -> None:
    """Keep the keyed hashes of ``identifiers``; bump the project's version so every worker reloads."""
    stmt = upsert(conn, suppression_keys).values(project_id=project_id, salt=secrets.token_hex(32), version=1)
    stmt = stmt.on_conflict_do_update(index_elements=["project_id"], set_={"version": suppression_keys.c.version + 1})
    salt = conn.execute(stmt.returning(suppression_keys.c.salt)).scalar_one()
    if identifiers:
        key = bytes.fromhex(salt)
        stamp = now_ms()
        rows = [{"project_id": project_id, "digest": digest(key, kind, value), "created_at": stamp} for kind, value in identifiers]
        conn.execute(upsert(conn, suppressions).on_conflict_do_nothing(index_elements=["project_id", "digest"]), rows)


def claim(conn: Connection, deletion_id: str) -> None:
    conn.execute(
        update(deletion_requests)
        .where(_d.id == deletion_id, _d.status != "completed")
        .values(status="running", started_at=func.coalesce(_d.started_at, now_ms()))
    )


def _count(conn: Connection, deletion_id: str, *, events: int = 0, violations: int = 0, profiles: int = 0) -> None:
    if events or violations or profiles:
        conn.execute(
            update(deletion_requests)
            .where(_d.id == deletion_id)
            .values(
                deleted_events=_d.deleted_events + events,
                deleted_violations=_d.deleted_violations + violations,
                deleted_profiles=_d.deleted_profiles + profiles,
            )
        )


def _erase_event_rows(conn: Connection, project_id: str, family: list[str], limit: int | None) -> tuple[int, int]:
    """Up to ``limit`` events of ``family`` (None: all) and the violations that carry them."""
    query = select(_e.id).where(_e.project_id == project_id, _e.profile_id.is_not(None), _e.profile_id.in_(family))
    ids = list(conn.execute(query if limit is None else query.limit(limit)).scalars())
    if not ids:
        return 0, 0
    gone_violations = gone_events = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        gone_violations += conn.execute(delete(violations).where(_v.project_id == project_id, _v.event_id.in_(chunk))).rowcount
        gone_events += conn.execute(delete(events).where(_e.project_id == project_id, _e.id.in_(chunk))).rowcount
    return gone_events, gone_violations


def erase_events(conn: Connection, deletion_id: str, project_id: str, profile_id: str, limit: int) -> int:
    """One batch: up to ``limit`` of the family's events; returns how many went (0: none left)."""
    family = _family(conn, project_id, profile_id)
    if not family:
        return 0
    gone, gone_violations = _erase_event_rows(conn, project_id, family, limit)
    _count(conn, deletion_id, events=gone, violations=gone_violations)
    return gone


def erase_rejected(conn: Connection, deletion_id: str, project_id: str, profile_id: str, after: str, limit: int) -> str | None:
    """One page of the project's quarantine (ids after ``after``): erase the
    entries whose event carries one of the family's identifiers. Returns the
    last id read, or None when the quarantine has been read to its end."""
    keys = set(_identifiers(conn, project_id, _family(conn, project_id, profile_id)))
    if not keys:
        return None
    rows = conn.execute(
        select(_v.id, _v.event).where(_v.project_id == project_id, _v.action == "rejected", _v.id > after).order_by(_v.id).limit(limit)
    ).all()
    doomed = []
    for violation_id, payload in rows:
        properties = payload.get("properties") if isinstance(payload, dict) else None
        identity = identity_of(properties) if isinstance(properties, dict) else None
        if identity is not None and not keys.isdisjoint(identity.identifiers):
            doomed.append(violation_id)
    if doomed:
        gone = conn.execute(delete(violations).where(_v.project_id == project_id, _v.id.in_(doomed))).rowcount
        _count(conn, deletion_id, violations=gone)
    return rows[-1].id if len(rows) == limit else None


def finish(conn: Connection, deletion_id: str, project_id: str, profile_id: str, suppress: bool = False) -> None:
    """The last transaction: stragglers, identifiers, profiles; the request is completed.
    With ``suppress``, identifiers the family gained since the request are suppressed too."""
    family = _family(conn, project_id, profile_id)
    if family and conn.dialect.name == "postgresql":
        keys = sorted({lock_key(project_id, kind, value) for kind, value in _identifiers(conn, project_id, family)})
        if keys:  # the resolver's own locks, in its order (no deadlock with a writer)
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS t(k)", (keys,))
        family = _family(conn, project_id, profile_id)  # a writer may have merged meanwhile
        if family:
            conn.execute(select(_p.id).where(_p.project_id == project_id, _p.id.in_(family)).with_for_update()).all()
    if family and suppress:
        suppress_identifiers(conn, project_id, _identifiers(conn, project_id, family))
    gone_profiles = 0
    if family:
        gone_events, gone_violations = _erase_event_rows(conn, project_id, family, None)
        conn.execute(delete(profile_identifiers).where(_pi.project_id == project_id, _pi.profile_id.in_(family)))
        gone_profiles = conn.execute(delete(profiles).where(_p.project_id == project_id, _p.id.in_(family))).rowcount
        _count(conn, deletion_id, events=gone_events, violations=gone_violations, profiles=gone_profiles)
    conn.execute(update(deletion_requests).where(_d.id == deletion_id).values(status="completed", completed_at=now_ms()))


def unfinished(conn: Connection) -> list[Deletion]:
    """Requests not completed yet, oldest first (``running`` ones were interrupted)."""
    rows = conn.execute(select(*_DELETION_COLUMNS).where(_d.status.in_(("pending", "running"))).order_by(_d.requested_at, _d.id))
    return [_deletion(r) for r in rows]


# -- reads -----------------------------------------------------------------------


async def get_deletion(db: Database, project_id: str, deletion_id: str) -> Deletion | None:
    async with db.read() as conn:
        row = (await conn.execute(select(*_DELETION_COLUMNS).where(_d.project_id == project_id, _d.id == deletion_id))).first()
    return _deletion(row) if row else None


async def has_unfinished(db: Database) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(_d.id).where(_d.status.in_(("pending", "running"))).limit(1))).first() is not None


async def load_suppressions(db: Database, known: dict[str, int]) -> dict[str, ProjectSuppressions]:
    """The suppressions of every project whose version differs from ``known``."""
    k, s = suppression_keys.c, suppressions.c
    changed: dict[str, ProjectSuppressions] = {}
    async with db.read() as conn:
        for project_id, salt, version in (await conn.execute(select(k.project_id, k.salt, k.version))).all():
            if known.get(project_id) == version:
                continue
            digests = (await conn.execute(select(s.digest).where(s.project_id == project_id))).scalars()
            changed[project_id] = ProjectSuppressions(bytes.fromhex(salt), version, frozenset(digests))
    return changed
