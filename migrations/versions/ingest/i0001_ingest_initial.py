"""ingest: cameras with hashed API keys, and the frame ledger for idempotent intake

Revision ID: i0001_ingest
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "i0001_ingest"
down_revision = None
branch_labels = ("ingest",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_cameras",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("zone_id", sa.String(128), nullable=False),
        sa.Column("required_ppe", JSONB, nullable=False),
        sa.Column("min_confidence", sa.Float, nullable=False),
        sa.Column("sampling", JSONB, nullable=False),
        sa.Column("rate_limit_per_s", sa.Float, nullable=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key_hash", name="uq_ingest_cameras_key_hash"),
    )
    op.create_table(
        "ingest_frames",
        sa.Column("frame_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(128), sa.ForeignKey("ingest_cameras.camera_id"), nullable=False),
        sa.Column("client_frame_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("camera_id", "client_frame_id", name="uq_ingest_frames_camera_client_frame"),
    )
    op.create_index("ix_ingest_frames_camera_received", "ingest_frames", ["camera_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_frames_camera_received", table_name="ingest_frames")
    op.drop_table("ingest_frames")
    op.drop_table("ingest_cameras")
