"""Data-lifecycle tables (SPEC §11), on the shared ``metadata``.

- ``deletion_requests``: one row per erasure request. It names the profile
  by its (random) id and holds counts and times, never an identifier, a
  trait or an event: the record of an erasure must not keep what it erased.
- ``suppressions``: keyed hashes of the identifiers of profiles erased with
  ``?suppress=true`` (``core/suppression.py``); the key is the project's
  ``suppression_keys.salt``, whose ``version`` every change bumps so that
  each worker reloads a project's hashes only when they changed.
- ``lifecycle_runs``: one row per run of the background remover that did
  some work, with its start and end, so an operator (and a test) can see
  that runs never overlap and what each removed.

A project's retention window is ``projects.retention_days`` (``tables.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from eventdock.store.tables import metadata

deletion_requests = Table(
    "deletion_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), nullable=False),
    Column("profile_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),  # pending | running | completed
    Column("suppress", Integer, nullable=False),
    Column("requested_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("deleted_events", BigInteger, nullable=False),
    Column("deleted_profiles", BigInteger, nullable=False),
    Column("deleted_violations", BigInteger, nullable=False),
    Index("ix_deletion_requests_status", "status", "requested_at"),
)

suppression_keys = Table(
    "suppression_keys",
    metadata,
    Column("project_id", String(36), primary_key=True),
    Column("salt", String(64), nullable=False),
    Column("version", Integer, nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("project_id", String(36), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "digest", name="pk_suppressions"),
)

lifecycle_runs = Table(
    "lifecycle_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("holder", Text, nullable=False),  # host:pid of the process that ran it
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Column("events_removed", BigInteger, nullable=False),
    Column("violations_removed", BigInteger, nullable=False),
    Column("deletions", Integer, nullable=False),
    Index("ix_lifecycle_runs_started", "started_at"),
)
