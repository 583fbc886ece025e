"""workflows, workflow_versions (declarative workflows)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("updated_at"),
        sa.Column("updated_by", sa.String(255), nullable=False),
        _ts("deleted_at", True),
        sa.UniqueConstraint("name", name="uq_workflows_name"),
    )
    op.create_index("ix_workflows_organization_id", "workflows", ["organization_id"])
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workflow_versions")
    op.drop_index("ix_workflows_organization_id", "workflows")
    op.drop_table("workflows")
