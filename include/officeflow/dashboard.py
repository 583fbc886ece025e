"""The dashboard's figures from the OfficeFlow store, and the arithmetic that turns rows into chart series.

The store side reads the inbox (webhook events by outcome and UTC day; the triggered events whose runs give
the lead time) and reuses :func:`include.officeflow.email_tracking.stats` for the email deliveries. What comes
from Airflow's metadata DB (runs, their end dates, approvals) is read in the plugin
(``plugins/officeflow_gateway/airflow_history.py``) and handed to the pure functions below as plain values.

Every figure is a count or a duration: no names, addresses or payloads.

- **Period**: the last ``days`` UTC calendar days, today included (:data:`PERIODS`).
- **Webhook events by outcome**: the inbox's status of each event received in the period (``triggered``,
  ``ignored``, ``rejected``, ``dead``, ``pending``). Deliveries the gateway refused before storing them
  (bad signature, unknown endpoint) are not in the inbox and not counted here (the Prometheus metric
  ``officeflow_webhook_events_total`` counts them).
- **Lead time**: from an event's ``received_at`` to its run's ``end_date``, for triggered events whose run
  succeeded; runs still going or failed are counted apart.
- **Approval wait**: an Airflow HITL request's ``created_at`` to ``responded_at``; unanswered ones are
  "waiting", aged from ``created_at`` to now.
- **Email**: delivery rate = delivered (and complained: it arrived) / accepted by the provider; bounce rate =
  bounced / accepted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, literal, literal_column, select, true

from include.officeflow import email_tracking
from include.officeflow.insights import spread
from include.officeflow.store import EventStatus, WebhookEndpoint, WebhookEvent, get_engine, session_scope

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
RUN_STATES = ("success", "failed", "running", "queued")
OUTCOMES = tuple(status.value for status in (EventStatus.TRIGGERED, EventStatus.IGNORED, EventStatus.REJECTED,
                                               EventStatus.DEAD, EventStatus.PENDING))
EMAIL_STATUSES = ("delivered", "bounced", "complained", "failed", "suppressed", "sent", "sending")
#: Approval wait buckets: (label, upper bound in seconds; None = no bound).
WAIT_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("< 1 h", 3600.0), ("1-4 h", 4 * 3600.0), ("4-24 h", 86400.0), ("1-3 days", 3 * 86400.0), ("> 3 days", None))


# --- the period ----------------------------------------------------------------------------------------------


def period_days(days: int, today: date) -> list[date]:
    """The ``days`` UTC days ending with ``today``, oldest first."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def period_start(days: int, today: date) -> datetime:
    first = period_days(days, today)[0]
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def utc_day(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


def day_column(column: Any, dialect: str) -> Any:
    """SQL for the UTC calendar day of a timestamp column (PostgreSQL timestamptz; SQLite keeps UTC text). The
    zone is a literal, not a bound parameter: the same expression in SELECT and GROUP BY must compare equal."""
    if dialect == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.date(column)


def _iso(day: Any) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)


# --- series --------------------------------------------------------------------------------------------------


def daily_series(rows: Iterable[tuple[str, str, int]], days: Sequence[date], keys: Sequence[str]
                 ) -> dict[str, list[int]]:
    """``{key: [count per day]}`` from ``(day ISO, key, count)`` rows; every key of ``keys`` first, then any
    other key met in the rows (an unknown status still shows); days outside the period are dropped."""
    index = {day.isoformat(): n for n, day in enumerate(days)}
    series: dict[str, list[int]] = {key: [0] * len(days) for key in keys}
    for day, key, count in rows:
        if day not in index:
            continue
        series.setdefault(key, [0] * len(days))[index[day]] += int(count)
    return series


def totals(series: Mapping[str, Sequence[int]]) -> dict[str, int]:
    return {key: sum(values) for key, values in series.items()}


def rate(part: int, whole: int) -> float | None:
    """``part`` / ``whole`` in percent (one decimal), None when there is nothing to divide by."""
    return round(100.0 * part / whole, 1) if whole else None


# --- webhook events (store) ----------------------------------------------------------------------------------


def _event_scope(organizations: Collection[str] | None, builtin: Mapping[str, str]) -> tuple[Any, Any]:
    """The organization of an event (its endpoint's, or a built-in endpoint's) and the WHERE clause for the
    caller's ``organizations`` (None: all, including events of deleted endpoints)."""
    whens = [(WebhookEvent.endpoint_id == endpoint_id, literal(org)) for endpoint_id, org in builtin.items()]
    organization = case(*whens, else_=WebhookEndpoint.organization_id) if whens else WebhookEndpoint.organization_id
    clause = true() if organizations is None else organization.in_(list(organizations))
    return organization, clause


def webhook_outcomes(since: datetime, *, organizations: Collection[str] | None, builtin: Mapping[str, str],
                     url: str | None = None) -> list[tuple[str, str, int]]:
    """``(day, status, count)`` of the inbox events received since ``since`` in ``organizations``; ``builtin``
    maps built-in endpoint ids (no row in ``webhook_endpoints``) to their organization."""
    day = day_column(WebhookEvent.received_at, get_engine(url).dialect.name)
    _, scope = _event_scope(organizations, builtin)
    query = (select(day.label("day"), WebhookEvent.status, func.count())
             .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
             .where(WebhookEvent.received_at >= since, scope)
             .group_by(day, WebhookEvent.status))
    with session_scope(url) as session:
        return [(_iso(d), status, int(n)) for d, status, n in session.execute(query).all()]


def triggered_events(since: datetime, *, organizations: Collection[str] | None, builtin: Mapping[str, str],
                     url: str | None = None) -> list[tuple[str, str, datetime]]:
    """``(dag_id, dag_run_id, received_at)`` of the events received since ``since`` that started a run."""
    _, scope = _event_scope(organizations, builtin)
    query = (select(WebhookEvent.dag_id, WebhookEvent.dag_run_id, WebhookEvent.received_at)
             .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
             .where(WebhookEvent.received_at >= since, WebhookEvent.status == EventStatus.TRIGGERED.value,
                    and_(WebhookEvent.dag_id.is_not(None), WebhookEvent.dag_run_id.is_not(None)), scope))
    with session_scope(url) as session:
        return [(str(dag_id), str(run_id), received) for dag_id, run_id, received in session.execute(query).all()]


# --- email deliveries (store) --------------------------------------------------------------------------------


def email_rows(days: Sequence[date], *, organizations: Collection[str] | None,
               url: str | None = None) -> list[tuple[str, str, int]]:
    """``(day, status, count)`` of the email deliveries created in the period (every template)."""
    rows: list[tuple[str, str, int]] = []
    for row in email_tracking.stats(url, start=days[0], end=days[-1], organizations=organizations):
        # stats() counts "sent" as accepted (sent + delivered + bounced + complained) and "delivered" with the
        # complaints: back to one status per delivery for a stacked chart.
        exclusive = {"delivered": row["delivered"] - row["complained"], "bounced": row["bounced"],
                     "complained": row["complained"], "failed": row["failed"], "suppressed": row["suppressed"],
                     "sent": row["sent"] - row["delivered"] - row["bounced"], "sending": row["sending"]}
        rows.extend((row["day"], status, count) for status, count in exclusive.items() if count)
    return rows


def email_summary(series: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    counts = totals(series)
    accepted = sum(counts.get(status, 0) for status in ("delivered", "bounced", "complained", "sent"))
    arrived = counts.get("delivered", 0) + counts.get("complained", 0)
    return {"totals": counts, "accepted": accepted, "delivery_rate": rate(arrived, accepted),
            "bounce_rate": rate(counts.get("bounced", 0), accepted)}


# --- lead time and approvals (pure: Airflow's values come in) -------------------------------------------------


def lead_times(events: Iterable[tuple[str, str, datetime]],
               runs: Mapping[tuple[str, str], tuple[str | None, datetime | None]]) -> dict[str, Any]:
    """Per workflow, the seconds from an event's arrival to its run's successful end.

    ``events``: ``(dag_id, run_id, received_at)``; ``runs``: ``(dag_id, run_id) -> (state, end_date)``. Runs not
    finished (or not found: deleted, or not readable by the caller) count as ``unfinished``, failed ones as
    ``failed``; neither gets a lead time."""
    seconds: dict[str, list[float]] = defaultdict(list)
    unfinished: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    for dag_id, run_id, received in events:
        state, end = runs.get((dag_id, run_id), (None, None))
        if state == "success" and end is not None:
            seconds[dag_id].append(max((end - received).total_seconds(), 0.0))
        elif state == "failed":
            failed[dag_id] += 1
        else:
            unfinished[dag_id] += 1
    workflows = sorted(set(seconds) | set(unfinished) | set(failed))
    every = [s for values in seconds.values() for s in values]
    return {"overall": spread(every),
            "workflows": [{"dag_id": dag_id, **spread(seconds[dag_id]), "failed": failed[dag_id],
                           "unfinished": unfinished[dag_id]} for dag_id in workflows]}


def approval_waits(requests: Iterable[tuple[str, datetime, datetime | None]], now: datetime) -> dict[str, Any]:
    """Answered and waiting approvals from ``(dag_id, created_at, responded_at)``: the spread of answered waits,
    how many still wait and the oldest's age, per workflow, and a histogram by :data:`WAIT_BUCKETS`."""
    answered: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, list[float]] = defaultdict(list)
    for dag_id, created, responded in requests:
        if responded is None:
            waiting[dag_id].append(max((now - created).total_seconds(), 0.0))
        else:
            answered[dag_id].append(max((responded - created).total_seconds(), 0.0))

    def bucket(values: Iterable[float]) -> list[int]:
        counts = [0] * len(WAIT_BUCKETS)
        for value in values:
            counts[next(n for n, (_, bound) in enumerate(WAIT_BUCKETS) if bound is None or value < bound)] += 1
        return counts

    all_answered = [s for values in answered.values() for s in values]
    all_waiting = [s for values in waiting.values() for s in values]
    return {
        "answered": spread(all_answered),
        "waiting": len(all_waiting),
        "oldest_waiting_seconds": round(max(all_waiting), 3) if all_waiting else None,
        "buckets": [{"label": label, "answered": a, "waiting": w}
                    for (label, _), a, w in zip(WAIT_BUCKETS, bucket(all_answered), bucket(all_waiting), strict=True)],
        "workflows": [{"dag_id": dag_id, **spread(answered[dag_id]), "waiting": len(waiting[dag_id])}
                      for dag_id in sorted(set(answered) | set(waiting))],
    }
