"""Foundation: projects, keys, events, event definitions, schema versions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("rate_limit_per_second", sa.BigInteger, nullable=True),
        sa.Column("rate_limit_burst", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_keys_project", "api_keys", ["project_id"])
    op.create_table(
        "events",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=True),
        sa.Column("properties", Json, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_events"),
    )
    op.create_index("ix_events_project_time", "events", ["project_id", "timestamp", "id"])
    op.create_index("ix_events_project_name_time", "events", ["project_id", "name", "timestamp"])
    op.create_table(
        "event_definitions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=True),
        sa.Column("volume", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("enforcement_mode", sa.String(16), nullable=False, server_default="allow"),
        sa.UniqueConstraint("project_id", "name", name="uq_event_definitions_project_name"),
    )
    op.create_table(
        "schema_versions",
        sa.Column("project_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("schema_versions", "event_definitions", "events", "api_keys", "projects"):
        op.drop_table(table)
