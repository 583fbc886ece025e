"""approval_clicks: Slack approval clicks kept until they can be applied safely

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

One row per Slack approval request that an approver clicked (unique per HITL request, the task instance's try):
the choice, who clicked, where to update the message, and whether it was applied. A click that arrives before
Airflow has finished parking the approval task waits here instead of failing the task (docs/slack-and-calendar.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_clicks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("ti_id", sa.String(36), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("option", sa.String(64), nullable=False),
        sa.Column("slack_user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("response_url", sa.Text),
        sa.Column("message_blocks", sa.JSON, nullable=False),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduler_mark", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("ti_id", name="uq_approval_clicks_ti_id"),
    )
    op.create_index("ix_approval_clicks_status", "approval_clicks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_approval_clicks_status", table_name="approval_clicks")
    op.drop_table("approval_clicks")
