"""SQLAlchemy 2 models of the OfficeFlow store. Schema changes go through an Alembic migration."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from include.officeflow.ids import random_uuid


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return random_uuid()


class Base(DeclarativeBase):
    pass


class EventStatus(enum.StrEnum):
    """Life of an inbox event. Only ``pending`` events still owe a DAG run."""

    PENDING = "pending"
    TRIGGERED = "triggered"
    IGNORED = "ignored"
    REJECTED = "rejected"
    DEAD = "dead"  # the dispatcher gave up; replayable by an admin


class WebhookEndpoint(Base):
    """A managed delivery URL (``/officeflow/webhooks/{id}``) bound to an adapter and a workflow.

    Secrets are stored Fernet-encrypted with Airflow's key; during a rotation's overlap window the
    previous secret verifies too.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    adapter: Mapped[str] = mapped_column(String(32), nullable=False)
    target_dag_id: Mapped[str] = mapped_column(String(250), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    routes: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, default=600)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class WebhookEvent(Base):
    """A verified inbound event (the durable inbox). Stored before the gateway answers 2xx."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "provider_event_id", name="uq_webhook_events_endpoint_event"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    event_type: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=EventStatus.PENDING.value, index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_run_id: Mapped[str | None] = mapped_column(String(250))
    correlation_id: Mapped[str] = mapped_column(String(64), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class AuditLog(Base):
    """Append-only record of security-relevant actions (rejected deliveries, triggers, shares)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    resource_type: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    organization_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))


class UserOrganization(Base):
    """A user's membership of an organization: what the user sees and acts on (tenant isolation).

    Users are the auth manager's (keyed by user name); OfficeFlow keeps only this membership."""

    __tablename__ = "user_organizations"

    username: Mapped[str] = mapped_column(String(256), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    added_by: Mapped[str] = mapped_column(String(256), nullable=False)


class LoginAttempt(Base):
    """One login attempt (any login route), for throttling: failures per user and per address."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(256), nullable=False, index=True)
    source_ip: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, nullable=False)


class MfaEnrolment(Base):
    """A database user's TOTP second factor: the secret (Fernet-encrypted), the last time step used (a
    code is accepted once) and the hashes of the unused recovery codes."""

    __tablename__ = "mfa_enrolments"

    username: Mapped[str] = mapped_column(String(256), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_time_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_code_hashes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class RefreshToken(Base):
    """A refresh token of the auth API (stored as a SHA-256 hash), rotated on every use."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(256), nullable=False, index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryStatus(enum.StrEnum):
    """Life of one email to one recipient."""

    SENDING = "sending"  # claimed by a task; the provider call is in flight (or its task died)
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    SUPPRESSED = "suppressed"  # not sent: the address is on the suppression list
    FAILED = "failed"


class EmailDelivery(Base):
    """One email to one recipient. ``idempotency_key`` (run + task + map index + recipient + template)
    makes a retried task find its earlier send instead of sending again."""

    __tablename__ = "email_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default", index=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    template: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(998), nullable=False, default="")
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=DeliveryStatus.SENDING.value, index=True)
    status_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailSuppression(Base):
    """An address no OfficeFlow email goes to (hard bounce, complaint, or added by an admin)."""

    __tablename__ = "email_suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower-cased
    reason: Mapped[str] = mapped_column(String(32), nullable=False)  # bounce, complaint, manual
    source: Mapped[str] = mapped_column(String(32), nullable=False)  # ses, sendgrid, admin
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Document(Base):
    """A logical document (e.g. one hire's offer letter); its content lives in versions."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("organization_id", "logical_key", name="uq_documents_org_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default")
    logical_key: Mapped[str] = mapped_column(String(512), nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
    # Documents API (0008): free-form metadata, and soft delete: hidden from then on, bytes kept until
    # purge_after (OFFICEFLOW_DOCUMENTS_RETENTION_DAYS after the delete), restorable until then.
    # ("metadata" is taken on declarative classes, hence the attribute name.)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, nullable=False, default=dict,
                                                 server_default="{}")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[str | None] = mapped_column(String(255))
    purge_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class DocumentVersion(Base):
    """One stored version: where it is, what it is, and which workflow run produced it."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "version", name="uq_document_versions_doc_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    document_id: Mapped[str] = mapped_column(String(36), ForeignKey("documents.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    storage_uri: Mapped[str] = mapped_column(String(1024), nullable=False)  # s3://bucket/key or file:///path
    storage_version_id: Mapped[str | None] = mapped_column(String(255))  # S3 VersionId when versioned
    checksum_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    template: Mapped[str | None] = mapped_column(String(128))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    filename: Mapped[str | None] = mapped_column(String(255))  # an uploaded file's name (0008)


class DocumentReader(Base):
    """Who may read a document: a user, a group or a role (by name)."""

    __tablename__ = "document_readers"

    document_id: Mapped[str] = mapped_column(String(36), ForeignKey("documents.id", ondelete="CASCADE"),
                                             primary_key=True)
    principal_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # user, group, role
    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Workflow(Base):
    """A declarative workflow defined through the API; its definitions are the immutable versions.

    ``name`` is the DAG id. Deleting sets ``deleted_at`` (the DAG is paused and no longer generated);
    the versions stay, and so does the DAG's run history in Airflow.
    """

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default", index=True)
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkflowVersion(Base):
    """One definition of a workflow, never changed once written (an edit adds a version)."""

    __tablename__ = "workflow_versions"

    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"),
                                             primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)


# --- email templates: per-organization overrides of the shipped templates (migration 0009) ---------------


class EmailTemplateOverride(Base):
    """An organization's override of a shipped email template; its sources live in versions.

    ``current_version`` is the version emails use, or None when the organization went back to the shipped
    default (the versions stay, to restore one later).
    """

    __tablename__ = "email_template_overrides"
    __table_args__ = (
        UniqueConstraint("organization_id", "template", name="uq_email_template_overrides_org_template"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    template: Mapped[str] = mapped_column(String(128), nullable=False)
    current_version: Mapped[int | None] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255), nullable=False)


class EmailTemplateOverrideVersion(Base):
    """One version of an override's sources, never changed once written (an edit or a restore adds one)."""

    __tablename__ = "email_template_override_versions"

    override_id: Mapped[str] = mapped_column(String(36), ForeignKey("email_template_overrides.id", ondelete="CASCADE"),
                                             primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[str] = mapped_column(Text, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    restored_from: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)


# --- organizations and teams (migration 0010) -----------------------------------------------------------


class Organization(Base):
    """An organization (tenant). Every OfficeFlow object names one by ``id`` in its ``organization_id``."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    domain: Mapped[str | None] = mapped_column(String(253))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class Team(Base):
    """A team of an organization and what membership grants: identity-provider groups (per provider, the
    names the provider resolves: Google group email, Entra displayName, Okta profile.name) and a Slack channel."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_teams_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), ForeignKey("organizations.id"), nullable=False,
                                                 index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    identity_groups: Mapped[dict[str, list[str]]] = mapped_column(JSON, nullable=False, default=dict)
    slack_channel: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class MemberProfile(Base):
    """A person's profile in an organization (one per work email), shared by the teams they are in."""

    __tablename__ = "member_profiles"
    __table_args__ = (UniqueConstraint("organization_id", "email", name="uq_member_profiles_org_email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), ForeignKey("organizations.id"), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)  # lower-cased
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str | None] = mapped_column(String(200))
    manager_email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )


class TeamMember(Base):
    """A person's membership of a team, and the ``team_membership`` runs that provisioned and removed it.
    A removed membership stays (``status`` removed) so its history is kept; adding the person again reuses it."""

    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(String(36), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(36), ForeignKey("member_profiles.id"), primary_key=True,
                                            index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")  # active, removed
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    added_by: Mapped[str] = mapped_column(String(255), nullable=False)
    add_run_id: Mapped[str | None] = mapped_column(String(250))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_by: Mapped[str | None] = mapped_column(String(255))
    remove_run_id: Mapped[str | None] = mapped_column(String(250))


# --- calendar sync (migration 0011): watch channels / subscriptions, booked meetings, their changes ------


class CalendarSubscription(Base):
    """A Google watch channel or a Microsoft Graph subscription on an organizer's calendar.

    ``channel_id`` is the Google channel id (OfficeFlow chooses it) or the Graph subscription id (Graph
    assigns it). The channel token / ``clientState`` that authenticates the provider's notifications is
    stored Fernet-encrypted with Airflow's key. ``sync_token`` is Google's ``nextSyncToken``;
    ``last_message_number`` the highest ``X-Goog-Message-Number`` accepted (older ones are replays)."""

    __tablename__ = "calendar_subscriptions"
    __table_args__ = (UniqueConstraint("provider", "channel_id", name="uq_calendar_subscriptions_channel"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default", index=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    calendar: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    channel_id: Mapped[str] = mapped_column(String(255), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(255))
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sync_token: Mapped[str | None] = mapped_column(Text)
    last_message_number: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")  # pending active stopped expired
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BookedMeeting(Base):
    """A meeting OfficeFlow booked (ScheduleMeetingOperator): what a calendar change is compared with.

    ``booking`` keeps what rebooking needs (duration, working hours, time zone, search window);
    ``on_change`` is ``notify`` (tell the organizer in Slack) or ``rebook`` (book the next common free slot)."""

    __tablename__ = "booked_meetings"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_booked_meetings_event"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default", index=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    organizer: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    event_id: Mapped[str] = mapped_column(String(512), nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attendees: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    join_url: Mapped[str | None] = mapped_column(Text)
    dag_id: Mapped[str] = mapped_column(String(250), nullable=False)
    run_id: Mapped[str] = mapped_column(String(250), nullable=False)
    task_id: Mapped[str] = mapped_column(String(250), nullable=False)
    on_change: Mapped[str] = mapped_column(String(16), nullable=False, default="notify")
    booking: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="booked")  # booked declined moved ...
    reminder_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class CalendarNotification(Base):
    """A verified push notification (Google message / Graph notification item), stored before the 2xx.

    ``message_key`` is unique per subscription (Google's message number; a digest of a Graph item), so
    a replayed delivery is recognised and not processed twice."""

    __tablename__ = "calendar_notifications"
    __table_args__ = (UniqueConstraint("subscription_id", "message_key", name="uq_calendar_notifications_message"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subscription_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("calendar_subscriptions.id", ondelete="CASCADE"), nullable=False, index=True)
    message_key: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False)  # sync/exists/not_exists, created/updated/deleted
    resource: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MeetingChange(Base):
    """A change of a booked meeting found by a notification: an attendee declined, the meeting moved or was
    cancelled; and what OfficeFlow did about it (``action``: notified / rebooked / none)."""

    __tablename__ = "meeting_changes"
    __table_args__ = (UniqueConstraint("meeting_id", "fingerprint", name="uq_meeting_changes_fingerprint"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    meeting_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("booked_meetings.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # declined, moved, cancelled
    attendee: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False, default="none")
    error: Mapped[str | None] = mapped_column(Text)
    notification_id: Mapped[str | None] = mapped_column(String(36))
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- domain events (migration 0012): the transactional outbox the relay publishes to Kafka -------------------


class OutboxEvent(Base):
    """One CloudEvents 1.0 event (``event``), written in the transaction of the change it reports
    (``include/officeflow/events/outbox.py``); ``sent_at`` is set once Kafka acknowledged it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_outbox_event_id"),
        Index("ix_outbox_unsent", "sent_at", "seq"),  # what the relay scans: unsent rows, oldest first
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    area: Mapped[str] = mapped_column(String(64), nullable=False)
    type: Mapped[str] = mapped_column(String(255), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    organization_id: Mapped[str | None] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- identity accounts (migration 0013): what provisioning did, and its domain events -------------------------


class IdentityAccount(Base):
    """An account OfficeFlow provisioned or deprovisioned at an identity provider, by the provider's account id:
    its ``state`` (provisioned, deprovisioned, deleted) and the run that last changed it. The ``account.*``
    domain events are written with each change (``include/officeflow/identity_accounts.py``). No login or
    name: the provider holds those."""

    __tablename__ = "identity_accounts"
    __table_args__ = (UniqueConstraint("provider", "account_id", name="uq_identity_accounts_provider_account"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False, default="default", index=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    account_id: Mapped[str] = mapped_column(String(255), nullable=False)
    employee_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


# --- AI usage (migration 0014): tokens and estimated cost of every model call ---------------------------------


class AIUsage(Base):
    """One call to the OpenAI-compatible API (include/officeflow/ai/usage.py): which prompt and model, for which
    organization and workflow run, its tokens and estimated cost, and its outcome. Sums per organization and
    month drive the budget switch; sums per run are the workflow's AI cost. No prompt text or answer is kept."""

    __tablename__ = "ai_usage"
    __table_args__ = (Index("ix_ai_usage_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    organization_id: Mapped[str] = mapped_column(String(64), nullable=False)
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250), index=True)
    task_id: Mapped[str | None] = mapped_column(String(250))
    prompt: Mapped[str] = mapped_column(String(100), nullable=False)
    prompt_version: Mapped[int] = mapped_column(Integer, nullable=False)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# --- Slack approval clicks (migration 0015): a click kept until it can be applied safely ----------------------


class ApprovalClickStatus(enum.StrEnum):
    """Life of a stored approval click. Only ``pending`` clicks are still to be applied."""

    PENDING = "pending"
    APPLIED = "applied"  # recorded as the HITL response, audited once
    SUPERSEDED = "superseded"  # someone else decided first (the Airflow UI, the REST API)
    EXPIRED = "expired"  # the request ended or was replaced (a new try) before the click could be applied
    REFUSED = "refused"  # Airflow refused the responder (assigned users)


class ApprovalClick(Base):
    """An approver's click on a Slack approval request (plugins/officeflow_gateway/approval_clicks.py): stored
    before Slack gets its answer, applied as the HITL response once the task is parked and the scheduler has
    handled the parking worker's exit. One click per HITL request (``ti_id``, the task instance's try)."""

    __tablename__ = "approval_clicks"
    __table_args__ = (UniqueConstraint("ti_id", name="uq_approval_clicks_ti_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ti_id: Mapped[str] = mapped_column(String(36), nullable=False)
    dag_id: Mapped[str] = mapped_column(String(250), nullable=False)
    run_id: Mapped[str] = mapped_column(String(250), nullable=False)
    task_id: Mapped[str] = mapped_column(String(250), nullable=False)
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    option: Mapped[str] = mapped_column(String(64), nullable=False)
    slack_user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    # Slack's response_url for the message update (valid 30 min); cleared once the click is settled.
    response_url: Mapped[str | None] = mapped_column(Text)
    message_blocks: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=ApprovalClickStatus.PENDING.value, index=True
    )
    # The first heartbeat of the scheduler that queued the parked try seen after the settle time: the click
    # is applied once that scheduler has heartbeated again (a whole scheduler loop later).
    scheduler_mark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
