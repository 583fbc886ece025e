"""What the OfficeFlow store tells Prometheus, read at scrape time (include/officeflow/metrics.py): the inbox's
pending and dead-lettered webhook events, the outbox lag, and email deliveries by provider and status.

A few grouped queries on indexed columns, bounded by a statement timeout; when the store does not answer,
``officeflow_store_metrics_up`` is 0 and the other series are left out (rather than reported as 0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from include.officeflow.events.outbox import lag
from include.officeflow.store import EmailDelivery, EventStatus, WebhookEndpoint, WebhookEvent, session_scope

log = logging.getLogger(__name__)

BUILTIN_BAMBOOHR = "bamboohr"  # the built-in endpoint (OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY) has no endpoint row


def bound_statements(session: Session, timeout_seconds: float) -> None:
    """Cancel any statement of this transaction that runs longer than ``timeout_seconds`` (PostgreSQL; SQLite
    has no such limit)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}"))


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    """Seconds since ``oldest`` (0 when there is none); SQLite hands back naive UTC datetimes."""
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


class StoreCollector(Collector):
    """The store's series, read when Prometheus scrapes."""

    def __init__(self, url: str | None = None, timeout_seconds: float = 2.0) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("officeflow_store_metrics_up", "1 when the OfficeFlow store answered the scrape.")
        try:
            with session_scope(self.url) as session:
                bound_statements(session, self.timeout_seconds)
                families = [*self._inbox(session), *self._outbox(session), self._email(session)]
        except Exception as exc:  # the store away or too slow: say so, keep serving the other series
            log.warning("Store metrics unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # collected at scrape time only (nothing read at registration)

    @staticmethod
    def _inbox(session: Session) -> list[GaugeMetricFamily]:
        count, oldest = session.execute(
            select(func.count(), func.min(WebhookEvent.received_at))
            .where(WebhookEvent.status == EventStatus.PENDING.value)
        ).one()
        pending = GaugeMetricFamily("officeflow_inbox_pending_events", "Webhook events stored and not yet "
                                    "started as a DAG run (retries included).", value=count)
        pending_age = GaugeMetricFamily("officeflow_inbox_oldest_pending_age_seconds", "Age of the oldest "
                                        "pending webhook event (0 when none): the inbox lag.",
                                        value=age_seconds(oldest, datetime.now(UTC)))
        dead = GaugeMetricFamily("officeflow_inbox_dead_events", "Dead-lettered webhook events (the dispatcher "
                                 "gave up; replay or resolve them), by endpoint.", labels=["endpoint", "adapter"])
        rows = session.execute(
            select(WebhookEvent.endpoint_id, WebhookEndpoint.adapter, func.count())
            .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
            .where(WebhookEvent.status == EventStatus.DEAD.value)
            .group_by(WebhookEvent.endpoint_id, WebhookEndpoint.adapter)
        ).all()
        for endpoint_id, adapter, dead_count in rows:
            if adapter is None:
                adapter = BUILTIN_BAMBOOHR if endpoint_id == BUILTIN_BAMBOOHR else ""
            dead.add_metric([endpoint_id, adapter], dead_count)
        return [pending, pending_age, dead]

    @staticmethod
    def _outbox(session: Session) -> list[GaugeMetricFamily]:
        # The same names as the relay's /metrics (plugins/officeflow_events/metrics.py): one thing, one name.
        current = lag(session)
        return [
            GaugeMetricFamily("officeflow_outbox_unsent_events", "Events in the outbox not yet acknowledged by "
                              "Kafka.", value=current.unsent),
            GaugeMetricFamily("officeflow_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent event "
                              "(0 when none).", value=current.oldest_unsent_age_seconds),
        ]

    @staticmethod
    def _email(session: Session) -> GaugeMetricFamily:
        family = GaugeMetricFamily("officeflow_email_deliveries", "Emails in the store by provider and current "
                                   "status (sending, sent, delivered, bounced, complained, suppressed, failed).",
                                   labels=["provider", "status"])
        rows = session.execute(
            select(EmailDelivery.provider, EmailDelivery.status, func.count())
            .group_by(EmailDelivery.provider, EmailDelivery.status)
        ).all()
        for provider, status, count in rows:
            family.add_metric([provider, status], count)
        return family
