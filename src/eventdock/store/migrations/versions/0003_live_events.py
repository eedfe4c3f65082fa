"""Live events (SPEC §6): the ``live_events`` table.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "live_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("start_mode", sa.String(16), nullable=False),
        sa.Column("end_mode", sa.String(16), nullable=False),
        sa.Column("start_at", sa.BigInteger, nullable=False),
        sa.Column("end_at", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.BigInteger, nullable=False),
        sa.Column("original_duration", sa.BigInteger, nullable=False),
        sa.Column("repeat", sa.Boolean, nullable=False),
        sa.Column("repeat_in", sa.Integer, nullable=True),
        sa.Column("extra_time", sa.BigInteger, nullable=False),
        sa.Column("feed_uuid", sa.String(36), nullable=False),
        sa.Column("settings", Json, nullable=False),
        sa.Column("armed", sa.Boolean, nullable=False),
        sa.Column("started_written", sa.BigInteger, nullable=True),
        sa.Column("ended_written", sa.BigInteger, nullable=True),
        sa.Column("due_at", sa.BigInteger, nullable=True),
        sa.Column("claimed_until", sa.BigInteger, nullable=True),
        sa.Column("repeat_of", sa.String(36), nullable=True, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_live_events_project_start", "live_events", ["project_id", "start_at", "id"])
    op.create_index("ix_live_events_due", "live_events", ["due_at"])


def downgrade() -> None:
    op.drop_table("live_events")
