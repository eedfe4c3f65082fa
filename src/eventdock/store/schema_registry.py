"""Event definitions, property groups and event schemas: reads and writes.

Every query is scoped to the caller's project. Every write that changes
what governance enforces bumps the project's schema version in the same
transaction. Input arrives validated by the dialect; what only the
database can decide (a unique name, an id from another project) is raised
here as ``InvalidInput`` naming the field, DRF-style.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, false, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.core.errors import FieldError, InvalidInput
from eventdock.core.events import now_ms
from eventdock.store.database import Database
from eventdock.store.schemas import (
    bump_version,
    event_definition_creators,
    event_schemas,
    property_groups,
    schema_properties,
)
from eventdock.store.tables import event_definitions

# PostHog's words: its create and update paths say the group name differently;
# the pair check is DRF's UniqueTogetherValidator on (event_definition, property_group).
GROUP_NAME_TAKEN = "A property group with this name already exists for this team"
GROUP_NAME_TAKEN_ON_UPDATE = "A property group with this name already exists"
DEFINITION_NAME_TAKEN = "An event definition with this name already exists."
PAIR_TAKEN = "The fields event_definition, property_group must make a unique set."
DAY_MS = 86_400_000


def does_not_exist(field: str, value: Any) -> InvalidInput:
    return InvalidInput(errors=[FieldError((field,), f'Invalid pk "{value}" - object does not exist.', value, code="does_not_exist")])


def _unique(field: str | None, message: str) -> InvalidInput:
    return InvalidInput(errors=[FieldError((field,) if field else (), message, code="unique")])


def _group_name_taken(message: str) -> InvalidInput:
    """PostHog raises it as a plain ValidationError on ``name`` (code ``invalid``)."""
    return InvalidInput(errors=[FieldError(("name",), message, code="invalid")])


class SchemaRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- event definitions ---------------------------------------------------

    def _definitions(self) -> Any:
        d = event_definitions.c
        return select(
            d.id, d.name, d.description, d.created_at, d.last_seen_at, d.volume, d.enforcement_mode, event_definition_creators.c.created_by
        ).select_from(event_definitions.outerjoin(event_definition_creators, event_definition_creators.c.definition_id == d.id))

    async def list_definitions(
        self,
        project_id: str,
        *,
        words: list[str],
        names: list[str],
        event_type: str,
        ordering: list[tuple[str, bool]],
        limit: int,
        offset: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        """PostHog's list: every search word occurs (case-insensitive), ``names``
        exact, ``event_type`` PostHog's (``$`` names are PostHog's own), ordered
        by ``ordering`` ((field, descending) pairs), else search results
        shortest name first, else the most recently seen day first; then name."""
        d = event_definitions.c
        where = [d.project_id == project_id]
        for word in words:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(d.name.ilike(f"%{escaped}%", escape="\\"))
        if names:
            where.append(d.name.in_(names))
        if event_type == "event_posthog":
            where.append(d.name.startswith("$", autoescape=True))
        elif event_type == "event_custom":
            where.append(~d.name.startswith("$", autoescape=True))
        elif event_type == "action_event":
            where.append(false())  # eventdock has no actions
        columns = {"name": d.name, "last_seen_at": d.last_seen_at, "last_seen_at::date": d.last_seen_at // DAY_MS, "volume": d.volume}
        if ordering:
            order = [columns[f].desc().nulls_last() if desc else columns[f].asc().nulls_first() for f, desc in ordering]
        elif words:
            order = [func.length(d.name).asc(), d.name.asc()]
        else:
            order = [columns["last_seen_at::date"].desc().nulls_last(), d.name.asc()]
        async with self.db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(event_definitions).where(*where))).scalar_one()
            rows = await conn.execute(self._definitions().where(*where).order_by(*order, d.id).limit(limit).offset(offset))
            return int(count), [dict(r._mapping) for r in rows]

    async def definition_by_name(self, project_id: str, name: str) -> dict[str, Any] | None:
        d = event_definitions.c
        async with self.db.read() as conn:
            row = (await conn.execute(self._definitions().where(d.project_id == project_id, d.name == name))).first()
        return dict(row._mapping) if row else None

    async def typed_events(self, project_id: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """Every definition (by name) with the properties of the groups attached to it."""
        d, s, p = event_definitions.c, event_schemas.c, schema_properties.c
        async with self.db.read() as conn:
            definitions = (await conn.execute(select(d.id, d.name).where(d.project_id == project_id).order_by(d.name))).all()
            attached = await conn.execute(
                select(s.event_definition_id, p.name, p.property_type, p.is_required, p.is_optional_in_types, p.description)
                .select_from(event_schemas.join(schema_properties, p.group_id == s.property_group_id))
                .where(s.project_id == project_id)
                .order_by(s.created_at, s.id, p.name)
            )
            props: dict[str, list[dict[str, Any]]] = {}
            for row in attached:
                props.setdefault(row.event_definition_id, []).append(dict(row._mapping))
        return [(name, props.get(definition_id, [])) for definition_id, name in definitions]

    async def get_definition(self, project_id: str, definition_id: str, conn: AsyncConnection | None = None) -> dict[str, Any] | None:
        query = self._definitions().where(event_definitions.c.project_id == project_id, event_definitions.c.id == definition_id)
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self.db.read() as c:
                row = (await c.execute(query)).first()
        return dict(row._mapping) if row else None

    async def create_definition(self, project_id: str, *, name: str, description: str, mode: str, created_by: dict[str, Any]) -> str:
        new_id = str(uuid.uuid4())
        d = event_definitions.c
        try:
            async with self.db.write() as conn:
                if (await conn.execute(select(d.id).where(d.project_id == project_id, d.name == name))).first():
                    raise _unique("name", DEFINITION_NAME_TAKEN)
                await conn.execute(
                    insert(event_definitions).values(
                        id=new_id, project_id=project_id, name=name, description=description, created_at=now_ms(), volume=0, enforcement_mode=mode
                    )
                )
                await conn.execute(insert(event_definition_creators).values(definition_id=new_id, created_by=created_by))
                await bump_version(conn, project_id)
        except IntegrityError:
            raise _unique("name", DEFINITION_NAME_TAKEN) from None
        return new_id

    async def update_definition(self, project_id: str, definition_id: str, changes: dict[str, Any]) -> bool:
        d = event_definitions.c
        async with self.db.write() as conn:
            if not (await conn.execute(select(d.id).where(d.project_id == project_id, d.id == definition_id))).first():
                return False
            if changes:
                await conn.execute(update(event_definitions).where(d.project_id == project_id, d.id == definition_id).values(**changes))
            if "enforcement_mode" in changes:
                await bump_version(conn, project_id)
            return True

    async def delete_definition(self, project_id: str, definition_id: str) -> bool:
        """Deletes the definition and its schemas (an explicit cascade: SQLite FKs may be off elsewhere)."""
        async with self.db.write() as conn:
            d = event_definitions.c
            if not (await conn.execute(select(d.id).where(d.project_id == project_id, d.id == definition_id))).first():
                return False
            await conn.execute(delete(event_schemas).where(event_schemas.c.project_id == project_id, event_schemas.c.event_definition_id == definition_id))
            await conn.execute(delete(event_definition_creators).where(event_definition_creators.c.definition_id == definition_id))
            await conn.execute(delete(event_definitions).where(d.project_id == project_id, d.id == definition_id))
            await bump_version(conn, project_id)
            return True

    # -- property groups -------------------------------------------------------

    async def _hydrate_groups(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach each group's properties (sorted by name) and events."""
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        p, s, d = schema_properties.c, event_schemas.c, event_definitions.c
        props: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for row in await conn.execute(select(schema_properties).where(p.group_id.in_(ids)).order_by(p.name, p.id)):
            props[row.group_id].append(dict(row._mapping))
        events: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for row in await conn.execute(
            select(s.property_group_id, d.id, d.name).select_from(event_schemas.join(event_definitions, d.id == s.event_definition_id)).where(s.property_group_id.in_(ids)).order_by(d.name)
        ):
            events[row.property_group_id].append({"id": row.id, "name": row.name})
        return [{**r, "properties": props[r["id"]], "events": events[r["id"]]} for r in rows]

    async def list_groups(self, project_id: str, *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        g = property_groups.c
        async with self.db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(property_groups).where(g.project_id == project_id))).scalar_one()
            rows = await conn.execute(select(property_groups).where(g.project_id == project_id).order_by(g.name, g.id).limit(limit).offset(offset))
            return int(count), await self._hydrate_groups(conn, [dict(r._mapping) for r in rows])

    async def get_group(self, project_id: str, group_id: str, conn: AsyncConnection | None = None) -> dict[str, Any] | None:
        g = property_groups.c
        if conn is None:
            async with self.db.read() as c:
                return await self.get_group(project_id, group_id, c)
        row = (await conn.execute(select(property_groups).where(g.project_id == project_id, g.id == group_id))).first()
        if row is None:
            return None
        return (await self._hydrate_groups(conn, [dict(row._mapping)]))[0]

    async def _name_taken(self, conn: AsyncConnection, project_id: str, name: str, other_than: str | None = None) -> bool:
        g = property_groups.c
        query = select(g.id).where(g.project_id == project_id, g.name == name)
        if other_than:
            query = query.where(g.id != other_than)
        return (await conn.execute(query)).first() is not None

    async def _write_properties(self, conn: AsyncConnection, group_id: str, properties: list[dict[str, Any]], *, replace: bool) -> None:
        """Create, update (those with a known ``id``) and, when replacing, delete the rest."""
        p = schema_properties.c
        now = now_ms()
        existing = {r[0] for r in await conn.execute(select(p.id).where(p.group_id == group_id))} if replace else set()
        kept = {prop["id"] for prop in properties if prop.get("id") in existing}
        if existing - kept:
            await conn.execute(delete(schema_properties).where(p.group_id == group_id, p.id.in_(existing - kept)))
        for prop in properties:
            fields = {k: prop[k] for k in ("name", "property_type", "is_required", "is_optional_in_types", "description", "validation_rules")}
            if prop.get("id") in kept:
                await conn.execute(update(schema_properties).where(p.group_id == group_id, p.id == prop["id"]).values(**fields, updated_at=now))
            else:
                await conn.execute(insert(schema_properties).values(id=str(uuid.uuid4()), group_id=group_id, created_at=now, updated_at=now, **fields))

    async def create_group(self, project_id: str, *, name: str, description: str, properties: list[dict[str, Any]], created_by: dict[str, Any]) -> str:
        new_id = str(uuid.uuid4())
        now = now_ms()
        try:
            async with self.db.write() as conn:
                if await self._name_taken(conn, project_id, name):
                    raise _group_name_taken(GROUP_NAME_TAKEN)
                await conn.execute(
                    insert(property_groups).values(
                        id=new_id, project_id=project_id, name=name, description=description, created_at=now, updated_at=now, created_by=created_by
                    )
                )
                await self._write_properties(conn, new_id, properties, replace=False)
        except IntegrityError:
            raise _group_name_taken(GROUP_NAME_TAKEN) from None
        return new_id

    async def update_group(self, project_id: str, group_id: str, changes: dict[str, Any]) -> bool:
        g = property_groups.c
        try:
            async with self.db.write() as conn:
                if not (await conn.execute(select(g.id).where(g.project_id == project_id, g.id == group_id))).first():
                    return False
                if "name" in changes and await self._name_taken(conn, project_id, changes["name"], other_than=group_id):
                    raise _group_name_taken(GROUP_NAME_TAKEN_ON_UPDATE)
                fields = {k: changes[k] for k in ("name", "description") if k in changes}
                await conn.execute(update(property_groups).where(g.project_id == project_id, g.id == group_id).values(**fields, updated_at=now_ms()))
                if "properties" in changes:
                    await self._write_properties(conn, group_id, changes["properties"], replace=True)
                    await bump_version(conn, project_id)
                return True
        except IntegrityError:
            raise _group_name_taken(GROUP_NAME_TAKEN_ON_UPDATE) from None

    async def delete_group(self, project_id: str, group_id: str) -> bool:
        g = property_groups.c
        async with self.db.write() as conn:
            if not (await conn.execute(select(g.id).where(g.project_id == project_id, g.id == group_id))).first():
                return False
            await conn.execute(delete(event_schemas).where(event_schemas.c.project_id == project_id, event_schemas.c.property_group_id == group_id))
            await conn.execute(delete(schema_properties).where(schema_properties.c.group_id == group_id))
            await conn.execute(delete(property_groups).where(g.project_id == project_id, g.id == group_id))
            await bump_version(conn, project_id)
            return True

    # -- event schemas -------------------------------------------------------

    async def _hydrate_schemas(self, conn: AsyncConnection, project_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        for group_id in {r["property_group_id"] for r in rows}:
            group = await self.get_group(project_id, group_id, conn)
            if group is not None:
                groups[group_id] = group
        return [{**r, "property_group": groups.get(r["property_group_id"])} for r in rows]

    async def list_schemas(self, project_id: str, *, definition_id: str | None, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        s = event_schemas.c
        where = [s.project_id == project_id]
        if definition_id is not None:
            where.append(s.event_definition_id == definition_id)
        async with self.db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(event_schemas).where(*where))).scalar_one()
            rows = await conn.execute(select(event_schemas).where(*where).order_by(s.created_at.desc(), s.id.desc()).limit(limit).offset(offset))
            return int(count), await self._hydrate_schemas(conn, project_id, [dict(r._mapping) for r in rows])

    async def get_schema(self, project_id: str, schema_id: str) -> dict[str, Any] | None:
        s = event_schemas.c
        async with self.db.read() as conn:
            row = (await conn.execute(select(event_schemas).where(s.project_id == project_id, s.id == schema_id))).first()
            return (await self._hydrate_schemas(conn, project_id, [dict(row._mapping)]))[0] if row else None

    async def _check_pair(self, conn: AsyncConnection, project_id: str, definition_id: str, group_id: str, other_than: str | None) -> None:
        d, g, s = event_definitions.c, property_groups.c, event_schemas.c
        if not (await conn.execute(select(d.id).where(d.project_id == project_id, d.id == definition_id))).first():
            raise does_not_exist("event_definition", definition_id)
        if not (await conn.execute(select(g.id).where(g.project_id == project_id, g.id == group_id))).first():
            raise does_not_exist("property_group_id", group_id)
        query = select(s.id).where(s.event_definition_id == definition_id, s.property_group_id == group_id)
        if other_than:
            query = query.where(s.id != other_than)
        if (await conn.execute(query)).first():
            raise _unique(None, PAIR_TAKEN)

    async def create_schema(self, project_id: str, *, definition_id: str, group_id: str, created_by: dict[str, Any]) -> str:
        new_id = str(uuid.uuid4())
        now = now_ms()
        try:
            async with self.db.write() as conn:
                await self._check_pair(conn, project_id, definition_id, group_id, None)
                await conn.execute(
                    insert(event_schemas).values(
                        id=new_id, project_id=project_id, event_definition_id=definition_id, property_group_id=group_id, created_at=now, updated_at=now, created_by=created_by
                    )
                )
                await bump_version(conn, project_id)
        except IntegrityError:
            raise _unique(None, PAIR_TAKEN) from None
        return new_id

    async def update_schema(self, project_id: str, schema_id: str, changes: dict[str, Any]) -> bool:
        s = event_schemas.c
        try:
            async with self.db.write() as conn:
                row = (await conn.execute(select(event_schemas).where(s.project_id == project_id, s.id == schema_id))).first()
                if row is None:
                    return False
                definition_id = changes.get("event_definition", row.event_definition_id)
                group_id = changes.get("property_group_id", row.property_group_id)
                await self._check_pair(conn, project_id, definition_id, group_id, schema_id)
                await conn.execute(
                    update(event_schemas)
                    .where(s.project_id == project_id, s.id == schema_id)
                    .values(event_definition_id=definition_id, property_group_id=group_id, updated_at=now_ms())
                )
                await bump_version(conn, project_id)
                return True
        except IntegrityError:
            raise _unique(None, PAIR_TAKEN) from None

    async def delete_schema(self, project_id: str, schema_id: str) -> bool:
        s = event_schemas.c
        async with self.db.write() as conn:
            result = await conn.execute(delete(event_schemas).where(s.project_id == project_id, s.id == schema_id))
            if result.rowcount:
                await bump_version(conn, project_id)
            return bool(result.rowcount)
