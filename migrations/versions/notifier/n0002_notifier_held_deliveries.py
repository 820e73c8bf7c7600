"""notifier: a delivery can be held (status 'held', its request kept) until its incident's opening alert is sent

Revision ID: n0002_notifier_held_deliveries
Revises: n0001_notifier_initial
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "n0002_notifier_held_deliveries"
down_revision = "n0001_notifier_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifier_deliveries", sa.Column("held_request", JSONB, nullable=True))
    op.drop_constraint("notifier_deliveries_status_ck", "notifier_deliveries", type_="check")
    op.create_check_constraint(
        "notifier_deliveries_status_ck",
        "notifier_deliveries",
        "status in ('pending', 'sending', 'sent', 'failed', 'suppressed', 'dead', 'held')",
    )


def downgrade() -> None:
    # Held deliveries have no queue message any more: they become 'dead' with the reason, so none is lost silently.
    op.execute(
        "UPDATE notifier_deliveries SET status = 'dead', last_error = 'held when the schema was downgraded' "
        "WHERE status = 'held'"
    )
    op.drop_constraint("notifier_deliveries_status_ck", "notifier_deliveries", type_="check")
    op.create_check_constraint(
        "notifier_deliveries_status_ck",
        "notifier_deliveries",
        "status in ('pending', 'sending', 'sent', 'failed', 'suppressed', 'dead')",
    )
    op.drop_column("notifier_deliveries", "held_request")
