"""Schema governance: property groups, their properties, event schemas, violations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "property_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", Json, nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_property_groups_project_name"),
    )
    op.create_table(
        "schema_properties",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("group_id", sa.String(36), sa.ForeignKey("property_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("property_type", sa.String(16), nullable=False),
        sa.Column("is_required", sa.Boolean, nullable=False),
        sa.Column("is_optional_in_types", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("validation_rules", Json, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("group_id", "name", name="uq_schema_properties_group_name"),
    )
    op.create_table(
        "event_schemas",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_definition_id", sa.String(36), sa.ForeignKey("event_definitions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("property_group_id", sa.String(36), sa.ForeignKey("property_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", Json, nullable=True),
        sa.UniqueConstraint("event_definition_id", "property_group_id", name="uq_event_schemas_pair"),
    )
    op.create_index("ix_event_schemas_project_created", "event_schemas", ["project_id", "created_at"])
    op.create_index("ix_event_schemas_group", "event_schemas", ["property_group_id"])
    op.create_table(
        "event_definition_creators",
        sa.Column("definition_id", sa.String(36), sa.ForeignKey("event_definitions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_by", Json, nullable=False),
    )
    op.create_table(
        "violations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("errors", Json, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("event", Json, nullable=True),
        sa.Column("replayed_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("project_id", "event_id", "action", name="uq_violations_event_action"),
    )
    op.create_index("ix_violations_project_received", "violations", ["project_id", "received_at"])


def downgrade() -> None:
    for table in ("violations", "event_definition_creators", "event_schemas", "schema_properties", "property_groups"):
        op.drop_table(table)
