"""``/officeflow/api/v1/calendar``: calendar subscriptions (Google watch channels, Graph subscriptions) and
the changes found in the meetings OfficeFlow booked (who declined, what moved or was cancelled).

Permission "OfficeFlow Workflows" (read: list; create: subscribe). Tenant isolation: a caller sees the
subscriptions and changes of its organizations only, and subscribes only in one it is a member of.
Secrets (channel tokens, clientState) are never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow import calendar_sync as sync
from include.officeflow.audit import audit
from include.officeflow.errors import ServiceError
from plugins.officeflow_gateway.auth import CreateWorkflows, ReadWorkflows
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])


class SubscriptionIn(BaseModel):
    provider: Literal["google", "microsoft"]
    calendar: str = Field(description="The organizer whose calendar is watched (an e-mail address).",
                          pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    organization_id: str = Field(default="default", max_length=64)


class SubscriptionOut(BaseModel):
    id: str
    organization_id: str
    provider: str
    calendar: str
    channel_id: str
    status: str
    expires_at: datetime | None
    created_at: datetime
    renewed_at: datetime | None


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]
    total_entries: int


class ChangeOut(BaseModel):
    id: str
    kind: str = Field(description="declined, moved or cancelled")
    attendee: str | None = Field(description="Who declined (declines only)")
    action: str = Field(description="What OfficeFlow did: notified (Slack), rebooked (moved to the next common free "
                                    "slot), rebook_failed (see error), none (nothing yet: see error)")
    error: str | None = Field(description="Why a rebooking or the Slack notice failed")
    detected_at: datetime
    details: dict[str, Any]
    meeting_id: str
    event_id: str
    title: str
    organizer: str
    organization_id: str
    dag_id: str
    run_id: str


class ChangeList(BaseModel):
    changes: list[ChangeOut]
    total_entries: int


def _out(row: Any) -> SubscriptionOut:
    return SubscriptionOut(id=row.id, organization_id=row.organization_id, provider=row.provider,
                           calendar=row.calendar, channel_id=row.channel_id, status=row.status,
                           expires_at=row.expires_at, created_at=row.created_at, renewed_at=row.renewed_at)


@router.get("/subscriptions", response_model=SubscriptionList)
async def list_subscriptions(caller: ReadWorkflows) -> SubscriptionList:
    rows = await run_in_threadpool(sync.subscriptions, organizations=caller.organizations)
    return SubscriptionList(subscriptions=[_out(r) for r in rows], total_entries=len(rows))


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut,
             responses={200: {"description": "A live subscription on this calendar exists: it is returned"},
                        409: {"description": "No public notification URL is configured"},
                        502: {"description": "The provider refused the subscription"}})
async def create_subscription(request: Request, body: SubscriptionIn, caller: CreateWorkflows) -> Any:
    from operators.calendar import ensure_subscription

    caller.check_organization(body.organization_id)
    if sync.notifications_url(body.provider) is None:
        raise ApiError(409, "not_configured", "set OFFICEFLOW_CALENDAR_NOTIFICATIONS_URL (or AIRFLOW__API__BASE_URL) "
                       "to the public URL of OfficeFlow first: the provider must reach it")
    calendar = body.calendar.lower()
    existing = await run_in_threadpool(sync.live_subscription, body.provider, calendar)
    if existing is not None:
        caller.visible(existing.organization_id, "calendar subscription", calendar)
        return JSONResponse(_out(existing).model_dump(mode="json"), status_code=200)
    try:
        subscription_id = await run_in_threadpool(ensure_subscription, body.provider, calendar,
                                                  organization_id=body.organization_id, created_by=caller.actor)
    except ServiceError as exc:
        raise ApiError(502, "provider_refused", f"{body.provider}: {exc}") from None
    row = await run_in_threadpool(sync.get_subscription, str(subscription_id))
    await run_in_threadpool(audit, "calendar.subscription.created", actor=caller.actor,
                            resource_type="calendar_subscription", resource_id=str(subscription_id), outcome="success",
                            correlation_id=correlation_id(request), organization_id=body.organization_id,
                            source_ip=caller.source_ip, provider=body.provider, calendar=calendar)
    return _out(row)


@router.get("/changes", response_model=ChangeList)
async def list_changes(caller: ReadWorkflows, limit: int = 100) -> ChangeList:
    """Declines, moves and cancellations of the meetings OfficeFlow booked, newest first."""
    rows = await run_in_threadpool(sync.meeting_changes, organizations=caller.organizations,
                                   limit=max(1, min(limit, 1000)))
    changes = [ChangeOut(id=c.id, kind=c.kind, attendee=c.attendee, action=c.action, error=c.error,
                         detected_at=c.detected_at, details=c.details, meeting_id=m.id, event_id=m.event_id,
                         title=m.title, organizer=m.organizer, organization_id=m.organization_id, dag_id=m.dag_id,
                         run_id=m.run_id) for c, m in rows]
    return ChangeList(changes=changes, total_entries=len(changes))
