"""access: users, site roles, sessions, personal API tokens, the append-only audit trail

Revision ID: a0001_access_initial
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "a0001_access_initial"
down_revision = None
branch_labels = ("access",)
depends_on = None

NOW = sa.text("now()")
ROLES = "('viewer', 'operator', 'analyst', 'admin')"


def upgrade() -> None:
    op.create_table(
        "access_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("global_role", sa.String(16), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint(f"global_role IS NULL OR global_role IN {ROLES}", name="access_users_role_ck"),
    )
    op.create_table(
        "access_site_roles",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("access_users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("site_id", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.CheckConstraint(f"role IN {ROLES}", name="access_site_roles_role_ck"),
    )
    op.create_table(
        "access_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("access_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "access_api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("access_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("access_api_tokens_user", "access_api_tokens", ["user_id"])
    op.create_table(
        "access_audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(128), nullable=True),
        sa.Column("target", sa.String(300), nullable=True),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("access_audit_site", "access_audit", ["site_id", "seq"])
    op.create_index("access_audit_actor", "access_audit", ["actor", "occurred_at"])  # failed sign-ins
    # Append-only in the database too: the services' role cannot edit or delete a record. Someone who can
    # drop this trigger (the table's owner) can; the hash chain is what then tells (`verify`).
    op.execute(
        "CREATE FUNCTION access_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'access_audit is append-only: records cannot be changed or deleted'; END $$"
    )
    op.execute(
        "CREATE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS access_audit_append_only ON access_audit")
    op.execute("DROP FUNCTION IF EXISTS access_audit_append_only()")
    for table in ("access_audit", "access_api_tokens", "access_sessions", "access_site_roles", "access_users"):
        op.drop_table(table)
