"""reporting: data-lake export state (watermark per stream), incidents' recorded_at, frame indexes

Revision ID: r0003_reporting_export
Revises: r0002_reporting_custom_equipment
Create Date: 2026-11-27

The export selects rows by when reporting *stored* them (frames.ingested_at, incidents.recorded_at), not by
capture time, so a frame that arrives late is still exported once. (camera_id, captured_at) serves the
exposure query (time to a camera's next frame).
"""

import sqlalchemy as sa
from alembic import op

revision = "r0003_reporting_export"
down_revision = "r0002_reporting_custom_equipment"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("reporting_incidents", sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()))
    op.create_index("ix_reporting_incidents_recorded_at", "reporting_incidents", ["recorded_at"])
    op.create_index("ix_reporting_frames_ingested_at", "reporting_frames", ["ingested_at"])
    op.create_index("ix_reporting_frames_camera_captured", "reporting_frames", ["camera_id", "captured_at"])
    op.create_table(
        "reporting_export_state",
        sa.Column("stream", sa.Text(), primary_key=True),
        sa.Column("watermark", TZ, nullable=True, comment="rows stored at or before this are exported"),
        sa.Column("pending_from", TZ, nullable=True, comment="a started run's range, redone identically on rerun"),
        sa.Column("pending_to", TZ, nullable=True),
        sa.Column("rows_exported", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("reporting_export_state")
    op.drop_index("ix_reporting_frames_camera_captured", table_name="reporting_frames")
    op.drop_index("ix_reporting_frames_ingested_at", table_name="reporting_frames")
    op.drop_index("ix_reporting_incidents_recorded_at", table_name="reporting_incidents")
    op.drop_column("reporting_incidents", "recorded_at")
