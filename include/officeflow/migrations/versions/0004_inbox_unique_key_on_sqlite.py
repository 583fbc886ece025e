"""Restore the inbox's unique key (endpoint_id, provider_event_id) where 0002 lost it (SQLite)

0002 renamed ``source`` to ``endpoint_id`` in batch mode; on SQLite the table was rebuilt without the
new unique constraint, so a dev-mode inbox could store a redelivery twice. This revision removes any
such duplicates (keeping the first received) and adds the key as a unique index. On PostgreSQL the
constraint exists and nothing changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ["endpoint_id", "provider_event_id"]
INDEX = "uq_webhook_events_endpoint_event"


def _has_unique_key(bind: sa.engine.Connection) -> bool:
    inspector = sa.inspect(bind)
    if any(c["column_names"] == COLUMNS for c in inspector.get_unique_constraints("webhook_events")):
        return True
    return any(i["column_names"] == COLUMNS and i.get("unique") for i in inspector.get_indexes("webhook_events"))


def upgrade() -> None:
    bind = op.get_bind()
    if _has_unique_key(bind):
        return
    op.execute(
        "DELETE FROM webhook_events WHERE id IN ("
        " SELECT later.id FROM webhook_events later JOIN webhook_events first"
        " ON later.endpoint_id = first.endpoint_id AND later.provider_event_id = first.provider_event_id"
        " AND (later.received_at > first.received_at"
        "      OR (later.received_at = first.received_at AND later.id > first.id)))"
    )
    op.create_index(INDEX, "webhook_events", COLUMNS, unique=True)


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if any(c["name"] == INDEX for c in inspector.get_unique_constraints("webhook_events")):
        return  # the constraint from 0002 (PostgreSQL): not ours to drop
    if any(i["name"] == INDEX for i in inspector.get_indexes("webhook_events")):
        op.drop_index(INDEX, "webhook_events")
