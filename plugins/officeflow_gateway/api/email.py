"""``/officeflow/api/v1/email``: delivery statistics and the suppression list.

Airflow JWT; the auth manager must allow the method on ``OfficeFlow Email``.

- ``GET /officeflow/api/v1/email/stats?from=&to=&template=&organization_id=``: per template and UTC day,
  computed in SQL;
- ``GET|POST /officeflow/api/v1/email/suppressions``, ``GET|DELETE …/suppressions/{address}``.

Tenant isolation: deliveries belong to an organization, and the statistics count the caller's organizations'
only. The suppression list is global (an address that bounces, bounces for every organization), so:

- reading: a caller limited to some organizations sees only the suppressed addresses those organizations have
  mailed (others are 404, their addresses being personal data);
- adding or removing one changes mail for every organization: only callers who see every organization may
  (403 ``forbidden_organization`` otherwise).

The data lives in :mod:`include.officeflow.email_tracking`; changes to the suppression list are audited.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow import email_tracking as tracking
from include.officeflow.audit import audit
from include.officeflow.auth.permissions import EMAIL
from plugins.officeflow_gateway.api import MAX_BIGINT
from plugins.officeflow_gateway.api.types import IsoDate
from plugins.officeflow_gateway.auth import Caller, CreateEmail, DeleteEmail, ReadEmail
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/email", tags=["email"])

RESOURCE_EMAIL = EMAIL
AddSuppression = CreateEmail
DeleteSuppression = DeleteEmail


def _global_change(caller: Caller) -> None:
    """The suppression list is shared by every organization: only a caller who sees them all changes it."""
    if caller.organizations is not None:
        raise ApiError(403, "forbidden_organization", "the suppression list applies to every organization; "
                       "only users who see every organization may change it")


class StatRow(BaseModel):
    template: str
    day: str
    total: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    suppressed: int
    failed: int
    sending: int


class Stats(BaseModel):
    start: date | None = Field(serialization_alias="from")
    end: date | None = Field(serialization_alias="to")
    template: str | None
    stats: list[StatRow]


class SuppressionOut(BaseModel):
    address: str
    reason: str
    source: str
    detail: str | None
    created_at: datetime


class SuppressionList(BaseModel):
    suppressions: list[SuppressionOut]
    total_entries: int


class SuppressionIn(BaseModel):
    address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    detail: str | None = Field(default=None, max_length=2000)


@router.get("/stats", response_model=Stats, response_model_by_alias=True)
async def email_stats(
    caller: ReadEmail,
    start: Annotated[IsoDate | None, Query(alias="from", description="first UTC day (YYYY-MM-DD)")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="last UTC day, inclusive")] = None,
    template: Annotated[str | None, Query(max_length=128)] = None,
    organization_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Stats:
    """Sent / delivered / bounced / complained / suppressed / failed per template and day, over the deliveries
    of the caller's organizations (``organization_id``: of that one only)."""
    if start and end and start > end:
        raise ApiError(422, "validation_error", "'from' must not be after 'to'")
    organizations = caller.organizations
    if organization_id:
        organizations = frozenset({organization_id} if caller.sees(organization_id) else set())
    rows = await run_in_threadpool(lambda: tracking.stats(None, start=start, end=end, template=template,
                                                          organizations=organizations))
    return Stats(start=start, end=end, template=template, stats=[StatRow(**r) for r in rows])


@router.get("/suppressions", response_model=SuppressionList)
async def list_suppressions(
    caller: ReadEmail,
    prefix: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> SuppressionList:
    """Suppressed addresses, newest first (for a caller limited to some organizations: those they mailed)."""
    rows, total = await run_in_threadpool(lambda: tracking.list_suppressions(
        None, limit=limit, offset=offset, prefix=prefix, organizations=caller.organizations))
    return SuppressionList(suppressions=[SuppressionOut(**r) for r in rows], total_entries=total)


@router.get("/suppressions/{address}", response_model=SuppressionOut)
async def get_suppression(address: str, caller: ReadEmail) -> SuppressionOut:
    row = await run_in_threadpool(lambda: tracking.get_suppression(None, address, organizations=caller.organizations))
    if row is None:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    return SuppressionOut(**row)


@router.post("/suppressions", response_model=SuppressionOut, status_code=201,
             responses={200: {"model": SuppressionOut, "description": "Already suppressed: the suppression"}})
async def add_suppression(payload: SuppressionIn, request: Request, caller: AddSuppression) -> Response:
    """Suppress an address for every organization (callers who see every organization only)."""
    cid = correlation_id(request)
    _global_change(caller)
    created = await run_in_threadpool(tracking.suppress, None, payload.address, reason="manual", source="admin",
                                      detail=payload.detail or f"added by {caller.name}")
    await run_in_threadpool(audit, "email_suppression.added", actor=caller.actor,
                            resource_type="email_suppression", resource_id=tracking.normalize_address(payload.address),
                            outcome="success" if created else "unchanged", correlation_id=cid,
                            source_ip=caller.source_ip)
    row = await get_suppression(payload.address, caller)
    return JSONResponse(row.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/suppressions/{address}", status_code=204)
async def delete_suppression(address: str, request: Request, caller: DeleteSuppression) -> Response:
    """Remove an address from the suppression list: every organization mails it again (callers who see every
    organization only)."""
    cid = correlation_id(request)
    _global_change(caller)
    removed = await run_in_threadpool(tracking.unsuppress, None, address)
    if not removed:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    await run_in_threadpool(audit, "email_suppression.removed", actor=caller.actor,
                            resource_type="email_suppression", resource_id=tracking.normalize_address(address),
                            outcome="success", correlation_id=cid, source_ip=caller.source_ip)
    return Response(status_code=204)
