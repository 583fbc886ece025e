"""calendar_sync: watch channels / subscriptions and meeting changes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

``calendar_subscriptions`` (Google watch channels, Graph subscriptions; the token / clientState
encrypted), ``booked_meetings`` (what ScheduleMeetingOperator booked), ``calendar_notifications`` (each
verified notification, unique per subscription and message) and ``meeting_changes`` (declines, moves and
cancellations found, and what was done about them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "calendar_subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("calendar", sa.String(320), nullable=False),
        sa.Column("channel_id", sa.String(255), nullable=False),
        sa.Column("resource_id", sa.String(255)),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        _ts("expires_at", True),
        sa.Column("sync_token", sa.Text()),
        sa.Column("last_message_number", sa.BigInteger()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("created_at"),
        _ts("renewed_at", True),
        sa.UniqueConstraint("provider", "channel_id", name="uq_calendar_subscriptions_channel"),
    )
    op.create_index("ix_calendar_subscriptions_organization_id", "calendar_subscriptions", ["organization_id"])
    op.create_index("ix_calendar_subscriptions_calendar", "calendar_subscriptions", ["calendar"])
    op.create_table(
        "booked_meetings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("organizer", sa.String(320), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        sa.Column("attendees", sa.JSON(), nullable=False),
        sa.Column("join_url", sa.Text()),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("on_change", sa.String(16), nullable=False),
        sa.Column("booking", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("reminder_sent_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("provider", "event_id", name="uq_booked_meetings_event"),
    )
    op.create_index("ix_booked_meetings_organization_id", "booked_meetings", ["organization_id"])
    op.create_index("ix_booked_meetings_organizer", "booked_meetings", ["organizer"])
    op.create_index("ix_booked_meetings_starts_at", "booked_meetings", ["starts_at"])
    op.create_table(
        "calendar_notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.String(36),
                  sa.ForeignKey("calendar_subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_key", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(1024)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("correlation_id", sa.String(64)),
        _ts("received_at"),
        _ts("processed_at", True),
        sa.UniqueConstraint("subscription_id", "message_key", name="uq_calendar_notifications_message"),
    )
    op.create_index("ix_calendar_notifications_subscription_id", "calendar_notifications", ["subscription_id"])
    op.create_index("ix_calendar_notifications_status", "calendar_notifications", ["status"])
    op.create_table(
        "meeting_changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("meeting_id", sa.String(36), sa.ForeignKey("booked_meetings.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("attendee", sa.String(320)),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("notification_id", sa.String(36)),
        _ts("detected_at"),
        _ts("handled_at", True),
        sa.UniqueConstraint("meeting_id", "fingerprint", name="uq_meeting_changes_fingerprint"),
    )
    op.create_index("ix_meeting_changes_meeting_id", "meeting_changes", ["meeting_id"])


def downgrade() -> None:
    op.drop_index("ix_meeting_changes_meeting_id", "meeting_changes")
    op.drop_table("meeting_changes")
    op.drop_index("ix_calendar_notifications_status", "calendar_notifications")
    op.drop_index("ix_calendar_notifications_subscription_id", "calendar_notifications")
    op.drop_table("calendar_notifications")
    for index in ("ix_booked_meetings_starts_at", "ix_booked_meetings_organizer", "ix_booked_meetings_organization_id"):
        op.drop_index(index, "booked_meetings")
    op.drop_table("booked_meetings")
    op.drop_index("ix_calendar_subscriptions_calendar", "calendar_subscriptions")
    op.drop_index("ix_calendar_subscriptions_organization_id", "calendar_subscriptions")
    op.drop_table("calendar_subscriptions")
