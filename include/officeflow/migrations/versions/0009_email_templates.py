"""email_templates: per-organization template overrides, versioned

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "email_template_overrides",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("current_version", sa.Integer()),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("organization_id", "template", name="uq_email_template_overrides_org_template"),
    )
    op.create_index("ix_email_template_overrides_organization_id", "email_template_overrides", ["organization_id"])
    op.create_table(
        "email_template_override_versions",
        sa.Column("override_id", sa.String(36), sa.ForeignKey("email_template_overrides.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("restored_from", sa.Integer()),
        _ts("created_at"),
        sa.Column("created_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_template_override_versions")
    op.drop_index("ix_email_template_overrides_organization_id", "email_template_overrides")
    op.drop_table("email_template_overrides")
