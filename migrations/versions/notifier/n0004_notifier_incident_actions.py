"""notifier: operators act on incidents (acknowledge, assign, comment, resolve, false positive); escalation

Revision ID: n0004_notifier_incident_actions
Revises: n0003_notifier_incident_version
Create Date: 2026-12-07

The incident row keeps the current state of the review (who acknowledged, who it is assigned to, the verdict);
`notifier_incident_actions` keeps every action in order (the incident's history). Escalation state is on the
incident row too: the steps it was opened with, the opening frame (also used to export reviewed frames), the
step reached, and when the next one is due (the sweep picks due rows with SELECT ... FOR UPDATE SKIP LOCKED,
so any number of workers fire each step once).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "n0004_notifier_incident_actions"
down_revision = "n0003_notifier_incident_version"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.String(160)),
    sa.Column("assigned_to", sa.String(160)),
    sa.Column("review", sa.String(16)),  # confirmed / false_positive
    sa.Column("review_reason", sa.Text),
    sa.Column("reviewed_by", sa.String(160)),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_by", sa.String(160)),
    sa.Column("opened_frame", JSONB),  # {"frame", "captured_at", "face_boxes"}: to escalate and to export verdicts
    sa.Column("escalation", JSONB),  # {"steps": [...]} when the rule escalates
    sa.Column("escalation_step", sa.Integer, nullable=False, server_default="0"),
    sa.Column("escalate_at", sa.DateTime(timezone=True)),
]


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("notifier_incidents", column)
    op.create_index(
        "ix_notifier_incidents_escalate_at", "notifier_incidents", ["escalate_at"],
        postgresql_where=sa.text("escalate_at IS NOT NULL"),
    )
    op.create_index("ix_notifier_incidents_camera_review", "notifier_incidents", ["camera_id", "review"])
    op.create_table(
        "notifier_incident_actions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("incident_id", sa.String(64), nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("notifier_incident_actions")
    op.drop_index("ix_notifier_incidents_camera_review", table_name="notifier_incidents")
    op.drop_index("ix_notifier_incidents_escalate_at", table_name="notifier_incidents")
    for column in reversed(COLUMNS):
        op.drop_column("notifier_incidents", column.name)
