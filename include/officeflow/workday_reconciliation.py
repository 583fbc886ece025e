"""Workday's periodic reconciliation: the hires, terminations and job changes its notifications missed.

Workday's outbound notifications can be lost (a failed integration step, a paused subscription, an endpoint down
for longer than Workday retried). The ``workday_reconciliation`` DAG (``OFFICEFLOW_WORKDAY_RECONCILE_SCHEDULE``,
hourly by default) reads the workers report (operators/hooks/workday.py) and calls :func:`reconcile`:

1. :func:`changes`: each worker's lifecycle changes effective in the last ``OFFICEFLOW_WORKDAY_RECONCILE_WINDOW_DAYS``
   days or later: a hire (``Hire_Date``), a termination (``Termination_Date``), a job change (``Job_Effective_Date``
   after the hire). Older ones are history, not missed events;
2. a change is **known** when the inbox holds an event of the same type for the same worker (its conf's
   ``employee_id`` or ``email``; for a job change, the same ``job_title`` when both say one), still owing or having
   started its run (``pending``, ``triggered``, or ``dead``, which an admin may replay), received at most
   ``LEAD_DAYS`` before the change is effective, from a Workday endpoint of ``OFFICEFLOW_WORKDAY_ORGANIZATION_ID``
   or from an earlier reconciliation;
3. every other change is recorded in the inbox under the endpoint ``workday:reconciliation``
   (:func:`include.officeflow.inbound_events.record_event`: routed to the HR workflows, mapped as the Kafka events
   are, unique per ``<worker>:<change>:<date>``, so a second pass stores nothing new) and its run is started by
   the DAG, the gateway's dispatcher retrying it if Airflow was away.

The other direction: a Workday notification that arrives after the reconciliation started its change (a late
delivery, Workday's own retry) must not start it again. The dispatcher asks :func:`started_by_reconciliation`
before starting a Workday event's run and stores such an event ``ignored``, naming the reconciliation's event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from include.officeflow.settings import get_settings

log = logging.getLogger(__name__)

ENDPOINT = "workday:reconciliation"  # the inbox's endpoint id of the reconciliation's events
SOURCE = "workday-reconciliation"  # the runs' conf "source" and the run note's "started by"
WEBHOOK_SOURCE = "workday"  # the conf "source" of the Workday webhook endpoints' events
LEAD_DAYS = 180  # how long before a change is effective Workday may notify it
#: The statuses of an inbox event that has started its run or still may (``dead``: an admin's replay).
STARTED = ("pending", "triggered", "dead")
#: The report's columns -> the HR document's fields (include.officeflow.mapping.HR_DOCUMENT_MAPPING).
COLUMNS = {"First_Name": "firstName", "Last_Name": "lastName", "Work_Email": "workEmail", "Department": "department",
           "Job_Title": "jobTitle", "Manager_Email": "supervisorEmail", "Hire_Date": "hireDate",
           "Termination_Date": "terminationDate"}
KINDS = {"employee.created": "hire", "employee.terminated": "termination", "employee.job_changed": "job_change"}


@dataclass(frozen=True)
class Change:
    """A lifecycle change the report shows."""

    worker_id: str
    event_type: str
    effective: date
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        """Its inbox id: the same on every pass, so a change is recorded once."""
        return f"{self.worker_id}:{KINDS[self.event_type]}:{self.effective.isoformat()}"

    @property
    def email(self) -> str | None:
        return self.fields.get("workEmail")


@dataclass
class Summary:
    """What a pass found and did (the task's log and return value)."""

    workers: int = 0
    changes: int = 0
    already_known: int = 0
    recorded: int = 0
    not_started: int = 0
    unusable: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {"workers": self.workers, "changes": self.changes, "already_known": self.already_known,
                "recorded": self.recorded, "not_started": self.not_started, "unusable": self.unusable[:20]}


def _date(entry: Mapping[str, Any], column: str) -> date | None:
    value = entry.get(column)
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a date (YYYY-MM-DD)") from None


def worker_changes(entry: Mapping[str, Any], since: date) -> list[Change]:
    """The changes of one report entry effective on or after ``since``; ``ValueError`` for an unusable entry."""
    worker_id = str(entry.get("Worker_ID") or "").strip()
    if not worker_id:
        raise ValueError("no Worker_ID")
    hired, terminated, job = (_date(entry, column) for column in ("Hire_Date", "Termination_Date",
                                                                   "Job_Effective_Date"))
    fields = {name: str(entry[column]).strip() for column, name in COLUMNS.items()
              if entry.get(column) not in (None, "")}
    found = []
    if hired is not None and hired >= since:
        found.append(Change(worker_id, "employee.created", hired, fields))
    if job is not None and job >= since and hired is not None and job > hired and (terminated is None or
                                                                                   job < terminated):
        found.append(Change(worker_id, "employee.job_changed", job, fields))
    if terminated is not None and terminated >= since:
        found.append(Change(worker_id, "employee.terminated", terminated, fields))
    return found


def changes(entries: Iterable[Mapping[str, Any]], *, since: date, summary: Summary) -> list[Change]:
    """Every report entry's changes effective on or after ``since``; unusable entries go to ``summary.unusable``."""
    found = []
    for index, entry in enumerate(entries):
        summary.workers += 1
        try:
            found.extend(worker_changes(entry, since))
        except ValueError as exc:
            summary.unusable.append(f"entry {index} ({entry.get('Worker_ID') or 'no id'}): {exc}")
    summary.changes = len(found)
    return found


def _matches(conf: Mapping[str, Any], *, worker_id: str, email: str | None, job_title: str | None,
             event_type: str) -> bool:
    same_person = (bool(worker_id) and str(conf.get("employee_id") or "") == worker_id) or (
        bool(email) and str(conf.get("email") or "").casefold() == email.casefold())  # type: ignore[union-attr]
    if not same_person:
        return False
    if event_type == "employee.job_changed" and job_title and conf.get("job_title"):
        return str(conf["job_title"]).casefold() == job_title.casefold()
    return True


def _started_events(session: Any, endpoint_ids: list[str], event_types: Iterable[str], since: datetime) -> list[Any]:
    from include.officeflow.store import WebhookEvent

    return list(session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.endpoint_id.in_(endpoint_ids), WebhookEvent.event_type.in_(list(event_types)),
               WebhookEvent.status.in_(STARTED), WebhookEvent.received_at >= since)
    ))


def _workday_endpoints(session: Any, organization_id: str) -> list[str]:
    from include.officeflow.store import WebhookEndpoint

    return list(session.scalars(select(WebhookEndpoint.id).where(
        WebhookEndpoint.adapter == "workday", WebhookEndpoint.organization_id == organization_id)))


def _is_known(change: Change, events: list[Any]) -> bool:
    earliest = datetime.combine(change.effective - timedelta(days=LEAD_DAYS), datetime.min.time(), UTC)
    return any(
        event.event_type == change.event_type and _aware(event.received_at) >= earliest
        and _matches((event.payload or {}).get("conf") or {}, worker_id=change.worker_id, email=change.email,
                     job_title=change.fields.get("jobTitle"), event_type=change.event_type)
        for event in events)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives naive UTC


def reconcile(entries: Iterable[Mapping[str, Any]], *, today: date | None = None,
              store_url: str | None = None) -> Summary:
    """Record the changes of the report ``entries`` that no inbox event knows; ``summary.runs``: the runs to start
    (``trigger_dag_id``, ``trigger_run_id``, ``conf``, ``note``)."""
    from include.officeflow.inbound_events import HrEvent, record_event
    from include.officeflow.store import session_scope

    settings = get_settings()
    organization_id = settings.workday_organization_id
    since = (today or datetime.now(UTC).date()) - timedelta(days=settings.workday_reconcile_window_days)
    summary = Summary()
    found = changes(entries, since=since, summary=summary)
    if not found:
        return summary
    earliest = datetime.combine(min(change.effective for change in found) - timedelta(days=LEAD_DAYS),
                                datetime.min.time(), UTC)
    with session_scope(store_url) as session:
        endpoint_ids = [*_workday_endpoints(session, organization_id), ENDPOINT]
        known = _started_events(session, endpoint_ids, {change.event_type for change in found}, earliest)
        session.expunge_all()
    for change in found:
        if _is_known(change, known):
            summary.already_known += 1
            continue
        event = HrEvent(id=change.id, type=change.event_type, source=SOURCE, time=change.effective.isoformat(),
                        data={"employee_id": change.worker_id, "fields": change.fields, "action": change.event_type})
        run = record_event(event, endpoint=ENDPOINT, organization_id=organization_id, source=SOURCE,
                           store_url=store_url)
        if run is None:
            summary.not_started += 1
        else:
            summary.recorded += 1
            summary.runs.append(run)
    return summary


def started_by_reconciliation(session: Any, event: Any) -> Any | None:
    """The reconciliation's inbox event that already started what the Workday webhook ``event`` asks for (the
    same type, worker and, for a job change, job title), or ``None``."""
    conf = (event.payload or {}).get("conf") or {}
    if event.endpoint_id == ENDPOINT or conf.get("source") != WEBHOOK_SOURCE or event.event_type not in KINDS:
        return None
    window = get_settings().workday_reconcile_window_days + LEAD_DAYS
    since = datetime.now(UTC) - timedelta(days=window)
    for earlier in _started_events(session, [ENDPOINT], [event.event_type], since):
        fields = ((earlier.payload or {}).get("document") or {}).get("data", {}).get("fields") or {}
        if _matches(conf, worker_id=str(((earlier.payload or {}).get("conf") or {}).get("employee_id") or ""),
                    email=fields.get("workEmail"), job_title=fields.get("jobTitle"), event_type=event.event_type):
            return earlier
    return None
