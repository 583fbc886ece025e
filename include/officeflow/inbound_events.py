"""HR events in from Kafka: the watcher's apply function and the recording of events in the inbox.

The path (docs/events.md, "Events in"):

1. the triggerer's ``AssetWatcher`` (the Kafka provider's ``AwaitMessageTrigger``) polls the HR topic
   and calls :func:`apply_function` on every message. A good message comes back as a dict (the asset event's
   ``payload``); a malformed or filtered one is logged, recorded in the inbox as ``rejected`` / ``ignored`` (the
   skip counter, :func:`skipped`) and answered ``None``, so the trigger commits it and keeps polling. Nothing
   raises out of it: a bad message never ends the watcher;
2. the ``hr_events_from_kafka`` DAG, scheduled on the asset, calls :func:`record_asset_events` with the asset's
   events from its run's first triggering one on (the triggering ones and any that came while Airflow created it):
   the same checks again (an asset event may also come from the REST API), the webhook gateway's mapping, and the
   gateway's inbox (``include/officeflow/inbox.py``), unique per (``kafka:<topic>``, CloudEvent ``id``). A
   redelivered message finds its stored event and starts nothing;
3. the DAG starts the workflow of each new event with the run id derived from it (``TriggerDagRunOperator``;
   Airflow validates the conf against the workflow's params), then :func:`mark_triggered` /
   :func:`mark_refused` set the inbox status as the gateway's dispatcher does.

A message is a CloudEvents 1.0 JSON object (structured mode, as OfficeFlow's own events): ``specversion`` ``1.0``,
``id`` (the dedupe key), ``source``, ``type`` (``employee.created`` ...: ``include.officeflow.mapping.hr_routes``),
``data`` (the HR document, ``{"employee_id", "fields": {...}}``: ``mapping.HR_DOCUMENT_MAPPING``), optional ``time``
and ``correlationid``.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from include.officeflow.settings import get_settings

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255  # webhook_events.provider_event_id
MAX_TYPE_LENGTH = 128  # webhook_events.event_type
MAX_CORRELATION_ID_LENGTH = 64  # webhook_events.correlation_id
SOURCE = "kafka"  # the runs' conf "source" and the run note's "started by"


class MessageError(Exception):
    """The message is not an HR event OfficeFlow can take (why, in words an operator can act on)."""


@dataclass(frozen=True)
class HrEvent:
    """A validated HR event message."""

    id: str
    type: str
    source: str
    data: dict[str, Any]
    time: str | None = None
    correlation_id: str | None = None

    def as_payload(self, **where: Any) -> dict[str, Any]:
        """The asset event's payload (JSON): the CloudEvent's attributes and where it was read (``kafka``)."""
        payload: dict[str, Any] = {"specversion": "1.0", "id": self.id, "type": self.type, "source": self.source,
                                   "data": self.data}
        if self.time is not None:
            payload["time"] = self.time
        if self.correlation_id is not None:
            payload["correlationid"] = self.correlation_id
        if where:
            payload["kafka"] = where
        return payload


ASSET_ENDPOINT = "asset:officeflow_hr_events"  # no topic configured: asset events posted through the REST API


def endpoint_id(topic: str | None = None) -> str:
    """The inbox's endpoint id of the HR events: ``kafka:<topic>``, or :data:`ASSET_ENDPOINT` when no topic is
    configured (the asset's events then come only from the REST API)."""
    topic = topic or get_settings().hr_events_topic
    return f"kafka:{topic}" if topic else ASSET_ENDPOINT


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _text(document: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MessageError(f"'{name}' must be a non-empty string")
    if len(value) > limit:
        raise MessageError(f"'{name}' is longer than {limit} characters")
    return value.strip()


def parse_document(document: Any) -> HrEvent:
    """Check a decoded message (or an asset event's payload); :class:`MessageError` says what is wrong."""
    if not isinstance(document, dict):
        raise MessageError("the message must be a JSON object")
    if document.get("specversion") != "1.0":
        raise MessageError("'specversion' must be \"1.0\" (a CloudEvents 1.0 JSON event)")
    event_id = _text(document, "id", MAX_ID_LENGTH)
    event_type = _text(document, "type", MAX_TYPE_LENGTH)
    source = _text(document, "source", 2048)
    time = _text(document, "time", 64, required=False)
    correlation_id = _text(document, "correlationid", MAX_CORRELATION_ID_LENGTH, required=False)
    data = document.get("data")
    if not isinstance(data, dict) or not data:
        raise MessageError("'data' must be a non-empty JSON object (the HR document)")
    try:
        encoded = json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        raise MessageError("the message holds values that are not valid JSON text") from None
    if b"\x00" in encoded or b"\\u0000" in encoded:
        raise MessageError("the message holds NUL characters")
    assert event_id is not None and event_type is not None and source is not None  # required ones
    return HrEvent(id=event_id, type=event_type, source=source, data=data, time=time, correlation_id=correlation_id)


def parse_message(value: bytes | None) -> HrEvent:
    """Decode and check a Kafka message value (strict JSON, at most ``OFFICEFLOW_WEBHOOK_MAX_BODY_BYTES``)."""
    if value is None:
        raise MessageError("the message has no value (a tombstone)")
    limit = get_settings().webhook_max_body_bytes
    if len(value) > limit:
        raise MessageError(f"the message is larger than {limit} bytes")
    try:
        document = json.loads(value, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise MessageError(f"the message is not valid JSON: {str(exc)[:200]}") from None
    return parse_document(document)


def _preview(value: bytes | None) -> str:
    """The start of a refused message as storable text (no NUL), for the operator reading the inbox."""
    if value is None:
        return ""
    return value[:500].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _record_skip(*, topic: str, provider_event_id: str, event_type: str, document: dict[str, Any], ignored: bool,
                 reason: str, correlation_id: str | None) -> None:
    from include.officeflow.inbox import store
    from include.officeflow.store import EventStatus

    store(endpoint_id=endpoint_id(topic), provider_event_id=provider_event_id, event_type=event_type,
          document=document, conf=None, status=EventStatus.IGNORED if ignored else EventStatus.REJECTED,
          dag_id=None, dag_run_id=None, correlation_id=correlation_id or str(uuid.uuid4()), error=reason[:2000],
          organization_id=get_settings().hr_events_organization_id)


def _skip(message: Any, value: bytes | None, reason: str, event: HrEvent | None = None) -> None:
    """Log and count a message the watcher does not pass on. A malformed message is counted by its position
    (``@<partition>:<offset>``), so a redelivery counts once and a later good event with the same id still runs."""
    where = {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()}
    log.warning("HR event skipped (topic %s partition %s offset %s%s): %s", where["topic"], where["partition"],
                where["offset"], f", id {event.id!r}" if event else "", reason)
    try:
        if event is not None:  # a good event of a type that starts no workflow: stored as ignored, as webhooks do
            _record_skip(topic=where["topic"], provider_event_id=event.id, event_type=event.type, ignored=True,
                         document=event.as_payload(**where), reason=reason, correlation_id=event.correlation_id)
        else:
            _record_skip(topic=where["topic"], provider_event_id=f"@{where['partition']}:{where['offset']}",
                         event_type="malformed", ignored=False, reason=reason, correlation_id=None,
                         document={"kafka": where, "preview": _preview(value)})
    except Exception:  # the store down must not end the watcher either; the log line above stays
        log.exception("Could not record the skipped HR event (topic %s offset %s)", where["topic"], where["offset"])


def apply_function(message: Any) -> dict[str, Any] | None:
    """The ``AssetWatcher``'s apply function (``include.officeflow.inbound_events.apply_function``).

    ``message`` is a ``confluent_kafka.Message``. Returns the asset event's payload for a good HR event whose type
    starts a workflow; ``None`` (the trigger commits the message and polls on) for anything else, after logging and
    counting it. Never raises: an exception would end the trigger and with it the watcher.
    """
    from include.officeflow.mapping import hr_routes

    value: bytes | None = None
    try:
        value = message.value()
        event = parse_message(value)
    except MessageError as exc:
        _skip(message, value, str(exc))
        return None
    except Exception as exc:  # anything unexpected is this message's problem, not the watcher's
        _skip(message, value, f"could not be read: {type(exc).__name__}: {exc}")
        return None
    try:
        if event.type not in hr_routes():
            _skip(message, value, f"type {event.type!r} starts no workflow", event)
            return None
        key = message.key()
        return event.as_payload(topic=message.topic(), partition=message.partition(), offset=message.offset(),
                                key=key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key)
    except Exception as exc:
        _skip(message, value, f"could not be routed: {type(exc).__name__}: {exc}")
        return None


def skipped(topic: str | None = None) -> dict[str, int]:
    """How many messages of the HR topic were skipped: ``{"rejected": n, "ignored": n}`` (the inbox's counts for
    ``kafka:<topic>``; rejected includes events whose data did not map and workflows that refused their conf)."""
    from sqlalchemy import func, select

    from include.officeflow.store import EventStatus, WebhookEvent, session_scope

    wanted = (EventStatus.REJECTED.value, EventStatus.IGNORED.value)
    with session_scope() as session:
        rows = session.execute(
            select(WebhookEvent.status, func.count())
            .where(WebhookEvent.endpoint_id == endpoint_id(topic), WebhookEvent.status.in_(wanted))
            .group_by(WebhookEvent.status)
        ).all()
    counts = {status: 0 for status in wanted}
    counts.update({status: int(count) for status, count in rows})
    return counts


# --- the DAG's side --------------------------------------------------------------------------------------------


def record_asset_events(events: Any, *, store_url: str | None = None) -> list[dict[str, Any]]:
    """Record asset events (Airflow's ``AssetEventResult``: ``id``, ``extra``) in the inbox, in order; return the
    runs to start, one per new routed event. An event read twice (by two runs) is stored and started once."""
    runs = []
    for event in events:
        run = record((event.extra or {}).get("payload"), asset_event_id=event.id, store_url=store_url)
        if run is not None:
            runs.append(run)
    return runs


def record(payload: Any, *, topic: str | None = None, store_url: str | None = None,
           asset_event_id: int | None = None) -> dict[str, Any] | None:
    """Record one asset event's payload in the inbox; return the run to start (``trigger_dag_id``,
    ``trigger_run_id``, ``conf``, ``note``) for a new routed event, ``None`` for a duplicate, an ignored type or a
    refused event (logged, stored ``rejected``/``ignored`` as the gateway stores them). A malformed payload is
    kept once under where Kafka had it (``@partition:offset``), else under its asset event's id."""
    from include.officeflow.inbox import store
    from include.officeflow.store import EventStatus

    settings = get_settings()
    endpoint = endpoint_id(topic)
    organization_id = settings.hr_events_organization_id
    try:
        event = parse_document(payload)
    except MessageError as exc:
        log.warning("HR asset event refused: %s", exc)
        where = payload.get("kafka") if isinstance(payload, dict) else None
        key = (f"@{where.get('partition')}:{where.get('offset')}" if isinstance(where, dict)
               else f"asset-event:{asset_event_id if asset_event_id is not None else uuid.uuid4()}")
        store(endpoint_id=endpoint, provider_event_id=key, event_type="malformed",
              document={"preview": json.dumps(payload, default=str)[:500].replace("\x00", "\ufffd")}, conf=None,
              status=EventStatus.REJECTED, dag_id=None, dag_run_id=None, correlation_id=str(uuid.uuid4()),
              error=str(exc), organization_id=organization_id, store_url=store_url)
        return None
    return record_event(event, endpoint=endpoint, organization_id=organization_id, source=SOURCE, store_url=store_url)


def record_event(event: HrEvent, *, endpoint: str, organization_id: str, source: str,
                 store_url: str | None = None) -> dict[str, Any] | None:
    """Store a checked HR event in the inbox under ``endpoint`` (routed by ``hr_routes``, mapped with
    ``HR_DOCUMENT_MAPPING``, the conf's ``source`` and ``organization_id`` given); return the run to start for a new
    routed event, ``None`` for a duplicate, an ignored type or an event that does not map. The Kafka topic's events
    and the Workday reconciliation's (include/officeflow/workday_reconciliation.py) are recorded here."""
    from include.officeflow import run_notes
    from include.officeflow.inbox import run_id_for, store
    from include.officeflow.mapping import HR_DOCUMENT_MAPPING, MappingError, apply_mapping, hr_routes
    from include.officeflow.store import EventStatus

    cid = event.correlation_id or str(uuid.uuid4())
    conf: dict[str, Any] | None = None
    error = dag_id = run_id = None
    target = hr_routes().get(event.type)
    if target is None:
        status, error = EventStatus.IGNORED, f"type {event.type!r} starts no workflow"
    else:
        try:
            conf = apply_mapping(HR_DOCUMENT_MAPPING, event.data)
        except MappingError as exc:
            status, error = EventStatus.REJECTED, f"{exc.field}: {exc.message}"
        else:
            conf.setdefault("correlation_id", cid)
            conf.setdefault("source", source)
            conf["organization_id"] = organization_id  # the tenant is configured, never the message's
            status, dag_id, run_id = EventStatus.PENDING, target, run_id_for(endpoint, event.id)
    outcome = store(endpoint_id=endpoint, provider_event_id=event.id, event_type=event.type,
                    document=event.as_payload(), conf=conf, status=status, dag_id=dag_id, dag_run_id=run_id,
                    correlation_id=cid, error=error, organization_id=organization_id, store_url=store_url)
    if outcome.duplicate:
        log.info("HR event %r is a duplicate of inbox event %s (%s): nothing to start", event.id, outcome.event_id,
                 outcome.status)
        return None
    if status is not EventStatus.PENDING:
        log.warning("HR event %r stored as %s: %s", event.id, status.value, error)
        return None
    log.info("HR event %r (%s) -> %s run %s (inbox event %s)", event.id, event.type, dag_id, run_id, outcome.event_id)
    note = run_notes.start_note(conf, correlation_id=cid,
                                started_by=run_notes.started_by_event(source, event.type, event.id))
    return {"trigger_dag_id": dag_id, "trigger_run_id": run_id, "conf": conf, "note": note}


def refusal(exc: BaseException | None) -> str | None:
    """Why Airflow refused to create a run, when ``exc`` (a ``TriggerDagRunOperator``'s failure) is a refusal: the
    execution API answered 400 (the conf does not match the workflow's params, or the run type is not allowed).
    ``None`` for anything a retry may cure."""
    error = getattr(exc, "error", None)  # airflow.sdk.exceptions.AirflowRuntimeError carries the ErrorResponse
    detail = getattr(error, "detail", None)
    if not isinstance(detail, dict) or detail.get("status_code") != 400:
        return None
    body = detail.get("detail")
    message = body.get("detail") if isinstance(body, dict) else None
    if isinstance(message, dict):
        message = message.get("message") or message
    return f"the workflow refused the run: {message or detail.get('message')}"


def _pending(session: Any, run_id: str) -> Any:
    from sqlalchemy import select

    from include.officeflow.store import EventStatus, WebhookEvent

    return session.scalars(
        select(WebhookEvent).where(WebhookEvent.dag_run_id == run_id, WebhookEvent.status == EventStatus.PENDING.value)
        .with_for_update(skip_locked=True)
    ).one_or_none()


def mark_triggered(run_id: str, *, store_url: str | None = None) -> bool:
    """The run of a pending inbox event exists: ``triggered``, audited as the dispatcher does. False when the event
    is no longer pending (the gateway's dispatcher got there first)."""
    from include.officeflow.audit import audit
    from include.officeflow.store import EventStatus, session_scope

    with session_scope(store_url) as session:
        event = _pending(session, run_id)
        if event is None:
            return False
        event.status, event.error, event.next_attempt_at = EventStatus.TRIGGERED.value, None, None
        event.attempts += 1
        conf = event.payload.get("conf") or {}
        audit("workflow.triggered", actor=event.endpoint_id, resource_type="dag_run",
              resource_id=event.dag_run_id, outcome="success", correlation_id=event.correlation_id,
              session=session, organization_id=conf.get("organization_id"), dag_id=event.dag_id, event_id=event.id)
        return True


def mark_refused(run_id: str, error: str, *, store_url: str | None = None) -> bool:
    """The workflow refused the conf of a pending inbox event: ``rejected`` with the reason, and its
    ``com.officeflow.webhook.rejected`` domain event in the same transaction. False when no longer pending."""
    from include.officeflow.inbox import webhook_event
    from include.officeflow.store import EventStatus, session_scope

    with session_scope(store_url) as session:
        event = _pending(session, run_id)
        if event is None:
            return False
        event.status, event.error, event.next_attempt_at = EventStatus.REJECTED.value, error[:2000], None
        event.attempts += 1
        conf = event.payload.get("conf") or {}
        webhook_event(session, action="rejected", event_id=event.id, endpoint_id=event.endpoint_id,
                      provider_event_id=event.provider_event_id, event_type=event.event_type, status=event.status,
                      dag_id=event.dag_id, dag_run_id=event.dag_run_id, organization_id=conf.get("organization_id"),
                      correlation_id=event.correlation_id, attempts=event.attempts)
        return True
