"""reporting: incidents keep the operators' review (acknowledged, resolved by hand, the verdict)

Revision ID: r0005_reporting_incident_review
Revises: r0004_reporting_incident_version
Create Date: 2026-12-07

The verdicts give the measured alert precision per camera and site (confirmed / reviewed).
"""

import sqlalchemy as sa
from alembic import op

revision = "r0005_reporting_incident_review"
down_revision = "r0004_reporting_incident_version"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.Text()),
    sa.Column("resolved_by", sa.Text()),
    sa.Column("review", sa.Text()),
    sa.Column("review_reason", sa.Text()),
]


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("reporting_incidents", column)
    op.create_check_constraint(
        "ck_reporting_incidents_review", "reporting_incidents", "review IN ('confirmed', 'false_positive')"
    )


def downgrade() -> None:
    op.drop_constraint("ck_reporting_incidents_review", "reporting_incidents", type_="check")
    for column in reversed(COLUMNS):
        op.drop_column("reporting_incidents", column.name)
