"""Data lifecycle: retention per project, erasure requests, suppressions,
remover runs; SQLite files give their free pages back (auto_vacuum).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer, nullable=True))
    op.create_table(
        "deletion_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suppress", sa.Integer, nullable=False),
        sa.Column("requested_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("deleted_events", sa.BigInteger, nullable=False),
        sa.Column("deleted_profiles", sa.BigInteger, nullable=False),
        sa.Column("deleted_violations", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_deletion_requests_status", "deletion_requests", ["status", "requested_at"])
    op.create_table(
        "suppression_keys",
        sa.Column("project_id", sa.String(36), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "digest", name="pk_suppressions"),
    )
    op.create_table(
        "lifecycle_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
        sa.Column("events_removed", sa.BigInteger, nullable=False),
        sa.Column("violations_removed", sa.BigInteger, nullable=False),
        sa.Column("deletions", sa.Integer, nullable=False),
    )
    op.create_index("ix_lifecycle_runs_started", "lifecycle_runs", ["started_at"])
    if op.get_bind().dialect.name == "sqlite":
        _incremental_auto_vacuum()


def _incremental_auto_vacuum() -> None:
    """SQLite keeps freed pages in the file unless auto_vacuum is on; the
    remover then hands them back with ``PRAGMA incremental_vacuum``. An
    existing file takes the new mode only through a VACUUM, which rewrites
    it (once, here; it needs as much free disk as the file) and cannot run
    inside a transaction."""
    if op.get_bind().exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2:
        return
    with op.get_context().autocommit_block():
        # On sqlite3 itself: the engine's "begin" hook (``database.py``)
        # issues BEGIN even for this block, so end that (empty) transaction,
        # vacuum, and open another for the block to close as it expects.
        raw = op.get_bind().connection.driver_connection
        assert raw is not None
        if raw.in_transaction:
            raw.execute("COMMIT")
        raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
        raw.execute("VACUUM")
        raw.execute("BEGIN")


def downgrade() -> None:
    op.drop_table("lifecycle_runs")
    op.drop_table("suppressions")
    op.drop_table("suppression_keys")
    op.drop_table("deletion_requests")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("retention_days")
