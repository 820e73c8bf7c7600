"""reporting: digest subscriptions (per user, site and period) and the sent-digest ledger

Revision ID: r0006_reporting_digests
Revises: r0005_reporting_incident_review
Create Date: 2026-12-08

A subscriber gets each site's daily or weekly digest once: the ledger's primary key (site, period, period
start, user) is claimed with INSERT ... ON CONFLICT before a send, so replicas and restarts do not send twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "r0006_reporting_digests"
down_revision = "r0005_reporting_incident_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reporting_digest_subscriptions",
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("site_id", sa.Text(), primary_key=True),
        sa.Column("period", sa.Text(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("period IN ('daily', 'weekly')", name="ck_reporting_digest_subscriptions_period"),
    )
    op.create_table(
        "reporting_digest_sends",
        sa.Column("site_id", sa.Text(), primary_key=True),
        sa.Column("period", sa.Text(), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("reporting_digest_sends")
    op.drop_table("reporting_digest_subscriptions")
