"""ai_usage: tokens and estimated cost of every call to the OpenAI-compatible API

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

One row per model call (prompt and version, model, organization, workflow run and task, outcome, input and output
tokens, estimated cost in micro-dollars). Monthly sums per organization drive the AI budget switch. No prompt
text and no answer is stored.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_usage",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
        sa.Column("prompt", sa.String(100), nullable=False),
        sa.Column("prompt_version", sa.Integer, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ai_usage_org_created", "ai_usage", ["organization_id", "created_at"])
    op.create_index("ix_ai_usage_run_id", "ai_usage", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_ai_usage_run_id", table_name="ai_usage")
    op.drop_index("ix_ai_usage_org_created", table_name="ai_usage")
    op.drop_table("ai_usage")
