"""The dispatcher: turns pending inbox events into DAG runs, retrying with backoff.

Two ways to run it (``OFFICEFLOW_DISPATCHER_MODE``):

- ``embedded`` (default): a daemon thread inside each api-server process, started on the gateway's
  first request (so the scheduler and workers that also load the plugin never start one). New events
  wake it at once.
- ``external``: api-servers only accept deliveries; ``python -m plugins.officeflow_gateway.dispatcher``
  (``./run.sh dispatcher``, the Helm chart's dispatcher Deployment) creates the runs in its own
  process, polling the inbox at most every second.

Either way a periodic scan picks up events whose retry is due and those left by a process that died.
An event that came without field values has its employee record read first (employee_records.py), before the event
is claimed, so no row lock or transaction waits on the HR system; a failed read is retried like a failed trigger.
A Workday notification of a change the Workday reconciliation already started is stored ``ignored``
(include/officeflow/workday_reconciliation.py).
Several dispatchers may run at once: an event is claimed with ``FOR UPDATE SKIP LOCKED`` and the run id
is derived from the event, so the worst case of a race is an ``already exists`` that counts as success.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select

from include.officeflow import run_notes, tracing, workday_reconciliation
from include.officeflow.audit import audit
from include.officeflow.inbox import webhook_event
from include.officeflow.settings import get_settings
from include.officeflow.store import EventStatus, WebhookEvent, session_scope
from include.officeflow.structured_logs import bound
from plugins.officeflow_gateway import employee_records
from plugins.officeflow_gateway.background import BackgroundLoop
from plugins.officeflow_gateway.triggering import TriggerError, trigger_run

log = logging.getLogger(__name__)

Trigger = Callable[..., str]


def backoff_seconds(attempts: int) -> float:
    """Delay before attempt ``attempts + 1``: base * 2^(attempts-1), capped."""
    settings = get_settings()
    return float(min(settings.dispatch_max_delay_seconds,
                     settings.dispatch_base_delay_seconds * 2 ** max(0, attempts - 1)))


def _read_record(event_id: str) -> employee_records.Read | None:
    """The employee record a pending event without field values needs, read before the event is claimed."""
    with session_scope() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or event.status != EventStatus.PENDING.value or not employee_records.needs_record(event):
            return None
        session.expunge(event)
    return employee_records.read(event)


def dispatch_one(event_id: str, trigger: Trigger = trigger_run) -> str | None:
    """Try to start the run of one due pending event; return its new status (None if not claimed)."""
    record = _read_record(event_id)
    with session_scope() as session:
        event = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.PENDING.value)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if event is None or not event.dag_run_id or not (event.dag_id or employee_records.needs_record(event)):
            return None
        event.attempts += 1
        conf = dict(event.payload.get("conf") or {})
        # Every line logged while starting the run carries its ids (docs/observability.md).
        with bound(correlationId=event.correlation_id, workflowId=event.dag_id,
                   organizationId=conf.get("organization_id")):
            try:
                # The run continues the trace of the request that delivered the event (docs/observability.md).
                with tracing.span("officeflow.dispatch", traceparent=event.payload.get("traceparent"),
                                  attributes={"officeflow.event_id": event.id, "airflow.dag_id": event.dag_id,
                                              "airflow.dag_run.run_id": event.dag_run_id,
                                              "officeflow.correlation_id": event.correlation_id,
                                              "officeflow.attempt": event.attempts}):
                    if employee_records.needs_record(event):  # an event without field values: read them first
                        employee_records.complete(session, event, record)
                        if event.dag_id is None:
                            event.status, event.error, event.next_attempt_at = EventStatus.IGNORED.value, None, None
                            log.info("Event %s is %s after its record was read: starts no workflow", event.id,
                                     event.event_type)
                            return event.status
                        conf = dict(event.payload.get("conf") or {})
                    earlier = workday_reconciliation.started_by_reconciliation(session, event)
                    if earlier is not None:  # a late Workday notification of what the reconciliation started
                        event.status, event.next_attempt_at = EventStatus.IGNORED.value, None
                        event.error = (f"already started by the Workday reconciliation (inbox event {earlier.id}, "
                                       f"run {earlier.dag_run_id})")
                        log.info("Event %s: %s", event.id, event.error)
                        return event.status
                    note = run_notes.start_note(conf, correlation_id=event.correlation_id,
                                                started_by=run_notes.started_by_event(conf.get("source"),
                                                                                      event.event_type,
                                                                                      event.provider_event_id))
                    trigger(event.dag_id, event.dag_run_id, conf,
                            triggered_by_name=f"officeflow-gateway:{event.endpoint_id}", note=note)
            except TriggerError as exc:
                event.error = str(exc)[:2000]
                if exc.permanent:
                    event.status = EventStatus.REJECTED.value
                    event.next_attempt_at = None
                elif event.attempts >= get_settings().dispatch_max_attempts:
                    event.status = EventStatus.DEAD.value
                    event.next_attempt_at = None
                    event.error = f"dead after {event.attempts} attempts: {event.error}"
                else:
                    # Counted from the failure, not the claim: a slow failure must not make the retry due at once.
                    delay = max(backoff_seconds(event.attempts), exc.retry_after or 0.0)
                    event.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
                log.warning("Event %s (correlationId=%s) -> %s: %s", event.id, event.correlation_id,
                            event.status, event.error)
                if event.status != EventStatus.PENDING.value:  # the same transaction as the status change
                    webhook_event(session, action="rejected" if event.status == EventStatus.REJECTED.value
                                  else "dead_lettered", event_id=event.id, endpoint_id=event.endpoint_id,
                                  provider_event_id=event.provider_event_id, event_type=event.event_type,
                                  status=event.status, dag_id=event.dag_id, dag_run_id=event.dag_run_id,
                                  organization_id=conf.get("organization_id"), correlation_id=event.correlation_id,
                                  attempts=event.attempts)
            else:
                event.status = EventStatus.TRIGGERED.value
                event.error = None
                event.next_attempt_at = None
                audit("workflow.triggered", actor=f"webhook:{event.endpoint_id}", resource_type="dag_run",
                      resource_id=event.dag_run_id, outcome="success", correlation_id=event.correlation_id,
                      session=session, organization_id=conf.get("organization_id"), dag_id=event.dag_id,
                      event_id=event.id)
        return event.status


def due_event_ids(limit: int = 100) -> list[str]:
    now = datetime.now(UTC)
    with session_scope() as session:
        return list(session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.status == EventStatus.PENDING.value,
                   or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now))
            .order_by(WebhookEvent.received_at)
            .limit(limit)
        ))


def run_once(trigger: Trigger = trigger_run, limit: int = 100, pause: Callable[[float], object] | None = None) -> int:
    """Dispatch every due event once; return how many were attempted.

    Creating a run costs Airflow ~30 ms of CPU in this process. With ``pause``, the dispatcher rests
    after each run in proportion to that cost (``OFFICEFLOW_DISPATCH_DUTY_CYCLE``), so a burst of
    deliveries is still answered quickly while its runs are created: the inbox holds them meanwhile.
    """
    duty = get_settings().dispatch_duty_cycle
    attempted = 0
    for event_id in due_event_ids(limit):
        started = time.perf_counter()
        if dispatch_one(event_id, trigger) is not None:
            attempted += 1
        if pause is not None and duty < 1:
            pause((time.perf_counter() - started) * (1 - duty) / duty)
    return attempted


class Dispatcher(BackgroundLoop):
    """The background loop; one per process (re-created after a fork)."""

    name = "officeflow-dispatcher"

    def __init__(self, trigger: Trigger = trigger_run, *, external: bool = False) -> None:
        super().__init__()
        self.trigger = trigger
        self.external = external

    def ensure_started(self) -> None:
        if not self.external and get_settings().dispatcher_mode == "external":
            return  # the api-server only accepts; a dispatcher process creates the runs
        super().ensure_started()

    def _loop(self) -> None:
        log.info("OfficeFlow dispatcher started (pid %s, %s)", os.getpid(),
                 "own process" if self.external else "embedded in this server process")
        # Its own process is woken by nobody and shares CPU with nothing: poll often, never pause.
        pause = None if self.external else self._stop.wait
        while not self._stop.is_set():
            poll = get_settings().dispatch_poll_seconds
            self._wake.wait(min(poll, 1.0) if self.external else poll)
            self._wake.clear()
            try:
                while run_once(self.trigger, pause=pause) and not self._stop.is_set():
                    pass
            except Exception:  # keep the loop alive through DB outages; events stay pending
                log.exception("Dispatcher pass failed; retrying on the next wake-up")
                self._stop.wait(1.0)


dispatcher = Dispatcher()


def main() -> None:
    """Run the dispatcher in the foreground until SIGTERM/SIGINT (``OFFICEFLOW_DISPATCHER_MODE=external``)."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import airflow  # noqa: F401  (configures Airflow's metadata DB session, which trigger_dag uses)

    worker = Dispatcher(external=True)
    done = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("Signal %s: stopping the dispatcher", signum)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.ensure_started()
    while not done.wait(1.0):
        if worker._thread is None or not worker._thread.is_alive():
            raise SystemExit("dispatcher thread ended unexpectedly")
    worker.stop()


if __name__ == "__main__":
    main()
