"""ingest: per-camera token buckets shared by every ingest worker and task

Revision ID: i0002_ingest_rate
Revises: i0001_ingest
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "i0002_ingest_rate"
down_revision = "i0001_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_rate_buckets",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_rate_buckets")
