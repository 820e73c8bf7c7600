"""ingest: polygon zones per camera (shared.contracts.ZoneLayout as JSONB; NULL = no zones)

Revision ID: i0004_ingest_zones
Revises: i0003_ingest_location
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "i0004_ingest_zones"
down_revision = "i0003_ingest_location"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingest_cameras", sa.Column("zones", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("ingest_cameras", "zones")
