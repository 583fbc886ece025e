"""Calendar sync, provider-neutral: the store side of watch channels / Graph subscriptions, booked meetings,
the verification of notifications, and what counts as a change of a booked meeting.

The providers' calls are the hooks' (operators/hooks/google_calendar.py, msgraph_calendar.py); the
operators (operators/calendar.py) and the gateway (plugins/officeflow_gateway/calendar_notifications.py)
put the two together. Functions that touch the store take ``store_url`` (task code passes
``task_store_url()``; the gateway the configured store).

Verification (:func:`verify_google`, :func:`verify_graph`): the channel token / ``clientState`` is compared
in constant time with the one stored (Fernet-encrypted with Airflow's key) for the channel; an unknown
channel, a wrong token, a stopped or expired subscription or a message number not above the last one
accepted (a replay, or a stale message overtaken by a newer one) is refused and stores nothing. An
accepted notification is stored (``calendar_notifications``, unique per subscription and message) before
the gateway answers.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from include.officeflow.settings import get_settings
from include.officeflow.store import session_scope
from include.officeflow.store.models import (
    BookedMeeting,
    CalendarNotification,
    CalendarSubscription,
    MeetingChange,
)

PROVIDERS = ("google", "microsoft")
ON_CHANGE = ("notify", "rebook")
#: What declining looks like in each provider's attendee entries.
DECLINED = frozenset({"declined"})


class Verdict(enum.StrEnum):
    """What a notification's verification found."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown_channel"
    FORBIDDEN = "invalid_token"
    EXPIRED = "expired"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class Verified:
    verdict: Verdict
    subscription_id: str | None = None
    notification_id: str | None = None
    organization_id: str | None = None


# --- addresses and secrets ------------------------------------------------------------------------------

def notifications_url(provider: str) -> str | None:
    """Where ``provider`` posts notifications: ``<OfficeFlow app URL>/calendar/<provider>/notifications``;
    None when no public URL is configured (then nothing is subscribed)."""
    import os

    base = get_settings().calendar_notifications_url.strip()
    if not base:
        airflow_base = os.environ.get("AIRFLOW__API__BASE_URL", "").strip()
        base = f"{airflow_base.rstrip('/')}/officeflow" if airflow_base else ""
    return f"{base.rstrip('/')}/calendar/{provider}/notifications" if base else None


def encrypt(plaintext: str) -> str:
    from airflow.sdk.crypto import get_fernet

    return get_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    from airflow.sdk.crypto import get_fernet

    return get_fernet().decrypt(token.encode()).decode()


def new_channel() -> tuple[str, str]:
    """A Google channel id (``[A-Za-z0-9-_]``, ≤ 64) and a channel token / Graph clientState (≤ 128)."""
    return f"officeflow-{secrets.token_hex(16)}", secrets.token_urlsafe(48)


def _same(given: str | None, stored_encrypted: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), decrypt(stored_encrypted).encode())


# --- subscriptions --------------------------------------------------------------------------------------

def add_subscription(*, provider: str, calendar: str, channel_id: str, secret: str, organization_id: str,
                     created_by: str, expires_at: datetime | None = None, resource_id: str | None = None,
                     status: str = "pending", store_url: str | None = None) -> str:
    """Store a subscription (``pending`` until the provider confirmed it): its id."""
    with session_scope(store_url) as session:
        row = CalendarSubscription(provider=provider, calendar=calendar.lower(), channel_id=channel_id,
                                   secret_encrypted=encrypt(secret), organization_id=organization_id,
                                   created_by=created_by, expires_at=expires_at, resource_id=resource_id,
                                   status=status)
        session.add(row)
        session.flush()
        return row.id


def confirm_subscription(subscription_id: str, *, channel_id: str | None = None, resource_id: str | None = None,
                         expires_at: datetime | None = None, sync_token: str | None = None,
                         renewed: bool = False, store_url: str | None = None) -> None:
    values: dict[str, Any] = {"status": "active"}
    for name, value in (("channel_id", channel_id), ("resource_id", resource_id), ("expires_at", expires_at),
                        ("sync_token", sync_token)):
        if value is not None:
            values[name] = value
    if renewed:
        values["renewed_at"] = datetime.now(UTC)
    with session_scope(store_url) as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == subscription_id)
                        .values(**values))


def set_status(subscription_id: str, status: str, store_url: str | None = None) -> None:
    with session_scope(store_url) as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == subscription_id)
                        .values(status=status))


def set_sync_token(subscription_id: str, token: str | None, store_url: str | None = None) -> None:
    with session_scope(store_url) as session:
        session.execute(update(CalendarSubscription).where(CalendarSubscription.id == subscription_id)
                        .values(sync_token=token))


def get_subscription(subscription_id: str, store_url: str | None = None) -> CalendarSubscription | None:
    with session_scope(store_url) as session:
        return session.get(CalendarSubscription, subscription_id)


def live_subscription(provider: str, calendar: str, *, within: timedelta = timedelta(0),
                      store_url: str | None = None) -> CalendarSubscription | None:
    """The active subscription on ``calendar`` that is still valid ``within`` from now, if any."""
    horizon = datetime.now(UTC) + within
    with session_scope(store_url) as session:
        return session.scalars(
            select(CalendarSubscription).where(
                CalendarSubscription.provider == provider, CalendarSubscription.calendar == calendar.lower(),
                CalendarSubscription.status == "active", CalendarSubscription.expires_at > horizon)
            .order_by(CalendarSubscription.expires_at.desc())).first()


def subscriptions(*, organizations: frozenset[str] | None = None, statuses: Iterable[str] | None = None,
                  store_url: str | None = None) -> list[CalendarSubscription]:
    statement = select(CalendarSubscription).order_by(CalendarSubscription.created_at)
    if organizations is not None:
        statement = statement.where(CalendarSubscription.organization_id.in_(organizations))
    if statuses is not None:
        statement = statement.where(CalendarSubscription.status.in_(list(statuses)))
    with session_scope(store_url) as session:
        return list(session.scalars(statement))


def expiring(before: datetime, store_url: str | None = None) -> list[CalendarSubscription]:
    """Active subscriptions that expire before ``before`` (expired ones included) and still watch a calendar
    with meetings to come."""
    now = datetime.now(UTC)
    with session_scope(store_url) as session:
        upcoming = select(BookedMeeting.organizer).where(BookedMeeting.ends_at > now)
        return list(session.scalars(
            select(CalendarSubscription).where(
                CalendarSubscription.status == "active", CalendarSubscription.expires_at < before,
                CalendarSubscription.calendar.in_(upcoming))))


# --- verification of notifications ----------------------------------------------------------------------

def verify_google(*, channel_id: str, token: str | None, resource_id: str | None, state: str,
                  message_number: int, correlation_id: str | None = None,
                  store_url: str | None = None) -> Verified:
    """Check one Google push message and, when it is genuine and new, store it (see the module docstring)."""
    with session_scope(store_url) as session:
        sub = session.scalars(select(CalendarSubscription).where(
            CalendarSubscription.provider == "google", CalendarSubscription.channel_id == channel_id)
            .with_for_update()).first()
        if sub is None or sub.status == "stopped":
            return Verified(Verdict.UNKNOWN)
        if not _same(token, sub.secret_encrypted) or (sub.resource_id and resource_id != sub.resource_id):
            return Verified(Verdict.FORBIDDEN, sub.id, organization_id=sub.organization_id)
        if sub.expires_at is not None and sub.expires_at <= datetime.now(UTC):
            return Verified(Verdict.EXPIRED, sub.id, organization_id=sub.organization_id)
        if sub.last_message_number is not None and message_number <= sub.last_message_number:
            return Verified(Verdict.REPLAYED, sub.id, organization_id=sub.organization_id)
        sub.last_message_number = message_number
        note = CalendarNotification(subscription_id=sub.id, message_key=str(message_number), state=state,
                                    status="pending" if state != "sync" else "processed",
                                    correlation_id=correlation_id)
        session.add(note)
        session.flush()
        return Verified(Verdict.ACCEPTED, sub.id, note.id, sub.organization_id)


def graph_message_key(item: Mapping[str, Any]) -> str:
    """A Graph notification item's identity: its subscription, change type, resource and the event's etag."""
    data = item.get("resourceData")
    data = data if isinstance(data, dict) else {}
    raw = json.dumps([item.get("subscriptionId"), item.get("changeType"), item.get("resource"),
                      data.get("@odata.etag")], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def verify_graph(item: Mapping[str, Any], *, correlation_id: str | None = None,
                 store_url: str | None = None) -> Verified:
    """Check one item of a Graph notification and, when genuine and new, store it."""
    subscription_id = str(item.get("subscriptionId") or "")
    with session_scope(store_url) as session:
        sub = session.scalars(select(CalendarSubscription).where(
            CalendarSubscription.provider == "microsoft", CalendarSubscription.channel_id == subscription_id)).first()
        if sub is None or sub.status == "stopped":
            return Verified(Verdict.UNKNOWN)
        if not _same(str(item.get("clientState") or ""), sub.secret_encrypted):
            return Verified(Verdict.FORBIDDEN, sub.id, organization_id=sub.organization_id)
        if sub.expires_at is not None and sub.expires_at <= datetime.now(UTC):
            return Verified(Verdict.EXPIRED, sub.id, organization_id=sub.organization_id)
        note = CalendarNotification(subscription_id=sub.id, message_key=graph_message_key(item),
                                    state=str(item.get("changeType") or "")[:32],
                                    resource=str(item.get("resource") or "")[:1024], correlation_id=correlation_id)
        session.add(note)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return Verified(Verdict.REPLAYED, sub.id, organization_id=sub.organization_id)
        return Verified(Verdict.ACCEPTED, sub.id, note.id, sub.organization_id)


def unwatched_organizers(store_url: str | None = None) -> list[tuple[str, str, str]]:
    """(provider, organizer, organization) of upcoming booked meetings whose calendar no live subscription
    watches (tracking failed when they were booked, or the subscription ended)."""
    now = datetime.now(UTC)
    with session_scope(store_url) as session:
        watched = {(s.provider, s.calendar) for s in session.scalars(select(CalendarSubscription).where(
            CalendarSubscription.status == "active", CalendarSubscription.expires_at > now))}
        rows = session.execute(select(BookedMeeting.provider, BookedMeeting.organizer, BookedMeeting.organization_id)
                               .where(BookedMeeting.ends_at > now, BookedMeeting.status != "cancelled")
                               .distinct()).all()
    return [(p, o, org) for p, o, org in rows if (p, o) not in watched]


def note_error(ids: Iterable[str], error: str, store_url: str | None = None) -> None:
    """Keep the notifications pending (calendar_maintenance retries them) with the last error."""
    with session_scope(store_url) as session:
        session.execute(update(CalendarNotification).where(CalendarNotification.id.in_(list(ids)))
                        .values(error=error[:2000]))


def pending_notifications(subscription_id: str, store_url: str | None = None) -> list[CalendarNotification]:
    with session_scope(store_url) as session:
        return list(session.scalars(select(CalendarNotification).where(
            CalendarNotification.subscription_id == subscription_id, CalendarNotification.status == "pending")
            .order_by(CalendarNotification.received_at)))


def subscriptions_with_pending(store_url: str | None = None) -> list[str]:
    with session_scope(store_url) as session:
        return list(session.scalars(select(CalendarNotification.subscription_id).where(
            CalendarNotification.status == "pending").distinct()))


def finish_notifications(ids: Iterable[str], *, error: str | None = None, store_url: str | None = None) -> None:
    ids = list(ids)
    if not ids:
        return
    with session_scope(store_url) as session:
        session.execute(update(CalendarNotification).where(CalendarNotification.id.in_(ids)).values(
            status="failed" if error else "processed", error=error, processed_at=datetime.now(UTC)))


# --- booked meetings and their changes ------------------------------------------------------------------

def record_booking(meeting: Mapping[str, Any], *, organization_id: str, dag_id: str, run_id: str, task_id: str,
                   on_change: str, booking: Mapping[str, Any], organizer: str,
                   store_url: str | None = None) -> str:
    """Remember a meeting ScheduleMeetingOperator booked (``meeting`` is its XCom result); idempotent per
    event (a retry of the task records it once)."""
    with session_scope(store_url) as session:
        row = session.scalars(select(BookedMeeting).where(BookedMeeting.provider == meeting["provider"],
                                                          BookedMeeting.event_id == meeting["event_id"])).first()
        if row is None:
            row = BookedMeeting(provider=str(meeting["provider"]), event_id=str(meeting["event_id"]))
            session.add(row)
        row.organization_id = organization_id
        row.organizer = organizer.lower()
        row.title = str(booking.get("title") or "")[:500]
        row.starts_at = datetime.fromisoformat(str(meeting["start"]))
        row.ends_at = datetime.fromisoformat(str(meeting["end"]))
        row.attendees = [str(a).lower() for a in meeting.get("attendees") or []]
        row.join_url = meeting.get("join_url")
        row.dag_id, row.run_id, row.task_id = dag_id, run_id, task_id
        row.on_change = on_change
        row.booking = dict(booking)
        session.flush()
        return row.id


def booked(provider: str, organizer: str, event_ids: Iterable[str] | None = None,
           store_url: str | None = None) -> list[BookedMeeting]:
    """The meetings OfficeFlow booked in ``organizer``'s calendar (those with ``event_ids``)."""
    statement = select(BookedMeeting).where(BookedMeeting.provider == provider,
                                            BookedMeeting.organizer == organizer.lower())
    if event_ids is not None:
        statement = statement.where(BookedMeeting.event_id.in_(list(event_ids)))
    with session_scope(store_url) as session:
        return list(session.scalars(statement))


@dataclass(frozen=True)
class EventState:
    """A calendar event as a change check needs it (from either provider)."""

    event_id: str
    start: datetime | None
    end: datetime | None
    cancelled: bool
    responses: Mapping[str, str] = field(default_factory=dict)  # attendee address -> response


@dataclass(frozen=True)
class Change:
    kind: str  # declined, moved, cancelled
    attendee: str | None
    details: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        basis = f"{self.kind}:{self.attendee or ''}:{self.details.get('start', '')}:{self.details.get('end', '')}"
        return hashlib.sha256(basis.encode()).hexdigest()


def changes_of(meeting: BookedMeeting, event: EventState) -> list[Change]:
    """What changed in ``event`` against the booked ``meeting``: a cancellation; a new time; every booked
    attendee who declined."""
    if event.cancelled:
        return [Change("cancelled", None, {"start": meeting.starts_at.isoformat()})]
    found: list[Change] = []
    if event.start is not None and event.end is not None and (
            event.start != meeting.starts_at.astimezone(UTC) or event.end != meeting.ends_at.astimezone(UTC)):
        found.append(Change("moved", None, {"start": event.start.isoformat(), "end": event.end.isoformat(),
                                            "was_start": meeting.starts_at.isoformat(),
                                            "was_end": meeting.ends_at.isoformat()}))
    for attendee in meeting.attendees:
        if event.responses.get(attendee.lower()) in DECLINED:
            found.append(Change("declined", attendee.lower(), {"start": meeting.starts_at.isoformat()}))
    return found


def record_change(meeting_id: str, change: Change, *, notification_id: str | None = None,
                  store_url: str | None = None) -> str | None:
    """Store ``change`` of a meeting once: its id, or None when it was recorded before (another
    notification found it first). A move also moves the booked meeting."""
    with session_scope(store_url) as session:
        row = MeetingChange(meeting_id=meeting_id, kind=change.kind, attendee=change.attendee,
                            details=change.details, fingerprint=change.fingerprint, notification_id=notification_id)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return None
        meeting = session.get(BookedMeeting, meeting_id)
        if meeting is not None:
            meeting.status = change.kind
            if change.kind == "moved":
                meeting.starts_at = datetime.fromisoformat(change.details["start"])
                meeting.ends_at = datetime.fromisoformat(change.details["end"])
        return row.id


def move_booking(meeting_id: str, *, start: datetime, end: datetime, status: str, rebooks: list[dict[str, Any]],
                 reminder_sent_at: datetime | None = None, store_url: str | None = None) -> None:
    """Set a booked meeting's time, status and ``booking["rebooks"]`` (what OfficeFlow moved it for). Done
    before OfficeFlow moves the event, so the provider's notice of that move is no change, and undone
    (called again with the earlier values) when the move failed."""
    with session_scope(store_url) as session:
        meeting = session.get(BookedMeeting, meeting_id, with_for_update=True)
        if meeting is None:
            raise LookupError(f"no booked meeting {meeting_id}")
        meeting.starts_at, meeting.ends_at, meeting.status = start, end, status
        meeting.booking = {**(meeting.booking or {}), "rebooks": rebooks}
        meeting.reminder_sent_at = reminder_sent_at


def change_handled(change_id: str, action: str, error: str | None = None, store_url: str | None = None) -> None:
    with session_scope(store_url) as session:
        session.execute(update(MeetingChange).where(MeetingChange.id == change_id).values(
            action=action, error=error, handled_at=datetime.now(UTC)))


def meeting_changes(*, organizations: frozenset[str] | None = None, limit: int = 100,
                    store_url: str | None = None) -> list[tuple[MeetingChange, BookedMeeting]]:
    statement = (select(MeetingChange, BookedMeeting).join(BookedMeeting, MeetingChange.meeting_id == BookedMeeting.id)
                 .order_by(MeetingChange.detected_at.desc()).limit(limit))
    if organizations is not None:
        statement = statement.where(BookedMeeting.organization_id.in_(organizations))
    with session_scope(store_url) as session:
        return [(change, meeting) for change, meeting in session.execute(statement).all()]


# --- reminders ------------------------------------------------------------------------------------------

def due_reminders(lead: timedelta, store_url: str | None = None) -> list[BookedMeeting]:
    """Meetings starting within ``lead`` from now, not cancelled, whose organizer was not reminded yet."""
    now = datetime.now(UTC)
    with session_scope(store_url) as session:
        return list(session.scalars(select(BookedMeeting).where(
            BookedMeeting.reminder_sent_at.is_(None), BookedMeeting.status != "cancelled",
            BookedMeeting.starts_at > now, BookedMeeting.starts_at <= now + lead).order_by(BookedMeeting.starts_at)))


def claim_reminder(meeting_id: str, store_url: str | None = None) -> bool:
    """Mark the meeting reminded; False when another run did it first (each reminder goes out once)."""
    with session_scope(store_url) as session:
        result = session.execute(update(BookedMeeting).where(BookedMeeting.id == meeting_id,
                                                             BookedMeeting.reminder_sent_at.is_(None))
                                 .values(reminder_sent_at=datetime.now(UTC)))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release_reminder(meeting_id: str, store_url: str | None = None) -> None:
    """Undo :func:`claim_reminder` after the reminder could not be posted (the next run tries again)."""
    with session_scope(store_url) as session:
        session.execute(update(BookedMeeting).where(BookedMeeting.id == meeting_id).values(reminder_sent_at=None))
