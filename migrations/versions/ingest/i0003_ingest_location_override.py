"""ingest: an admin-granted flag lets a camera's frames override its registered site / zone

Revision ID: i0003_ingest_location
Revises: i0002_ingest_rate
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "i0003_ingest_location"
down_revision = "i0002_ingest_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ingest_cameras",
        sa.Column("allow_location_override", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("ingest_cameras", "allow_location_override")
