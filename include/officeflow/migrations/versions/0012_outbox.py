"""outbox: domain events written in the transaction of their change, relayed to Kafka

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``outbox``: one CloudEvents 1.0 event per row (``include/officeflow/events``), in ``seq`` order; the relay claims
unsent rows (``claimed_by`` / ``claimed_until``, a lease), publishes them to ``officeflow.events.<area>`` keyed by
``subject`` and sets ``sent_at`` once Kafka acknowledged them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("organization_id", sa.String(64)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    # What the relay scans: the unsent rows, oldest first.
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
