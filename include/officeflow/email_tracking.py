"""Email delivery tracking in the OfficeFlow store: deliveries, suppressions and statistics.

Used by ``operators/email.py`` (task side, through :func:`~include.officeflow.store.task_store_url`)
and by the gateway's email event routes (bounces, complaints, deliveries).

One row of ``email_deliveries`` per email per recipient. The row is *claimed* before the provider is
called, keyed on ``idempotency_key`` = sha256 of dag id, run id, task id, map index, recipient and
template, so a retried task finds its earlier send:

- ``sent`` / ``delivered`` / ``bounced`` / ``complained``: already accepted by the provider; the
  retry does not send again and reuses the stored provider message id;
- ``sending``: a previous try died between claiming and recording the provider's answer. Whether
  the provider accepted it is unknown; the caller sends again (SMTP with the same Message-ID, so
  receivers can deduplicate) and the claim's ``resumed`` flag says so;
- ``failed``: the provider refused or was unreachable; the retry sends;
- ``suppressed``: the address is on the suppression list (checked again on every try).

Status only moves forward (:data:`STATUS_RANK`): a late "delivered" never overwrites a bounce.

Domain events (docs/events.md): recording the provider's acceptance writes ``com.officeflow.email.sent``, and a
provider event that moves a delivery to ``delivered``, ``bounced`` or ``complained`` writes
``com.officeflow.email.<that status>``, each in the transaction of the delivery's change (:func:`email_event`).
Their data holds ids and states, never the address, the subject or the body.

Organizations (tenant isolation): every delivery belongs to the organization of the run that sent it, and
the statistics can be limited to some organizations. The suppression list is global: an address that bounced
or complained is not mailed again by any organization (one mailbox, one sender reputation). Readers limited to
some organizations see only the suppressed addresses their organizations have mailed (``organizations`` of
:func:`list_suppressions` / :func:`get_suppression`); the others stay hidden, since an address is personal data.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from include.officeflow.events.outbox import add_event
from include.officeflow.events.values import id_or_digest
from include.officeflow.store import DeliveryStatus, EmailDelivery, EmailSuppression, get_engine, session_scope
from include.officeflow.store.models import new_id, utcnow

log = logging.getLogger(__name__)

#: How far along a delivery is; events never move a delivery backwards.
STATUS_RANK: dict[str, int] = {
    DeliveryStatus.FAILED.value: 0,
    DeliveryStatus.SUPPRESSED.value: 0,
    DeliveryStatus.SENDING.value: 0,
    DeliveryStatus.SENT.value: 1,
    DeliveryStatus.DELIVERED.value: 2,
    DeliveryStatus.BOUNCED.value: 3,
    DeliveryStatus.COMPLAINED.value: 4,
}
#: Statuses meaning "the provider accepted the message": a retry must not send again.
ACCEPTED = frozenset({DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.BOUNCED.value,
                      DeliveryStatus.COMPLAINED.value})


def normalize_address(address: str) -> str:
    """The form addresses are compared and suppressed in: trimmed, lower-cased."""
    return address.strip().lower()


def idempotency_key(*, dag_id: str, run_id: str, task_id: str, map_index: int, recipient: str,
                    template: str) -> str:
    """sha256 (hex) of the task try's identity, the recipient and the template."""
    parts = [dag_id, run_id, task_id, str(map_index), normalize_address(recipient), template]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What the caller should do for one recipient.

    ``action``: ``send`` (call the provider, then :func:`mark_sent` / :func:`mark_failed`), ``done``
    (already accepted earlier: nothing to send, ``message_id`` is the stored one) or ``suppressed``.
    ``resumed``: an earlier try claimed this delivery and its outcome is unknown.
    """

    delivery_id: str
    action: str
    status: str
    message_id: str | None
    resumed: bool = False
    attempts: int = 0


@lru_cache(maxsize=4)
def _insert_or_nothing(dialect: str) -> Any:
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(EmailDelivery.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"])


def _is_suppressed(session: Session, address: str) -> EmailSuppression | None:
    return session.get(EmailSuppression, normalize_address(address))


def _mailed_by(organizations: Collection[str]) -> Any:
    """A WHERE clause: the suppressed address was mailed by one of ``organizations``."""
    return (select(EmailDelivery.id)
            .where(func.lower(EmailDelivery.recipient) == EmailSuppression.address,
                   EmailDelivery.organization_id.in_(list(organizations)))
            .exists())


def claim(url: str | None, *, key: str, recipient: str, template: str, subject: str, provider: str,
          organization_id: str = "default", dag_id: str | None = None, run_id: str | None = None,
          task_id: str | None = None) -> Claim:
    """Claim the delivery ``key`` before calling the provider (see the module docstring)."""
    engine = get_engine(url)
    with session_scope(url) as session:
        suppression = _is_suppressed(session, recipient)
        status = DeliveryStatus.SUPPRESSED.value if suppression else DeliveryStatus.SENDING.value
        now = utcnow()
        new_row = {"id": new_id(), "idempotency_key": key, "organization_id": organization_id,
                   "provider": provider, "recipient": recipient.strip(), "template": template,
                   "subject": subject[:998], "dag_id": dag_id, "run_id": run_id, "task_id": task_id,
                   "status": status, "attempts": 0 if suppression else 1, "created_at": now, "updated_at": now,
                   "status_detail": f"suppressed: {suppression.reason} ({suppression.source})" if suppression
                   else None}
        result: Any = session.execute(_insert_or_nothing(engine.dialect.name).values(**new_row))
        if result.rowcount:
            action = "suppressed" if suppression else "send"
            return Claim(str(new_row["id"]), action, status, None, attempts=0 if suppression else 1)
        row = session.scalars(select(EmailDelivery).where(EmailDelivery.idempotency_key == key)
                              .with_for_update()).one()
        if row.status in ACCEPTED:
            return Claim(row.id, "done", row.status, row.provider_message_id, attempts=row.attempts)
        if suppression:
            row.status = DeliveryStatus.SUPPRESSED.value
            row.status_detail = f"suppressed: {suppression.reason} ({suppression.source})"
            return Claim(row.id, "suppressed", row.status, row.provider_message_id, attempts=row.attempts)
        resumed = row.status == DeliveryStatus.SENDING.value
        row.status = DeliveryStatus.SENDING.value
        row.attempts += 1
        row.provider = provider
        row.subject = subject[:998]
        return Claim(row.id, "send", row.status, row.provider_message_id, resumed=resumed, attempts=row.attempts)


def set_message_id(url: str | None, delivery_id: str, message_id: str) -> None:
    """Record the Message-ID chosen *before* an SMTP send (so a resumed claim reuses it)."""
    with session_scope(url) as session:
        row = session.get(EmailDelivery, delivery_id, with_for_update=True)
        if row is not None and row.provider_message_id is None:
            row.provider_message_id = message_id


def email_event(session: Session, row: EmailDelivery, action: str, *, correlation_id: str | None) -> None:
    """Write ``com.officeflow.email.<action>`` for delivery ``row`` in ``session``'s transaction: subject the
    delivery id, data its ids and states (the provider's message id as a digest when it looks like an address,
    as SMTP Message-IDs do); never the recipient, the subject or the body."""
    add_event(session, area="email", action=action, subject=row.id, organization_id=row.organization_id,
              correlation_id=correlation_id,
              data={"delivery_id": row.id, "template": row.template, "provider": row.provider,
                    "status": row.status, "message_id": id_or_digest(row.provider_message_id),
                    "dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id, "attempts": row.attempts})


def mark_sent(url: str | None, delivery_id: str, message_id: str, *, correlation_id: str | None = None) -> None:
    """The provider accepted the message under ``message_id`` (``com.officeflow.email.sent``, once per delivery:
    a delivery already past ``sent`` writes no event)."""
    with session_scope(url) as session:
        row = session.get(EmailDelivery, delivery_id, with_for_update=True)
        if row is None:  # pragma: no cover - claimed rows are never deleted
            raise LookupError(f"email delivery {delivery_id} vanished")
        row.provider_message_id = message_id
        row.sent_at = utcnow()
        if STATUS_RANK[row.status] < STATUS_RANK[DeliveryStatus.SENT.value]:
            row.status = DeliveryStatus.SENT.value
            row.status_detail = None
            email_event(session, row, "sent", correlation_id=correlation_id)


def mark_failed(url: str | None, delivery_id: str, detail: str) -> None:
    """The provider refused the message or could not be reached (a retry sends again)."""
    with session_scope(url) as session:
        row = session.get(EmailDelivery, delivery_id, with_for_update=True)
        if row is not None and row.status == DeliveryStatus.SENDING.value:
            row.status = DeliveryStatus.FAILED.value
            row.status_detail = detail[:2000]


# --- suppressions ---------------------------------------------------------------------------------

def is_suppressed(url: str | None, address: str) -> bool:
    with session_scope(url) as session:
        return _is_suppressed(session, address) is not None


def suppress(url: str | None, address: str, *, reason: str, source: str, detail: str | None = None,
             session: Session | None = None) -> bool:
    """Add ``address`` to the suppression list; False when it was already there (kept as it was,
    except that a complaint replaces a bounce as the reason)."""
    if session is None:
        with session_scope(url) as own:
            return suppress(url, address, reason=reason, source=source, detail=detail, session=own)
    normalized = normalize_address(address)
    existing = session.get(EmailSuppression, normalized, with_for_update=True)
    if existing is not None:
        if reason == "complaint" and existing.reason != "complaint":
            existing.reason, existing.source, existing.detail = reason, source, detail
        return False
    engine = session.get_bind()
    insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    result: Any = session.execute(insert(EmailSuppression.__table__).values(
        address=normalized, reason=reason, source=source, detail=(detail or "")[:2000] or None,
        created_at=utcnow()).on_conflict_do_nothing(index_elements=["address"]))
    return bool(result.rowcount)


def get_suppression(url: str | None, address: str, *,
                    organizations: Collection[str] | None = None) -> dict[str, Any] | None:
    """The suppression of ``address`` (any case), or None (also when ``organizations`` is given and none of
    them mailed the address)."""
    with session_scope(url) as session:
        if organizations is None:
            r = _is_suppressed(session, address)
        else:
            r = session.scalar(select(EmailSuppression).where(
                EmailSuppression.address == normalize_address(address), _mailed_by(organizations)))
        return None if r is None else {"address": r.address, "reason": r.reason, "source": r.source,
                                       "detail": r.detail, "created_at": r.created_at}


def unsuppress(url: str | None, address: str) -> bool:
    """Remove ``address`` from the suppression list; False when it was not on it."""
    with session_scope(url) as session:
        row = session.get(EmailSuppression, normalize_address(address))
        if row is None:
            return False
        session.delete(row)
        return True


def list_suppressions(url: str | None, *, limit: int = 100, offset: int = 0, prefix: str | None = None,
                      organizations: Collection[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Suppressions, newest first, and their total; with ``organizations``, only the addresses those
    organizations mailed."""
    query = select(EmailSuppression)
    if organizations is not None:
        query = query.where(_mailed_by(organizations))
    if prefix:
        query = query.where(EmailSuppression.address.startswith(normalize_address(prefix), autoescape=True))
    with session_scope(url) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(EmailSuppression.created_at.desc(), EmailSuppression.address)
                               .limit(limit).offset(offset))
        return [{"address": r.address, "reason": r.reason, "source": r.source, "detail": r.detail,
                 "created_at": r.created_at} for r in rows], total


# --- provider events ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventResult:
    """What one provider event changed: the matched delivery (if any), its status after the event,
    and whether the address was newly suppressed."""

    delivery_id: str | None
    status: str | None
    suppressed: bool


def record_event(url: str | None, *, provider: str, event: str, recipient: str, message_id: str | None = None,
                 delivery_id: str | None = None, detail: str | None = None, at: datetime | None = None,
                 suppress_reason: str | None = None, correlation_id: str | None = None) -> EventResult:
    """Apply a provider event (``delivered``, ``bounced``, ``complained``) to its delivery.

    The delivery is found by ``delivery_id`` (SendGrid custom arg) or by provider message id and
    recipient. ``suppress_reason`` (``bounce`` / ``complaint``) adds the recipient to the suppression
    list, also when no delivery matches (an email OfficeFlow did not track still bounced).
    Idempotent: a repeated event changes nothing. A delivery whose status moves writes
    ``com.officeflow.email.<event>`` in the same transaction (``correlation_id``: the callback request's).
    """
    if event not in (DeliveryStatus.DELIVERED.value, DeliveryStatus.BOUNCED.value, DeliveryStatus.COMPLAINED.value):
        raise ValueError(f"unknown delivery event {event!r}")
    with session_scope(url) as session:
        row: EmailDelivery | None = None
        if delivery_id:
            row = session.get(EmailDelivery, delivery_id, with_for_update=True)
        if row is None and message_id:
            row = session.scalars(
                select(EmailDelivery).where(EmailDelivery.provider_message_id == message_id,
                                            func.lower(EmailDelivery.recipient) == normalize_address(recipient))
                .with_for_update()).first()
        if row is not None and STATUS_RANK[event] > STATUS_RANK[row.status]:
            row.status = event
            row.status_detail = (detail or "")[:2000] or None
            row.event_at = at or utcnow()
            email_event(session, row, event, correlation_id=correlation_id)
        newly = False
        if suppress_reason:
            newly = suppress(url, recipient, reason=suppress_reason, source=provider, detail=detail, session=session)
        return EventResult(row.id if row else None, row.status if row else None, newly)


# --- statistics -----------------------------------------------------------------------------------

def stats(url: str | None, *, start: date | None = None, end: date | None = None, template: str | None = None,
          organizations: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Per template and (UTC) day: total, sent (accepted by the provider), delivered, bounced,
    complained, suppressed, failed and sending counts. ``start``/``end`` are inclusive days;
    ``organizations``: count only those organizations' deliveries (None: all).

    Computed in SQL (``GROUP BY template, day``).
    """
    engine = get_engine(url)
    created = EmailDelivery.created_at
    # PostgreSQL: the UTC calendar day of a timestamptz; SQLite keeps the UTC timestamp as text.
    day = cast(func.timezone("UTC", created), Date) if engine.dialect.name == "postgresql" else func.date(created)
    status = EmailDelivery.status

    def count_in(*values: str) -> Any:
        return func.sum(case((status.in_(values), 1), else_=0))

    query = (select(EmailDelivery.template, day.label("day"), func.count().label("total"),
                    count_in(*ACCEPTED).label("sent"),
                    count_in(DeliveryStatus.DELIVERED.value, DeliveryStatus.COMPLAINED.value).label("delivered"),
                    count_in(DeliveryStatus.BOUNCED.value).label("bounced"),
                    count_in(DeliveryStatus.COMPLAINED.value).label("complained"),
                    count_in(DeliveryStatus.SUPPRESSED.value).label("suppressed"),
                    count_in(DeliveryStatus.FAILED.value).label("failed"),
                    count_in(DeliveryStatus.SENDING.value).label("sending"))
             .group_by(EmailDelivery.template, day).order_by(day, EmailDelivery.template))
    if start:
        query = query.where(created >= datetime(start.year, start.month, start.day, tzinfo=UTC))
    if end:
        query = query.where(created < datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1))
    if template:
        query = query.where(EmailDelivery.template == template)
    if organizations is not None:
        query = query.where(EmailDelivery.organization_id.in_(list(organizations)))
    with session_scope(url) as session:
        rows = session.execute(query).mappings().all()
    result = []
    for r in rows:
        d = r["day"]
        result.append({"template": r["template"], "day": d.isoformat() if isinstance(d, date) else str(d),
                       **{k: int(r[k] or 0) for k in ("total", "sent", "delivered", "bounced", "complained",
                                                       "suppressed", "failed", "sending")}})
    return result
