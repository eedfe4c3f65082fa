"""Schema governance tables, and the source governance compiles from (SPEC §3.4).

    event_definitions (0001) ◀── event_schemas ──▶ property_groups ◀── schema_properties
    violations: quarantined (with payload) and flagged (without) events

Every change to what is enforced bumps the project's row in
``schema_versions`` inside the same transaction, so each worker's poll
(``SchemaSource.versions``) sees the change and recompiles.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection

from eventdock.core.errors import StoreUnavailable
from eventdock.core.governance import (
    EventSchema,
    Governance,
    ProjectSchemas,
    PropertyRule,
)
from eventdock.store.database import Database
from eventdock.store.tables import Json, event_definitions, metadata, schema_versions

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

property_groups = Table(
    "property_groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", Json, nullable=True),
    UniqueConstraint("project_id", "name", name="uq_property_groups_project_name"),
)

schema_properties = Table(
    "schema_properties",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("group_id", String(36), ForeignKey("property_groups.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("property_type", String(16), nullable=False),
    Column("is_required", Boolean, nullable=False),
    Column("is_optional_in_types", Boolean, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("validation_rules", Json, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("group_id", "name", name="uq_schema_properties_group_name"),
)

event_schemas = Table(
    "event_schemas",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("event_definition_id", String(36), ForeignKey("event_definitions.id", ondelete="CASCADE"), nullable=False),
    Column("property_group_id", String(36), ForeignKey("property_groups.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", Json, nullable=True),
    UniqueConstraint("event_definition_id", "property_group_id", name="uq_event_schemas_pair"),
    Index("ix_event_schemas_project_created", "project_id", "created_at"),
    Index("ix_event_schemas_group", "property_group_id"),
)

# Who created a planned event definition (the writer's own have no row).
event_definition_creators = Table(
    "event_definition_creators",
    metadata,
    Column("definition_id", String(36), ForeignKey("event_definitions.id", ondelete="CASCADE"), primary_key=True),
    Column("created_by", Json, nullable=False),
)

violations = Table(
    "violations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), nullable=False),
    Column("event_name", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("errors", Json, nullable=False),
    Column("source", String(16), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    # The event as it arrived, for a rejected one (so it can be replayed).
    Column("event", Json, nullable=True),
    Column("replayed_at", BigInteger, nullable=True),
    UniqueConstraint("project_id", "event_id", "action", name="uq_violations_event_action"),
    Index("ix_violations_project_received", "project_id", "received_at"),
)


def upsert(conn: AsyncConnection | Connection, table: Table) -> Any:
    """The dialect's INSERT with ``on_conflict_do_*`` (both back ends spell it alike).

    Each dialect's module is imported when first used (see ``tables.Json``).
    """
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert(table)


async def bump_version(conn: AsyncConnection, project_id: str) -> None:
    """Tell every worker that ``project_id``'s schemas changed (same transaction)."""
    stmt = upsert(conn, schema_versions).values(project_id=project_id, version=1)
    stmt = stmt.on_conflict_do_update(index_elements=["project_id"], set_={"version": schema_versions.c.version + 1})
    await conn.execute(stmt)


class SchemaSource:
    """What ``Governance`` compiles from: one read per project per version."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, project_id: str) -> ProjectSchemas:
        d, s, p = event_definitions.c, event_schemas.c, schema_properties.c
        query = (
            select(d.name, d.enforcement_mode, p.name, p.property_type, p.is_required, p.validation_rules)
            .select_from(event_schemas.join(event_definitions, s.event_definition_id == d.id).join(schema_properties, p.group_id == s.property_group_id))
            .where(s.project_id == project_id, d.project_id == project_id)
            # Groups in the order they were attached: a property's expected types are listed so.
            .order_by(d.name, s.created_at, s.id, p.name)
        )
        async with self.db.read() as conn:
            # The version first: a change landing between the reads makes it stale, never newer.
            version = (await conn.execute(select(schema_versions.c.version).where(schema_versions.c.project_id == project_id))).scalar()
            rows = (await conn.execute(query)).all()
        grouped: dict[str, tuple[str, list[PropertyRule]]] = {}
        for event_name, mode, name, kind, required, rules in rows:
            grouped.setdefault(event_name, (mode, []))[1].append(PropertyRule(name, kind, bool(required), rules))
        return ProjectSchemas(
            version=version or 0,
            events=tuple(EventSchema(name, mode, tuple(props)) for name, (mode, props) in grouped.items()),
        )

    async def versions(self) -> dict[str, int]:
        async with self.db.read() as conn:
            return {row[0]: row[1] for row in await conn.execute(select(schema_versions.c.project_id, schema_versions.c.version))}


# -- wiring (app.py) ----------------------------------------------------------

log = logging.getLogger("eventdock.governance")


def governance(db: Database, writer: Any) -> Governance:
    """The governance a worker runs: compiled from this store; a change also
    makes the writer forget which definitions exist (one may have been deleted)."""
    return Governance(SchemaSource(db), on_change=writer.forget_definitions)


async def start_schema_poll(svc: Any) -> list[asyncio.Task[None]]:
    """Startup hook: poll ``schema_versions`` so every worker and node sees a change within ~2 s."""
    gov = svc.pipeline.governance
    interval = svc.settings.schema_poll_seconds
    try:
        await gov.poll()  # the baseline, before any request is served
    except StoreUnavailable:
        pass  # the store logs it; the loop below retries
    except Exception:  # noqa: BLE001 - the loop below retries
        log.exception("first schema poll failed")

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await gov.poll()
            except StoreUnavailable:
                pass  # the store says so in the log, once per outage
            except Exception:  # noqa: BLE001 - a poll failure must not stop polling
                log.exception("schema poll failed")

    return [asyncio.create_task(loop(), name="eventdock-schema-poll")]
