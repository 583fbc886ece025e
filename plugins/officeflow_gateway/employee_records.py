"""The employee record of an event that came without field values, read when the dispatcher starts its run.

BambooHR's ``Deleted`` entries and its event-based webhooks (``employee.created|updated|deleted``) name an employee
but carry none of their fields; the adapter marks such events ``lookup`` (adapters/bamboohr.py). The gateway stores
and accepts them like any other (a 2xx never waits on BambooHR). The dispatcher reads the record with :func:`read`
before it claims the event (no row lock, transaction or pooled connection is held while BambooHR answers), then
:func:`complete` applies it inside the claim, before the run is created:

1. the record is read through :class:`operators.hooks.bamboohr.BambooHRHook` (``OFFICEFLOW_BAMBOOHR_CONN_ID``) once,
   with a 5 s timeout and no in-call retry: a slow or failing BambooHR holds the dispatcher back 5 s at most per
   event, and the dispatcher's backoff (at least the ``Retry-After``) does the retrying. A second dispatcher that
   read the same record meanwhile finds the event claimed or completed and drops its copy (a read changes nothing);
2. an employee BambooHR no longer knows (404: a deleted employee) gets the fields of the latest earlier event of the
   same endpoint naming them (a field-based post or an earlier read);
3. the fields go into the event's document, an update is classified again with their values (``status``
   ``Inactive`` is a termination, a cleared termination date is not), and the endpoint's routes and mapping give the
   workflow and its conf; the dispatcher's trigger then validates the conf against the workflow's params.

Failures are :class:`~plugins.officeflow_gateway.triggering.TriggerError`, so the dispatcher's policy applies:
BambooHR throttled, down or misconfigured (401/403) -> retried with backoff (at least its ``Retry-After``), then
dead-lettered (replayable once the connection is fixed); an employee nobody knows or a record that does not map ->
``rejected``. A record read once is kept in the event's payload (``record``): a retried trigger does not read it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from include.officeflow import errors
from include.officeflow.mapping import MappingError, apply_mapping
from include.officeflow.settings import get_settings
from include.officeflow.store import WebhookEvent
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.adapters.bamboohr import classify
from plugins.officeflow_gateway.triggering import TriggerError

#: Values that mean "no value" in a BambooHR record (its empty date is "0000-00-00").
_EMPTY = (None, "", "0000-00-00")
#: Earlier events of an employee looked at for a deleted employee's fields.
_HISTORY = 50


@dataclass(frozen=True)
class Read:
    """What BambooHR answered for an event's employee: their fields, or the error."""

    employee_id: str
    fields: dict[str, Any] | None = None
    error: errors.ServiceError | None = None


def needs_record(event: WebhookEvent) -> bool:
    """Whether the event still waits for its employee record."""
    payload = event.payload or {}
    return bool((payload.get("document") or {}).get("lookup")) and "record" not in payload


def read(event: WebhookEvent) -> Read | None:
    """Read the record a ``lookup`` event needs from BambooHR (``None`` for an event that needs none, or names a
    system OfficeFlow cannot read: :func:`complete` refuses that one). Call it holding no claim or transaction."""
    if not needs_record(event):
        return None
    document = event.payload.get("document") or {}
    if document["lookup"].get("system") != "bamboohr":
        return None
    employee_id = str(document["employee_id"])
    try:
        return Read(employee_id, fields=_read(employee_id))
    except errors.ServiceError as exc:
        return Read(employee_id, error=exc)


def complete(session: Any, event: WebhookEvent, answer: Read | None) -> None:
    """Apply :func:`read`'s ``answer`` to a ``lookup`` event (read now if it was not, or names another employee): set
    its document, type, workflow and conf (``dag_id`` ``None``: its type starts no workflow). Raises
    :class:`TriggerError`."""
    document = dict(event.payload.get("document") or {})
    lookup = document["lookup"]
    if lookup.get("system") != "bamboohr":
        raise TriggerError(f"no way to read a record from {lookup.get('system')!r}", reason="refused")
    endpoint = endpoints.cache.get(event.endpoint_id)
    if endpoint is None:
        raise TriggerError(f"endpoint {event.endpoint_id!r} no longer exists", reason="refused")
    employee_id = str(document["employee_id"])
    if answer is None or answer.employee_id != employee_id:
        answer = read(event)
        assert answer is not None  # a bamboohr lookup still waiting for its record
    source = "bamboohr"
    try:
        if answer.error is not None:
            raise answer.error
        fields = answer.fields or {}
    except errors.NotFound as exc:
        earlier = _earlier_fields(session, event, employee_id)
        if earlier is None:
            raise TriggerError(f"{exc}; no earlier event of endpoint {event.endpoint_id!r} names employee "
                               f"{employee_id} either", reason="refused") from None
        fields, source = earlier, "inbox"
    except errors.ServiceError as exc:
        raise TriggerError(f"could not read employee {employee_id} from BambooHR: {exc}",
                           retry_after=getattr(exc, "retry_after", None)) from None
    event_type = classify(lookup["action"], document.get("changedFields") or [], fields)
    document.update(fields=fields, action=event_type)
    conf: dict[str, Any] | None = None
    target = endpoint.target_for(event_type)
    if target is not None:
        try:
            conf = apply_mapping(endpoint.mapping, document)
        except MappingError as exc:
            raise TriggerError(f"the record does not map: {exc.field}: {exc.message}", reason="refused") from None
        previous = event.payload.get("conf") or {}
        conf.update({key: previous[key] for key in ("correlation_id", "source", "organization_id") if key in previous})
        conf["organization_id"] = endpoint.organization_id
    event.event_type, event.dag_id = event_type, target
    event.payload = {**event.payload, "document": document, "conf": conf,
                     "record": {"source": source, "read_at": datetime.now(UTC).isoformat()}}


def _read(employee_id: str) -> dict[str, Any]:
    from operators.hooks.bamboohr import BambooHRHook

    # Short and once, so a slow BambooHR holds the dispatcher (and the other events) back seconds, not minutes: the
    # dispatcher's backoff retries, never before a Retry-After.
    hook = BambooHRHook(get_settings().bamboohr_conn_id, timeout=5.0, max_attempts=1)
    record = hook.get_employee(employee_id)
    return {name: value for name, value in record.items() if name != "id" and value not in _EMPTY}


def _earlier_fields(session: Any, event: WebhookEvent, employee_id: str) -> dict[str, Any] | None:
    """The fields of the latest earlier event of the endpoint that names the employee with values."""
    escaped = employee_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    earlier = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.endpoint_id == event.endpoint_id, WebhookEvent.id != event.id,
               WebhookEvent.provider_event_id.like(f"%:{escaped}:%", escape="\\"))
        .order_by(WebhookEvent.received_at.desc())
        .limit(_HISTORY)
    )
    for other in earlier:
        document = (other.payload or {}).get("document") or {}
        fields = document.get("fields")
        if str(document.get("employee_id")) == employee_id and isinstance(fields, dict) and fields:
            return {name: value for name, value in fields.items() if value not in _EMPTY}
    return None
