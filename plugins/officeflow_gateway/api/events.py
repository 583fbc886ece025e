"""``/officeflow/api/v1/events``: the inbox's status, and replay for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.store import EventStatus, WebhookEvent, session_scope
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.auth import ReadEvents, ReplayEvents
from plugins.officeflow_gateway.dispatcher import dispatcher
from plugins.officeflow_gateway.errors import ApiError, correlation_id
from plugins.officeflow_gateway.mapping import MappingError, apply_mapping
from plugins.officeflow_gateway.triggering import run_id_for

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class EventOut(BaseModel):
    id: str
    endpoint_id: str
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
    def of(cls, row: WebhookEvent) -> EventOut:
        return cls.model_validate(row, from_attributes=True)


class EventDetail(EventOut):
    conf: dict[str, Any] | None
    document: dict[str, Any] | None


class EventList(BaseModel):
    events: list[EventOut]
    total_entries: int


@router.get("", response_model=EventList)
async def list_events(
    _: ReadEvents,
    endpoint: str | None = None,
    status: EventStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EventList:
    def work() -> EventList:
        query = select(WebhookEvent)
        if endpoint:
            query = query.where(WebhookEvent.endpoint_id == endpoint)
        if status:
            query = query.where(WebhookEvent.status == status.value)
        with session_scope() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(WebhookEvent.received_at.desc()).limit(limit).offset(offset))
            return EventList(events=[EventOut.of(r) for r in rows], total_entries=total)

    return await run_in_threadpool(work)


def _detail(row: WebhookEvent) -> EventDetail:
    return EventDetail(**EventOut.of(row).model_dump(), conf=(row.payload or {}).get("conf"),
                       document=(row.payload or {}).get("document"))


@router.get("/{event_id}", response_model=EventDetail)
async def get_event(event_id: str, _: ReadEvents) -> EventDetail:
    def work() -> EventDetail:
        with session_scope() as session:
            row = session.get(WebhookEvent, event_id)
            if row is None:
                raise ApiError(404, "not_found", f"event {event_id!r} not found")
            return _detail(row)

    return await run_in_threadpool(work)


@router.post("/{event_id}/replay", response_model=EventDetail, status_code=202)
async def replay_event(event_id: str, request: Request,
                       user: ReplayEvents) -> EventDetail:
    """Re-map a rejected, ignored or dead event with its endpoint's current settings and queue it.

    A triggered event is refused (409): it already has its one run.
    """
    cid = correlation_id(request)

    def work() -> EventDetail:
        with session_scope() as session:
            row = session.get(WebhookEvent, event_id, with_for_update=True)
            if row is None:
                raise ApiError(404, "not_found", f"event {event_id!r} not found")
            if row.status in (EventStatus.TRIGGERED.value, EventStatus.PENDING.value):
                raise ApiError(409, "conflict", f"event is {row.status}; only rejected, ignored or dead "
                               "events can be replayed")
            endpoint = endpoints.cache.get(row.endpoint_id)
            if endpoint is None:
                raise ApiError(409, "conflict", f"endpoint {row.endpoint_id!r} no longer exists")
            target = endpoint.target_for(row.event_type)
            if target is None:
                raise ApiError(409, "conflict", f"endpoint {endpoint.id!r} does not start a workflow for "
                               f"{row.event_type!r}; add it to the endpoint's event_types or routes first")
            document = (row.payload or {}).get("document") or {}
            try:
                conf = apply_mapping(endpoint.mapping, document)
                conf.setdefault("correlation_id", row.correlation_id)
                conf.setdefault("source", endpoint.adapter)
                conf["organization_id"] = endpoint.organization_id  # never taken from the payload
                from plugins.officeflow_gateway.webhooks import params_validator

                params_validator.validate(target, conf)
            except MappingError as exc:
                raise ApiError(422, "unmappable_event", f"{exc.field}: {exc.message}") from None
            row.payload = {"document": document, "conf": conf}
            row.status = EventStatus.PENDING.value
            row.dag_id = target
            row.dag_run_id = run_id_for(endpoint.id, row.provider_event_id)
            row.attempts, row.error, row.next_attempt_at = 0, None, None
            session.flush()
            detail = _detail(row)
        audit("webhook_event.replayed", actor=f"user:{user.get_name()}", resource_type="webhook_event",
              resource_id=event_id, outcome="success", correlation_id=cid)
        return detail

    detail = await run_in_threadpool(work)
    dispatcher.ensure_started()
    dispatcher.wake()
    return detail
