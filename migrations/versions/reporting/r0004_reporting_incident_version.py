"""reporting: incidents keep the notifier's per-incident version; a change is stored only if it is newer

Revision ID: r0004_reporting_incident_version
Revises: r0003_reporting_export
Create Date: 2026-12-05

Rows stored before this revision get version 0: for them (and for changes from a notifier that sends no
version) the order stays the change time, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "r0004_reporting_incident_version"
down_revision = "r0003_reporting_export"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reporting_incidents", sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint("ck_reporting_incidents_version", "reporting_incidents", "version >= 0")


def downgrade() -> None:
    op.drop_constraint("ck_reporting_incidents_version", "reporting_incidents", type_="check")
    op.drop_column("reporting_incidents", "version")
