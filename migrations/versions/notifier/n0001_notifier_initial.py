"""notifier: rules, channels, camera state, incidents, outbox, delivery log, alert counters

Revision ID: n0001_notifier_initial
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "n0001_notifier_initial"
down_revision = None
branch_labels = ("notifier",)
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "notifier_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("zone_id", sa.String(128), nullable=True),
        sa.Column("camera_id", sa.String(128), nullable=True),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index(
        "notifier_rules_scope_uq",
        "notifier_rules",
        ["site_id", sa.text("coalesce(zone_id, '')"), sa.text("coalesce(camera_id, '')")],
        unique=True,
    )
    op.create_table(
        "notifier_channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("site_id", sa.String(128), nullable=True),
        sa.Column("min_severity", sa.String(16), nullable=False, server_default="info"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("kind in ('webhook', 'email', 'apprise', 'sns')", name="notifier_channels_kind_ck"),
    )
    op.create_table(
        "notifier_camera_state",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "notifier_applied_frames",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("frame_id", sa.String(128), primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "notifier_incidents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("zone_id", sa.String(128), nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("missing_equipment", JSONB, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_confidence", sa.Float, nullable=False),
        sa.Column("opened_frame_id", sa.String(128), nullable=False),
        sa.Column("last_frame_id", sa.String(128), nullable=False),
        sa.Column("alerted", sa.Boolean, nullable=False),
        sa.Column("suppressed_reason", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("status in ('open', 'resolved')", name="notifier_incidents_status_ck"),
    )
    op.create_index("notifier_incidents_camera_status_ix", "notifier_incidents", ["camera_id", "status"])
    op.create_table(
        "notifier_outbox",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("frame_id", sa.String(128), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "notifier_outbox_pending_ix",
        "notifier_outbox",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "notifier_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("incident_id", "channel_id", "event", name="notifier_deliveries_once_uq"),
        sa.CheckConstraint(
            "status in ('pending', 'sending', 'sent', 'failed', 'suppressed', 'dead')",
            name="notifier_deliveries_status_ck",
        ),
    )
    op.create_index("notifier_deliveries_created_ix", "notifier_deliveries", ["created_at"])
    op.create_table(
        "notifier_alert_counts",
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_alert_counts")
    op.drop_index("notifier_deliveries_created_ix", table_name="notifier_deliveries")
    op.drop_table("notifier_deliveries")
    op.drop_index("notifier_outbox_pending_ix", table_name="notifier_outbox")
    op.drop_table("notifier_outbox")
    op.drop_index("notifier_incidents_camera_status_ix", table_name="notifier_incidents")
    op.drop_table("notifier_incidents")
    op.drop_table("notifier_applied_frames")
    op.drop_table("notifier_camera_state")
    op.drop_table("notifier_channels")
    op.drop_index("notifier_rules_scope_uq", table_name="notifier_rules")
    op.drop_table("notifier_rules")
