"""notifier: a per-incident version, incremented on every change and sent on IncidentChanged

Revision ID: n0003_notifier_incident_version
Revises: n0002_notifier_held_deliveries
Create Date: 2026-12-05

Consumers order an incident's changes by this version, not by when a message was (re)published: an outbox
re-publish of an old "open" can no longer overwrite a later "resolved". Incidents stored before this revision
start at 0; their next change is 1.
"""

import sqlalchemy as sa
from alembic import op

revision = "n0003_notifier_incident_version"
down_revision = "n0002_notifier_held_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifier_incidents", sa.Column("version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("notifier_incidents", "version")
