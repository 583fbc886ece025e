"""auth: user_organizations, login_attempts, mfa_enrolments, refresh_tokens; audit_log organization and source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _bigint_pk() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


APPEND_ONLY = "the audit log is append-only: entries cannot be changed or deleted"


def _append_only() -> None:
    """The database itself refuses UPDATE and DELETE on audit_log rows (the application has no such path)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION officeflow_audit_log_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION officeflow_audit_log_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS officeflow_audit_log_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}")


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("organization_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("source_ip", sa.String(64), nullable=True))
        batch.create_index("ix_audit_log_organization_id", ["organization_id"])
    op.create_table(
        "user_organizations",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("organization_id", sa.String(64), primary_key=True),
        _ts("added_at"),
        sa.Column("added_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "login_attempts",
        _bigint_pk(),
        _ts("at"),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_index("ix_login_attempts_username", "login_attempts", ["username"])
    op.create_index("ix_login_attempts_source_ip", "login_attempts", ["source_ip"])
    op.create_table(
        "mfa_enrolments",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        _ts("confirmed_at", nullable=True),
        sa.Column("last_time_step", sa.BigInteger(), nullable=True),
        sa.Column("recovery_code_hashes", sa.JSON(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        _ts("issued_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_index("ix_refresh_tokens_username", "refresh_tokens", ["username"])
    _append_only()


def downgrade() -> None:
    _drop_append_only()
    op.drop_table("refresh_tokens")
    op.drop_table("mfa_enrolments")
    op.drop_table("login_attempts")
    op.drop_table("user_organizations")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_organization_id")
        batch.drop_column("source_ip")
        batch.drop_column("organization_id")
