"""Create sync_records, the ledger's one table.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sync_records",
        sa.Column("school", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("isams_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("managebac_id", sa.BigInteger(), nullable=True),
        sa.Column("related_id", sa.String(64), nullable=True),
        sa.Column("person_key", sa.String(64), nullable=True),
        sa.Column("pushed", _JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("warnings", _JSON, nullable=False),
        sa.Column("source_updated_at", sa.String(40), nullable=True),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
    )
    op.create_index("ix_sync_records_related", "sync_records", ["school", "kind", "related_id"])
    op.create_index("ix_sync_records_person", "sync_records", ["school", "kind", "person_key"])


def downgrade() -> None:
    op.drop_index("ix_sync_records_person", table_name="sync_records")
    op.drop_index("ix_sync_records_related", table_name="sync_records")
    op.drop_table("sync_records")
