"""``/officeflow/api/v1/events``: the inbox's status, and replay for admins.

Tenant isolation: an event has no organization column; its organization is its endpoint's (the built-in
BambooHR endpoint, ``/webhooks/bamboohr``, belongs to organization ``default``). The list shows the events of
the caller's organizations only; an event of another organization answers 404 (get and replay alike). An
event whose endpoint was deleted belongs to no organization any more: only callers who see every organization
see it.

Events hold personal data (names, addresses, dates of birth ...). The API never returns it: ``conf`` and
``document`` come back with every value replaced by ``"[redacted]"`` except identifiers, types and other
technical keys (see :func:`redact`); the structure and ``payload_keys`` (every path of the document) stay, so
an admin can see what a sender sent. Values that appear in ``error`` are redacted there too.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import case, func, literal, select
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.inbox import run_id_for
from include.officeflow.mapping import MappingError, apply_mapping
from include.officeflow.store import EventStatus, WebhookEndpoint, WebhookEvent, session_scope
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.api import MAX_BIGINT
from plugins.officeflow_gateway.api.types import IsoDateTime, JsonBool
from plugins.officeflow_gateway.auth import Caller, ReadEvents, ReplayEvents
from plugins.officeflow_gateway.dispatcher import dispatcher
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/events", tags=["events"])

BUILTIN_ORGANIZATION = "default"  # the organization of the built-in BambooHR endpoint (endpoints._builtin_bamboohr)
REDACTED = "[redacted]"

# The organization an event belongs to: its endpoint's (NULL when the endpoint was deleted).
EVENT_ORGANIZATION = case(
    (WebhookEvent.endpoint_id == endpoints.BUILTIN_BAMBOOHR, literal(BUILTIN_ORGANIZATION)),
    else_=WebhookEndpoint.organization_id,
)


# --- redaction ------------------------------------------------------------------------------------------

# Keys whose scalar values are technical, not personal: identifiers, types, statuses, event timestamps, and
# the names of changed fields. Everything else is redacted (an allow-list: a new personal field of a sender
# is hidden by default).
_SAFE_KEYS = frozenset({
    "id", "type", "eventtype", "event", "action", "source", "status", "timestamp", "occurredat", "createdat",
    "updatedat", "changedfields", "specversion", "datacontenttype", "correlationid", "organizationid",
})
_ID_KEY = re.compile(r"(^id$|[_\-.]id$|[a-z0-9]Id$|ID$)")
# Identifiers that are personal data themselves.
_PERSONAL_ID = re.compile(r"ssn|social|national|passport|tax|bank|iban|licen[cs]e|personal|insurance", re.I)


def _safe_key(key: str) -> bool:
    if _PERSONAL_ID.search(key):
        return False
    return bool(_ID_KEY.search(key)) or re.sub(r"[^a-z0-9]", "", key.lower()) in _SAFE_KEYS


def redact(value: Any, *, safe: bool = False, hidden: set[str] | None = None) -> Any:
    """``value`` with every scalar replaced by ``"[redacted]"`` unless it sits under a safe key (ids, types,
    keys); dict keys, list lengths and nulls stay. Redacted strings are collected in ``hidden``."""
    if isinstance(value, dict):
        return {key: redact(item, safe=_safe_key(str(key)), hidden=hidden) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, safe=safe, hidden=hidden) for item in value]
    if value is None or safe:
        return value
    if hidden is not None and isinstance(value, str):
        hidden.add(value)
    return REDACTED


def payload_keys(value: Any, prefix: str = "") -> list[str]:
    """Every leaf path of ``value`` (``employees[].fields.firstName``), sorted."""
    found: set[str] = set()

    def walk(item: Any, path: str) -> None:
        if isinstance(item, dict) and item:
            for key, child in item.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(item, list) and item:
            for child in item:
                walk(child, f"{path}[]")
        elif path:
            found.add(path)

    walk(value, prefix)
    return sorted(found)


def _redact_text(text: str | None, hidden: set[str]) -> str | None:
    """``text`` (an event's error) without the personal values it quotes (jsonschema messages quote the value:
    ``'ada@' is not a 'email'``)."""
    if not text:
        return text
    for value in sorted(hidden, key=len, reverse=True):
        for quoted in (repr(value), json.dumps(value)):
            text = text.replace(quoted, repr(REDACTED))
    return text


def _hidden_values(row: WebhookEvent) -> set[str]:
    hidden: set[str] = set()
    payload = row.payload or {}
    redact(payload.get("document"), hidden=hidden)
    redact(payload.get("conf"), hidden=hidden)
    return hidden


# --- models ------------------------------------------------------------------------------------------


class EventOut(BaseModel):
    id: str
    endpoint_id: str
    organization_id: str | None
    provider_event_id: str
    event_type: str
    status: str
    dag_id: str | None
    dag_run_id: str | None
    correlation_id: str
    error: str | None
    attempts: int
    next_attempt_at: datetime | None
    received_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEvent, organization_id: str | None, hidden: set[str] | None = None) -> EventOut:
        hidden = _hidden_values(row) if hidden is None else hidden
        return cls(id=row.id, endpoint_id=row.endpoint_id, organization_id=organization_id,
                   provider_event_id=row.provider_event_id, event_type=row.event_type, status=row.status,
                   dag_id=row.dag_id, dag_run_id=row.dag_run_id, correlation_id=row.correlation_id,
                   error=_redact_text(row.error, hidden), attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                   received_at=row.received_at, updated_at=row.updated_at)


class EventDetail(EventOut):
    conf: dict[str, Any] | None
    document: dict[str, Any] | None
    payload_keys: list[str]
    redacted: bool = True


class EventList(BaseModel):
    events: list[EventOut]
    total_entries: int


def _detail(row: WebhookEvent, organization_id: str | None) -> EventDetail:
    payload = row.payload or {}
    hidden: set[str] = set()
    conf, document = redact(payload.get("conf"), hidden=hidden), redact(payload.get("document"), hidden=hidden)
    return EventDetail(**EventOut.of(row, organization_id, hidden).model_dump(), conf=conf, document=document,
                       payload_keys=payload_keys(payload.get("document")))


def _organization_of(session: Any, endpoint_id: str) -> str | None:
    if endpoint_id == endpoints.BUILTIN_BAMBOOHR:
        return BUILTIN_ORGANIZATION
    return session.scalar(select(WebhookEndpoint.organization_id).where(WebhookEndpoint.id == endpoint_id))


def _visible_row(session: Any, event_id: str, caller: Caller, *, lock: bool = False) -> tuple[WebhookEvent, str | None]:
    """The event and its organization, or 404 when it does not exist or the caller may not see it."""
    row = session.get(WebhookEvent, event_id, with_for_update=True if lock else None)
    if row is None:
        raise ApiError(404, "not_found", f"event {event_id!r} not found")
    organization = _organization_of(session, row.endpoint_id)
    caller.visible(organization, "event", event_id)
    return row, organization


def _events_of(caller: Caller, query: Any, *, endpoint: str | None, status: str | None,
               organization_id: str | None) -> Any:
    """``query`` (selecting from ``webhook_events``) limited to the caller's organizations and the filters given."""
    query = (query.outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
             .where(caller.scope(EVENT_ORGANIZATION)))
    if endpoint:
        query = query.where(WebhookEvent.endpoint_id == endpoint)
    if status:
        query = query.where(WebhookEvent.status == status)
    if organization_id:
        query = query.where(EVENT_ORGANIZATION.in_([organization_id]))
    return query


# --- routes ------------------------------------------------------------------------------------------


@router.get("", response_model=EventList)
async def list_events(
    caller: ReadEvents,
    endpoint: str | None = None,
    status: EventStatus | None = None,
    organization_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> EventList:
    """Events of the caller's organizations, newest first (without conf and document)."""

    def work() -> EventList:
        query = _events_of(caller, select(WebhookEvent, EVENT_ORGANIZATION.label("organization_id")),
                           endpoint=endpoint, status=status.value if status else None, organization_id=organization_id)
        with session_scope() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id)
                                   .limit(limit).offset(offset)).all()
            return EventList(events=[EventOut.of(row, organization) for row, organization in rows],
                             total_entries=total)

    return await run_in_threadpool(work)


@router.get("/{event_id}", response_model=EventDetail)
async def get_event(event_id: str, caller: ReadEvents) -> EventDetail:
    """One event with its conf and document, personal values redacted."""

    def work() -> EventDetail:
        with session_scope() as session:
            return _detail(*_visible_row(session, event_id, caller))

    return await run_in_threadpool(work)


class ReplayFilter(BaseModel):
    """Which events ``POST /replay`` queues again: all of the filters hold (an omitted one: any)."""

    status: Literal["dead", "rejected", "ignored"] = Field(default="dead", description="dead-lettered by default")
    endpoint: str | None = Field(default=None, max_length=64, description="the endpoint's id")
    organization_id: str | None = Field(default=None, max_length=64)
    received_after: IsoDateTime | None = Field(default=None, description="received at or after (ISO 8601)")
    received_before: IsoDateTime | None = Field(default=None, description="received before (ISO 8601)")
    reason: str | None = Field(default=None, min_length=1, max_length=200,
                               description="text the event's error contains (case-insensitive)")
    limit: int = Field(default=100, ge=1, le=1000, description="at most this many events, oldest first")
    dry_run: JsonBool = Field(default=False, description="list what would be replayed, change nothing")

    @model_validator(mode="after")
    def _window(self) -> ReplayFilter:
        if self.received_after and self.received_before and self.received_after >= self.received_before:
            raise ValueError("received_after must be before received_before")
        return self


class NotReplayed(BaseModel):
    id: str
    code: str
    message: str


class BulkReplay(BaseModel):
    matched: int
    replayed: list[str]
    not_replayed: list[NotReplayed]
    dry_run: bool


def _requeue(session: Any, row: WebhookEvent) -> None:
    """Re-map ``row`` with its endpoint's current settings and make it ``pending`` again: its run id is the same
    as before (one run per event, whatever the number of replays). :class:`ApiError` 409/422 when it cannot be."""
    if row.status in (EventStatus.TRIGGERED.value, EventStatus.PENDING.value):
        raise ApiError(409, "conflict", f"event is {row.status}; only rejected, ignored or dead "
                       "events can be replayed")
    endpoint = endpoints.cache.get(row.endpoint_id)
    if endpoint is None:
        raise ApiError(409, "conflict", f"endpoint {row.endpoint_id!r} no longer exists")
    document = (row.payload or {}).get("document") or {}
    # An event posted without field values has its record read again by the dispatcher (employee_records.py):
    # validated then, and an update's workflow known then.
    lookup = document.get("lookup") or {}
    target = endpoint.target_for(row.event_type)
    if target is None and not lookup.get("reclassify"):
        raise ApiError(409, "conflict", f"endpoint {endpoint.id!r} does not start a workflow for "
                       f"{row.event_type!r}; add it to the endpoint's event_types or routes first")
    try:
        conf = apply_mapping(endpoint.mapping, document)
        conf.setdefault("correlation_id", row.correlation_id)
        conf.setdefault("source", endpoint.adapter)
        conf["organization_id"] = endpoint.organization_id  # never taken from the payload
        from plugins.officeflow_gateway.webhooks import params_validator

        if not lookup:
            params_validator.validate(target, conf)  # type: ignore[arg-type]
    except MappingError as exc:
        hidden = _hidden_values(row)
        raise ApiError(422, "unmappable_event",
                       _redact_text(f"{exc.field}: {exc.message}", hidden) or "unmappable") from None
    row.payload = {"document": document, "conf": conf}
    row.status = EventStatus.PENDING.value
    row.dag_id = target
    row.dag_run_id = run_id_for(endpoint.id, row.provider_event_id)
    row.attempts, row.error, row.next_attempt_at = 0, None, None
    session.flush()


@router.post("/replay", response_model=BulkReplay)
async def replay_events(selection: ReplayFilter, request: Request, caller: ReplayEvents) -> BulkReplay:
    """Queue again every event the filter selects (dead-lettered ones by default), each as ``POST /{id}/replay``
    would: re-mapped with its endpoint's current settings, the same run id as before. Events that cannot be
    replayed are listed with the reason and left as they are; the others are replayed, each in its own
    transaction, and audited one by one and as a whole."""
    cid = correlation_id(request)

    def work() -> BulkReplay:
        query = _events_of(caller, select(WebhookEvent.id, EVENT_ORGANIZATION.label("organization_id")),
                           endpoint=selection.endpoint, status=selection.status,
                           organization_id=selection.organization_id)
        if selection.received_after:
            query = query.where(WebhookEvent.received_at >= selection.received_after)
        if selection.received_before:
            query = query.where(WebhookEvent.received_at < selection.received_before)
        if selection.reason:
            query = query.where(func.lower(WebhookEvent.error).contains(selection.reason.lower(), autoescape=True))
        with session_scope() as session:
            found = session.execute(query.order_by(WebhookEvent.received_at, WebhookEvent.id)
                                    .limit(selection.limit)).all()
        replayed: list[str] = []
        refused: list[NotReplayed] = []
        for event_id, organization in found:
            try:
                with session_scope() as session:
                    row = session.get(WebhookEvent, event_id, with_for_update=True)
                    if row is None or row.status != selection.status:  # changed since it was selected
                        raise ApiError(409, "conflict", "the event changed while the replay ran; not replayed")
                    _requeue(session, row)
                    if selection.dry_run:
                        session.rollback()
            except ApiError as exc:
                refused.append(NotReplayed(id=event_id, code=exc.code, message=exc.message))
                continue
            replayed.append(event_id)
            if not selection.dry_run:
                audit("webhook_event.replayed", actor=caller.actor, resource_type="webhook_event",
                      resource_id=event_id, outcome="success", correlation_id=cid, organization_id=organization,
                      source_ip=caller.source_ip, bulk=True)
        if not selection.dry_run:
            audit("webhook_event.bulk_replayed", actor=caller.actor, resource_type="webhook_event",
                  outcome="success", correlation_id=cid, source_ip=caller.source_ip,
                  filter=selection.model_dump(mode="json", exclude={"dry_run"}, exclude_none=True),
                  matched=len(found), replayed=len(replayed), not_replayed=len(refused))
        return BulkReplay(matched=len(found), replayed=replayed, not_replayed=refused, dry_run=selection.dry_run)

    result = await run_in_threadpool(work)
    if result.replayed and not result.dry_run:
        dispatcher.ensure_started()
        dispatcher.wake()
    return result


@router.post("/{event_id}/replay", response_model=EventDetail, status_code=202)
async def replay_event(event_id: str, request: Request, caller: ReplayEvents) -> EventDetail:
    """Re-map a rejected, ignored or dead event with its endpoint's current settings and queue it.

    A triggered event is refused (409): it already has its one run.
    """
    cid = correlation_id(request)

    def work() -> EventDetail:
        with session_scope() as session:
            row, organization = _visible_row(session, event_id, caller, lock=True)
            _requeue(session, row)
            detail = _detail(row, organization)
        audit("webhook_event.replayed", actor=caller.actor, resource_type="webhook_event", resource_id=event_id,
              outcome="success", correlation_id=cid, organization_id=organization, source_ip=caller.source_ip)
        return detail

    detail = await run_in_threadpool(work)
    dispatcher.ensure_started()
    dispatcher.wake()
    return detail
