"""Create poll_hashes: what the poller last published of each iSAMS record.

One row per school, kind (`student`, `contact`, `staff`) and iSAMS id: the sha256 of the
record as iSAMS returned it, the student a contact belongs to, and when the poller last
stored it. A restarted poller compares with these, so it republishes nothing unchanged and
misses nothing (docs/design.md §6).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "poll_hashes",
        sa.Column("school", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("isams_id", sa.String(64), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("related_id", sa.String(64), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("poll_hashes")
