"""Identity resolution inside the writer's transaction (SPEC §3.5).

``resolve_profiles`` is the writer's ``before_insert`` step: it runs in the
same transaction as the event rows, so an acknowledged event always names
its profile and a failed batch leaves no half-made profiles behind.

Per batch it costs nothing when no event carries an identifier; otherwise
one lookup for every identifier of the batch, one (locking) read of the
profiles they point to, and a handful of batched writes — never a query
per event.

Concurrency. On SQLite writers are serialised by ``BEGIN IMMEDIATE``. On
PostgreSQL several processes run writer transactions at once, so before
reading, a transaction takes ``pg_advisory_xact_lock`` on a hash of every
(project, kind, value) it carries, in sorted order (no deadlock between
two such transactions). Whoever could add the same identifier therefore
waits until the first one commits, then reads what it wrote (READ
COMMITTED reads the latest commit at each statement). Profiles are read
``FOR UPDATE``, so counters and traits are never updated from a stale copy,
and a profile merged away meanwhile is followed through ``merged_into``.
The primary key on (project, kind, value) is the last line of defence:
an identifier can never belong to two profiles.

Merges never rewrite events: a merged profile keeps its row and points to
the survivor, and readers ask for the events of the whole family.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from eventdock.core.events import Event, format_ms, new_event_id, now_ms
from eventdock.core.identity import KINDS, TRAITS, WIRE_NAMES, Identity
from eventdock.store.database import Database
from eventdock.store.profile_tables import profile_identifiers, profiles

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_CHUNK = 500
Key = tuple[str, str]  # (kind, value)


@dataclass(slots=True)
class _Profile:
    id: str
    created_at: int
    merged_into: str | None
    customer_uuid: str | None
    traits: dict[str, list[Any]]  # name -> [value, timestamp_ms]
    first_seen: int
    last_seen: int
    event_count: int
    new: bool = False
    dirty: bool = False

    @property
    def age(self) -> tuple[int, str]:
        return (self.created_at, self.id)

    def add_event(self, event: Event, traits: dict[str, str]) -> None:
        ts = event.timestamp_ms
        self.first_seen = min(self.first_seen, ts)
        self.last_seen = max(self.last_seen, ts)
        self.event_count += 1
        for name, value in traits.items():
            held = self.traits.get(name)
            if held is None or ts >= held[1]:
                self.traits[name] = [value, ts]
        self.dirty = True

    def absorb(self, other: _Profile) -> None:
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.event_count += other.event_count
        for name, (value, ts) in other.traits.items():
            held = self.traits.get(name)
            if held is None or ts > held[1]:
                self.traits[name] = [value, ts]
        self.customer_uuid = self.customer_uuid or other.customer_uuid
        self.dirty = True


# The resolver's statements, built once: a batch runs the same few
# statements, and building their expressions anew took about as long as
# executing them (issue 6; IN lists are expanding parameters).
_pi = profile_identifiers.c
_p = profiles.c
_OWNERS = select(_pi.value, _pi.profile_id).where(
    _pi.project_id == bindparam("project_id"), _pi.kind == bindparam("kind"), _pi.value.in_(bindparam("values", expanding=True))
)
_PROFILES = (
    select(_p.id, _p.created_at, _p.merged_into, _p.customer_uuid, _p.traits, _p.first_seen, _p.last_seen, _p.event_count)
    .where(_p.project_id == bindparam("project_id"), _p.id.in_(bindparam("ids", expanding=True)))
    .order_by(_p.id)
)
_PROFILES_FOR_UPDATE = _PROFILES.with_for_update()
_REPOINT_PROFILES = (
    update(profiles)
    .where(_p.project_id == bindparam("b_project_id"), _p.merged_into == bindparam("loser"))
    .values(merged_into=bindparam("survivor"))
)
_REPOINT_IDENTIFIERS = (
    update(profile_identifiers)
    .where(_pi.project_id == bindparam("b_project_id"), _pi.profile_id == bindparam("loser"))
    .values(profile_id=bindparam("survivor"))
)
_INSERT_PROFILE = insert(profiles)
_UPDATE_PROFILE = (
    update(profiles)
    .where(_p.project_id == bindparam("b_project_id"), _p.id == bindparam("b_id"))
    .values(
        merged_into=bindparam("merged_into"),
        customer_uuid=bindparam("customer_uuid"),
        traits=bindparam("traits", type_=_p.traits.type),
        first_seen=bindparam("first_seen"),
        last_seen=bindparam("last_seen"),
        event_count=bindparam("event_count"),
    )
)
_INSERT_IDENTIFIER = insert(profile_identifiers)


def lock_key(project_id: str, kind: str, value: str) -> int:
    """A signed 64-bit advisory-lock key for one identifier."""
    digest = hashlib.blake2b(f"{project_id}\0{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def resolve_profiles(conn: Connection, events: list[Event], records: Sequence[Any]) -> None:
    """Set ``profile_id`` on every event of the batch that carries identifiers."""
    by_project: dict[str, list[tuple[Event, Identity]]] = {}
    for event in events:
        identity = event.identity  # found by normalise, on the event loop
        if identity is not None:
            by_project.setdefault(event.project_id, []).append((event, identity))
    if not by_project:
        return
    if conn.dialect.name != "sqlite":
        keys = sorted({lock_key(p, k, v) for p, items in by_project.items() for _, ident in items for k, v in ident.identifiers})
        # unnest keeps the array's order, so the locks are taken in sorted order.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS t(k)", (keys,))
    for project_id in sorted(by_project):
        _Resolver(conn, project_id).run(by_project[project_id])


class _Resolver:
    """One project's share of a batch."""

    def __init__(self, conn: Connection, project_id: str) -> None:
        self.conn = conn
        self.project_id = project_id
        self.lock = conn.dialect.name != "sqlite"
        self.owner: dict[Key, str] = {}
        self.profiles: dict[str, _Profile] = {}
        self.new_identifiers: dict[Key, str] = {}
        self.losers: list[tuple[str, str]] = []  # (stored loser, survivor)

    def run(self, items: list[tuple[Event, Identity]]) -> None:
        keys = sorted({key for _, ident in items for key in ident.identifiers})
        self.owner = self._lookup(keys)
        self._load(set(self.owner.values()))
        for event, identity in items:
            event.profile_id = self._resolve(event, identity).id
        for event, _ in items:  # a profile made earlier in the batch may have merged since
            assert event.profile_id is not None
            event.profile_id = self._root(event.profile_id)
        self._write()

    # -- reading -------------------------------------------------------------

    def _lookup(self, keys: list[Key]) -> dict[Key, str]:
        found: dict[Key, str] = {}
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            for start in range(0, len(values), _CHUNK):
                chunk = values[start : start + _CHUNK]
                for value, profile_id in self.conn.execute(_OWNERS, {"project_id": self.project_id, "kind": kind, "values": chunk}):
                    found[(kind, value)] = profile_id
        return found

    def _load(self, ids: set[str]) -> None:
        """Read (and on PostgreSQL lock) these profiles and every survivor they point to."""
        query = _PROFILES_FOR_UPDATE if self.lock else _PROFILES
        wanted = sorted(ids - self.profiles.keys())
        while wanted:
            for start in range(0, len(wanted), _CHUNK):
                for row in self.conn.execute(query, {"project_id": self.project_id, "ids": wanted[start : start + _CHUNK]}):
                    self.profiles[row.id] = _Profile(
                        id=row.id,
                        created_at=row.created_at,
                        merged_into=row.merged_into,
                        customer_uuid=row.customer_uuid,
                        traits=dict(row.traits or {}),
                        first_seen=row.first_seen,
                        last_seen=row.last_seen,
                        event_count=row.event_count,
                    )
            wanted = sorted({p.merged_into for p in self.profiles.values() if p.merged_into} - self.profiles.keys())

    def _root(self, profile_id: str) -> str:
        seen = 0
        while (parent := self.profiles[profile_id].merged_into) is not None and parent in self.profiles and seen < 64:
            profile_id, seen = parent, seen + 1
        return profile_id

    # -- the rules -------------------------------------------------------------

    def _resolve(self, event: Event, identity: Identity) -> _Profile:
        # Profiles the event's identifiers point to, with the rank of the best identifier.
        matched: dict[str, int] = {}
        for rank, key in enumerate(identity.identifiers):
            owner = self.owner.get(key)
            if owner is not None:
                matched.setdefault(self._root(owner), rank)
        ordered = sorted(matched, key=matched.__getitem__)
        customer = identity.customer_uuid
        if customer is None:
            # No customer of its own: the best-ranked match that has one decides.
            customer = next((self.profiles[p].customer_uuid for p in ordered if self.profiles[p].customer_uuid), None)
        group = [self.profiles[p] for p in ordered if self.profiles[p].customer_uuid in (None, customer)]
        if group:
            target = min(group, key=lambda p: p.age)
            for other in group:
                if other is not target:
                    self._merge(other, target)
        else:
            target = self._create(event)
        if identity.customer_uuid is not None:
            target.customer_uuid = identity.customer_uuid
        for key in identity.identifiers:
            if key not in self.owner:  # identifiers held by a conflicting profile stay where they are
                self.owner[key] = target.id
                self.new_identifiers[key] = target.id
        target.add_event(event, identity.traits)
        return target

    def _create(self, event: Event) -> _Profile:
        profile = _Profile(
            id=new_event_id(),
            created_at=now_ms(),
            merged_into=None,
            customer_uuid=None,
            traits={},
            first_seen=event.timestamp_ms,
            last_seen=event.timestamp_ms,
            event_count=0,
            new=True,
        )
        self.profiles[profile.id] = profile
        return profile

    def _merge(self, loser: _Profile, survivor: _Profile) -> None:
        survivor.absorb(loser)
        loser.merged_into = survivor.id
        loser.dirty = True
        for profile in self.profiles.values():
            if profile.merged_into == loser.id:
                profile.merged_into = survivor.id
                profile.dirty = True
        if not loser.new:
            self.losers.append((loser.id, survivor.id))

    # -- writing ---------------------------------------------------------------

    def _write(self) -> None:
        conn, project_id = self.conn, self.project_id
        for loser, survivor in self.losers:
            # Flatten chains: whatever pointed at the loser now points at the survivor.
            moved = {"b_project_id": project_id, "loser": loser, "survivor": self._root(survivor)}
            conn.execute(_REPOINT_PROFILES, moved)
            conn.execute(_REPOINT_IDENTIFIERS, moved)
        created = [p for p in self.profiles.values() if p.new]
        if created:
            conn.execute(_INSERT_PROFILE, [self._row(p) for p in created])
        changed = [p for p in self.profiles.values() if p.dirty and not p.new]
        if changed:
            conn.execute(
                _UPDATE_PROFILE,
                [
                    {"b_project_id": project_id, "b_id": p.id, **{k: v for k, v in self._row(p).items() if k not in ("id", "project_id", "created_at")}}
                    for p in changed
                ],
            )
        if self.new_identifiers:
            stamp = now_ms()
            conn.execute(
                _INSERT_IDENTIFIER,
                [
                    {"project_id": project_id, "kind": k, "value": v, "profile_id": self._root(pid), "created_at": stamp}
                    for (k, v), pid in self.new_identifiers.items()
                ],
            )

    def _row(self, p: _Profile) -> dict[str, Any]:
        return {
            "id": p.id,
            "project_id": self.project_id,
            "created_at": p.created_at,
            "merged_into": p.merged_into,
            "customer_uuid": p.customer_uuid,
            "traits": p.traits,
            "first_seen": p.first_seen,
            "last_seen": p.last_seen,
            "event_count": p.event_count,
        }


# -- reads (the profile API) --------------------------------------------------


@dataclass(frozen=True)
class Profile:
    id: str
    identifiers: dict[str, list[str]]
    traits: dict[str, Any]
    first_seen_ms: int
    last_seen_ms: int
    event_count: int
    family: list[str] = field(default_factory=list)  # its own id and every id merged into it

    def as_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "identifiers": self.identifiers,
            "traits": self.traits,
            "firstSeen": format_ms(self.first_seen_ms),
            "lastSeen": format_ms(self.last_seen_ms),
            "eventCount": self.event_count,
        }


async def survivor_id(conn: AsyncConnection, project_id: str, profile_id: str) -> str | None:
    """The id of the live profile ``profile_id`` is (or was merged into); None if unknown."""
    c = profiles.c
    row = (await conn.execute(select(c.id, c.merged_into).where(c.project_id == project_id, c.id == profile_id))).first()
    if row is None:
        return None
    return row.merged_into or row.id


async def family_of(conn: AsyncConnection, project_id: str, root: str) -> list[str]:
    """The survivor's id, then the ids merged into it (their events are its events)."""
    c = profiles.c
    rows = await conn.execute(select(c.id).where(c.project_id == project_id, c.merged_into == root).order_by(c.id))
    return [root, *(r[0] for r in rows)]


async def get_profile(db: Database, project_id: str, profile_id: str) -> Profile | None:
    """The profile (following a merge to its survivor), or None."""
    async with db.read() as conn:
        root = await survivor_id(conn, project_id, profile_id)
        if root is None:
            return None
        c = profiles.c
        row = (
            await conn.execute(
                select(c.id, c.traits, c.first_seen, c.last_seen, c.event_count).where(c.project_id == project_id, c.id == root)
            )
        ).first()
        if row is None:
            return None
        idc = profile_identifiers.c
        found: dict[str, list[str]] = {WIRE_NAMES[k]: [] for k in KINDS}
        rows = await conn.execute(
            select(idc.kind, idc.value)
            .where(idc.project_id == project_id, idc.profile_id == root)
            .order_by(idc.created_at, idc.value)
        )
        for kind, value in rows:
            if kind in WIRE_NAMES:
                found[WIRE_NAMES[kind]].append(value)
        family = await family_of(conn, project_id, root)
    traits = {name: None for name in TRAITS}
    traits.update({name: held[0] for name, held in (row.traits or {}).items()})
    return Profile(
        id=row.id,
        identifiers=found,
        traits=traits,
        first_seen_ms=row.first_seen,
        last_seen_ms=row.last_seen,
        event_count=row.event_count,
        family=family,
    )


async def find_profile_ids(db: Database, project_id: str, keys: Iterable[Key]) -> list[str]:
    """Live profile ids holding every one of ``keys`` (each identifier has one owner)."""
    owners: set[str] | None = None
    async with db.read() as conn:
        c = profile_identifiers.c
        for kind, value in keys:
            row = (
                await conn.execute(select(c.profile_id).where(c.project_id == project_id, c.kind == kind, c.value == value))
            ).first()
            found = {await survivor_id(conn, project_id, row[0]) or row[0]} if row else set()
            owners = found if owners is None else owners & found
    return sorted(owners or ())
