"""reporting: sites, frames, person events, 15-minute rollup, incidents

Revision ID: r0001_reporting
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "r0001_reporting"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("reporting",)
depends_on: str | Sequence[str] | None = None

OUTCOMES = "('with', 'without', 'indeterminate')"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reporting_sites",
        sa.Column("site_id", sa.Text(), primary_key=True),
        sa.Column("timezone", sa.Text(), nullable=False, server_default="UTC"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "reporting_frames",
        sa.Column("frame_id", sa.Text(), primary_key=True),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("captured_at", TZ, nullable=False),
        sa.Column("analyzed_at", TZ, nullable=False),
        sa.Column("ingested_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("required_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("persons_total", sa.SmallInteger(), nullable=False),
    )
    op.create_index("ix_reporting_frames_captured_at", "reporting_frames", ["captured_at"])
    op.create_table(
        "reporting_person_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "frame_id",
            sa.Text(),
            sa.ForeignKey("reporting_frames.frame_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("person_index", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("captured_at", TZ, nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("person_confidence", sa.Float(), nullable=False),
        sa.Column("head_cover", sa.Text()),
        sa.Column("head_cover_confidence", sa.Float()),
        sa.Column("face_cover", sa.Text()),
        sa.Column("face_cover_confidence", sa.Float()),
        sa.Column("hand_cover", sa.Text()),
        sa.Column("hand_cover_confidence", sa.Float()),
        sa.UniqueConstraint("frame_id", "person_index", name="uq_reporting_person_events_frame_person"),
        sa.CheckConstraint(f"outcome IN {OUTCOMES}", name="ck_reporting_person_events_outcome"),
        sa.CheckConstraint(f"head_cover IS NULL OR head_cover IN {OUTCOMES}", name="ck_reporting_person_events_head"),
        sa.CheckConstraint(f"face_cover IS NULL OR face_cover IN {OUTCOMES}", name="ck_reporting_person_events_face"),
        sa.CheckConstraint(f"hand_cover IS NULL OR hand_cover IN {OUTCOMES}", name="ck_reporting_person_events_hand"),
    )
    op.create_index("ix_reporting_person_events_site_captured", "reporting_person_events", ["site_id", "captured_at"])
    op.create_index("ix_reporting_person_events_captured_at", "reporting_person_events", ["captured_at"])
    op.create_table(
        "reporting_rollup_15m",
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("equipment_type", sa.Text(), nullable=False),
        sa.Column("bucket_start", TZ, nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("persons_with", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("persons_without", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("persons_indeterminate", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("site_id", "equipment_type", "bucket_start", "zone_id", "camera_id"),
    )
    op.create_index("ix_reporting_rollup_15m_bucket_start", "reporting_rollup_15m", ["bucket_start"])
    op.create_table(
        "reporting_incidents",
        sa.Column("incident_id", sa.Text(), primary_key=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("missing_equipment", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ),
        sa.Column("frame_id", sa.Text(), nullable=False),
        sa.Column("max_confidence", sa.Float(), nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('open', 'updated', 'resolved')", name="ck_reporting_incidents_status"),
        sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name="ck_reporting_incidents_severity"),
    )
    op.create_index("ix_reporting_incidents_started", "reporting_incidents", ["started_at", "incident_id"])
    op.create_index("ix_reporting_incidents_site_started", "reporting_incidents", ["site_id", "started_at"])


def downgrade() -> None:
    op.drop_table("reporting_incidents")
    op.drop_table("reporting_rollup_15m")
    op.drop_table("reporting_person_events")
    op.drop_table("reporting_frames")
    op.drop_table("reporting_sites")
