"""webhook_endpoints; inbox keyed by endpoint; dispatcher schedule

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("target_dag_id", sa.String(250), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("verification", sa.JSON(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text()),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_endpoints_organization_id", "webhook_endpoints", ["organization_id"])
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_constraint("uq_webhook_events_source_event", type_="unique")
        batch.alter_column("source", new_column_name="endpoint_id", existing_type=sa.String(64),
                           existing_nullable=False)
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
        batch.create_unique_constraint("uq_webhook_events_endpoint_event", ["endpoint_id", "provider_event_id"])
        batch.create_index("ix_webhook_events_next_attempt_at", ["next_attempt_at"])


def downgrade() -> None:
    # On SQLite the batch rebuild in upgrade() lost this constraint (0004 added an index instead and
    # its downgrade dropped it), so drop it only where it exists.
    uniques = sa.inspect(op.get_bind()).get_unique_constraints("webhook_events")
    has_key = any(c["name"] == "uq_webhook_events_endpoint_event" for c in uniques)
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index("ix_webhook_events_next_attempt_at")
        if has_key:
            batch.drop_constraint("uq_webhook_events_endpoint_event", type_="unique")
        batch.drop_column("next_attempt_at")
        batch.alter_column("endpoint_id", new_column_name="source", existing_type=sa.String(64),
                           existing_nullable=False)
        batch.create_unique_constraint("uq_webhook_events_source_event", ["source", "provider_event_id"])
    op.drop_table("webhook_endpoints")
