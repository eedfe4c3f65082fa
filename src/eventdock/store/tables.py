"""Table definitions (SQLAlchemy Core), shared by queries and migrations.

Times are integer milliseconds since the epoch in both databases, ids are
text (event ids may be any client string), and ``properties`` is JSONB on
PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()


class Json(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL and as JSON text on SQLite.

    PostgreSQL's dialect is imported when a PostgreSQL connection first
    needs the type, so a SQLite server and its writer's process never load
    it (about 2.7 MB in each, issue 6).
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


projects = Table(
    "projects",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Per-project ingest rate limit; NULL means the global setting.
    Column("rate_limit_per_second", BigInteger, nullable=True),
    Column("rate_limit_burst", BigInteger, nullable=True),
    # Events and violations older than this many days are removed (SPEC §11);
    # NULL: the server's default (``Settings.retention_days``), if any.
    Column("retention_days", Integer, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("name", Text, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_api_keys_project", "project_id"),
)

events = Table(
    "events",
    metadata,
    Column("project_id", String(36), nullable=False),
    Column("id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("profile_id", String(36), nullable=True),
    Column("properties", Json, nullable=False),
    PrimaryKeyConstraint("project_id", "id", name="pk_events"),
    Index("ix_events_project_time", "project_id", "timestamp", "id"),
    Index("ix_events_project_name_time", "project_id", "name", "timestamp"),
)

event_definitions = Table(
    "event_definitions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=True),
    Column("volume", BigInteger, nullable=False, server_default="0"),
    Column("enforcement_mode", String(16), nullable=False, server_default="allow"),
    UniqueConstraint("project_id", "name", name="uq_event_definitions_project_name"),
)

# A monotonically increasing counter per project, bumped by every schema
# change, so that each worker can see within a poll that its compiled
# validators are stale (SPEC §3.4: enforced everywhere within 2 s).
schema_versions = Table(
    "schema_versions",
    metadata,
    Column("project_id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
)

# PostgreSQL: the processes that follow the live tail right now (SPEC §8).
# A writer's transaction sends its pg_notify only while a row here is
# current; a NOTIFY serialises every committing transaction of the
# database until its commit is flushed (store/query_tail.py).
tail_listeners = Table(
    "tail_listeners",
    metadata,
    Column("origin", String(32), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
