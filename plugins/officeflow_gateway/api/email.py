"""``/officeflow/api/v1/email``: delivery statistics and the suppression list.

Airflow JWT; the auth manager must allow the method on the ``OfficeFlow Email`` view and on
connections, as for the other OfficeFlow APIs.

- ``GET /officeflow/api/v1/email/stats?from=&to=&template=``: per template and UTC day, computed in SQL;
- ``GET|POST /officeflow/api/v1/email/suppressions``, ``GET|DELETE …/suppressions/{address}``.

The data lives in :mod:`include.officeflow.email_tracking`; changes to the suppression list are audited.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow import email_tracking as tracking
from include.officeflow.audit import audit
from plugins.officeflow_gateway.auth import authorized
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/email", tags=["email"])

RESOURCE_EMAIL = "OfficeFlow Email"
ReadEmail = Annotated[Any, Depends(authorized("GET", RESOURCE_EMAIL))]
AddSuppression = Annotated[Any, Depends(authorized("POST", RESOURCE_EMAIL))]
DeleteSuppression = Annotated[Any, Depends(authorized("DELETE", RESOURCE_EMAIL))]


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
    _: ReadEmail,
    start: Annotated[date | None, Query(alias="from", description="first UTC day (YYYY-MM-DD)")] = None,
    end: Annotated[date | None, Query(alias="to", description="last UTC day, inclusive")] = None,
    template: Annotated[str | None, Query(max_length=128)] = None,
) -> Stats:
    """Sent / delivered / bounced / complained / suppressed / failed per template and day."""
    if start and end and start > end:
        raise ApiError(422, "validation_error", "'from' must not be after 'to'")
    rows = await run_in_threadpool(tracking.stats, None, start=start, end=end, template=template)
    return Stats(start=start, end=end, template=template, stats=[StatRow(**r) for r in rows])


@router.get("/suppressions", response_model=SuppressionList)
async def list_suppressions(
    _: ReadEmail,
    prefix: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SuppressionList:
    rows, total = await run_in_threadpool(tracking.list_suppressions, None, limit=limit, offset=offset,
                                          prefix=prefix)
    return SuppressionList(suppressions=[SuppressionOut(**r) for r in rows], total_entries=total)


@router.get("/suppressions/{address}", response_model=SuppressionOut)
async def get_suppression(address: str, _: ReadEmail) -> SuppressionOut:
    row = await run_in_threadpool(tracking.get_suppression, None, address)
    if row is None:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    return SuppressionOut(**row)


@router.post("/suppressions", response_model=SuppressionOut, status_code=201)
async def add_suppression(payload: SuppressionIn, request: Request, user: AddSuppression) -> Response:
    cid = correlation_id(request)
    created = await run_in_threadpool(tracking.suppress, None, payload.address, reason="manual", source="admin",
                                      detail=payload.detail or f"added by {user.get_name()}")
    await run_in_threadpool(audit, "email_suppression.added", actor=f"user:{user.get_name()}",
                            resource_type="email_suppression", resource_id=tracking.normalize_address(payload.address),
                            outcome="success" if created else "unchanged", correlation_id=cid)
    row = await get_suppression(payload.address, user)
    return JSONResponse(row.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/suppressions/{address}", status_code=204)
async def delete_suppression(address: str, request: Request, user: DeleteSuppression) -> Response:
    """Remove an address from the suppression list (the operator mails it again)."""
    cid = correlation_id(request)
    removed = await run_in_threadpool(tracking.unsuppress, None, address)
    if not removed:
        raise ApiError(404, "not_found", f"{address!r} is not suppressed")
    await run_in_threadpool(audit, "email_suppression.removed", actor=f"user:{user.get_name()}",
                            resource_type="email_suppression", resource_id=tracking.normalize_address(address),
                            outcome="success", correlation_id=cid)
    return Response(status_code=204)
