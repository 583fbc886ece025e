"""organizations, teams and members with user profiles

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Organizations were only ids until now (on objects and in ``user_organizations``): each id already in use
becomes an organization row named after its id, so existing tenants appear in ``/organizations``.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Tables whose organization ids exist before this revision (each checked for existence: a store may be young).
_TENANT_TABLES = ("user_organizations", "webhook_endpoints", "workflows", "documents", "email_deliveries",
                  "audit_log")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _existing_organization_ids() -> list[str]:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    ids = {"default"}
    for table in _TENANT_TABLES:
        if table in present:
            column = sa.table(table, sa.column("organization_id")).c.organization_id
            ids.update(value for value in bind.execute(sa.select(column).distinct()).scalars() if value)
    return sorted(ids)


def upgrade() -> None:
    existing = _existing_organization_ids()
    organizations = op.create_table(
        "organizations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("identity_groups", sa.JSON(), nullable=False),
        sa.Column("slack_channel", sa.String(80), nullable=True),
        _ts("created_at"),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("updated_at"),
        sa.UniqueConstraint("organization_id", "name", name="uq_teams_org_name"),
    )
    op.create_index("ix_teams_organization_id", "teams", ["organization_id"])
    op.create_table(
        "member_profiles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("manager_email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("slack_user_id", sa.String(32), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("organization_id", "email", name="uq_member_profiles_org_email"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(36), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("profile_id", sa.String(36), sa.ForeignKey("member_profiles.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("added_at"),
        sa.Column("added_by", sa.String(255), nullable=False),
        sa.Column("add_run_id", sa.String(250), nullable=True),
        _ts("removed_at", nullable=True),
        sa.Column("removed_by", sa.String(255), nullable=True),
        sa.Column("remove_run_id", sa.String(250), nullable=True),
    )
    op.create_index("ix_team_members_profile_id", "team_members", ["profile_id"])
    now = datetime.now(UTC)
    op.bulk_insert(organizations, [
        {"id": org, "name": org, "domain": None, "settings": {}, "created_at": now,
         "created_by": "migration:0010", "updated_at": now}
        for org in existing
    ])


def downgrade() -> None:
    op.drop_index("ix_team_members_profile_id", "team_members")
    op.drop_table("team_members")
    op.drop_table("member_profiles")
    op.drop_index("ix_teams_organization_id", "teams")
    op.drop_table("teams")
    op.drop_table("organizations")
