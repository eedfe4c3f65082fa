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

from eventdock.store.tables import Json, events, metadata

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

# Events of one profile, newest first (profile events, ?profile_id= listing).
# Partial, so that it never serves the writer's id lookups (see migration 0004).
events_profile_index = Index(
    "ix_events_project_profile_time",
    events.c.project_id,
    events.c.profile_id,
    events.c.timestamp,
    postgresql_where=events.c.profile_id.isnot(None),
    sqlite_where=events.c.profile_id.isnot(None),
)
