"""Profile tables (SPEC §3.5), on the shared ``metadata``.

A profile is a row of ``profiles``; each identifier value it owns is a row of
``profile_identifiers``, unique per (project, kind, value), so that two
writers can never give one identifier to two profiles. A profile merged into
another keeps its row with ``merged_into`` pointing at the survivor (always
the final survivor: chains are flattened when they form), so old ids keep
answering. Traits are a JSON object ``{name: [value, timestamp_ms]}``: the
timestamp decides which value is the latest.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from eventdock.store.tables import Json, metadata

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), nullable=False),
    # UUIDv7 ids: (created_at, id) orders profiles by age; the oldest survives a merge.
    Column("created_at", BigInteger, nullable=False),
    Column("merged_into", String(36), nullable=True),
    # At most one customer_uuid per profile (SPEC §3.5), kept here too so the
    # resolver can see it without reading the identifiers.
    Column("customer_uuid", Text, nullable=True),
    Column("traits", Json, nullable=False),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Index("ix_profiles_project_merged", "project_id", "merged_into"),
)

profile_identifiers = Table(
    "profile_identifiers",
    metadata,
    Column("project_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("profile_id", String(36), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "kind", "value", name="pk_profile_identifiers"),
    Index("ix_profile_identifiers_profile", "profile_id"),
)

# Events of one profile, newest first (profile events, ?profile_id= listing):
# ix_events_project_profile_time on events (project_id, profile_id,
# timestamp) WHERE profile_id IS NOT NULL, made by migration 0004. Partial,
# so that it never serves the writer's id lookups. It is not mirrored here:
# a dialect's ``*_where`` option makes SQLAlchemy import that dialect, and a
# SQLite server would load PostgreSQL's for it (see ``tables.Json``).
