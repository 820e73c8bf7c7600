"""reporting: outcomes of custom equipment (e.g. hi_vis_vest) per person event

Revision ID: r0002_reporting_custom_equipment
Revises: r0001_reporting
Create Date: 2026-11-27

Rekognition's three types keep their columns; custom equipment goes to one JSONB object per event,
{"hi_vis_vest": {"outcome": "without", "confidence": 91.0}}. The rollup needs no change: its
equipment_type column is text and takes the custom names as they are.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "r0002_reporting_custom_equipment"
down_revision = "r0001_reporting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reporting_person_events", sa.Column("equipment", JSONB, nullable=True))


def downgrade() -> None:
    # Custom-equipment rollup rows would be orphans of a schema that no longer knows them.
    op.execute(
        "DELETE FROM reporting_rollup_15m WHERE equipment_type NOT IN ('ALL', 'HEAD_COVER', 'FACE_COVER', 'HAND_COVER')"
    )
    op.drop_column("reporting_person_events", "equipment")
