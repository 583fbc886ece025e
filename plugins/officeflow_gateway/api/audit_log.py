"""``/officeflow/api/v1/audit-log``: read the audit log (filter, page, export CSV). There is no route that
changes or deletes an entry: the log is append-only from the application."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from include.officeflow import audit
from plugins.officeflow_gateway.api import MAX_BIGINT
from plugins.officeflow_gateway.api.types import IsoDateTime
from plugins.officeflow_gateway.auth import Caller, ReadAudit

router = APIRouter(prefix="/api/v1/audit-log", tags=["audit log"])
COLUMNS = ("id", "at", "actor", "action", "resource_type", "resource_id", "outcome", "organization_id", "source_ip",
           "correlation_id", "details")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str | None
    outcome: str
    organization_id: str | None
    source_ip: str | None
    correlation_id: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before_id: int | None


def _query(caller: Caller, limit: int, **filters: Any) -> list[AuditEntry]:
    organizations = None if caller.organizations is None else set(caller.organizations)
    rows = audit.query(organizations=organizations, limit=limit, **filters)
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
async def list_entries(caller: ReadAudit, actor: str | None = None, action: str | None = None,
                       resource_type: str | None = None, outcome: str | None = None,
                       since: IsoDateTime | None = None, until: IsoDateTime | None = None,
                       limit: int = Query(100, ge=1, le=1000),
                       before_id: int | None = Query(None, ge=1, le=MAX_BIGINT)) -> AuditPage:
    entries = await run_in_threadpool(_query, caller, limit, actor=actor, action=action, resource_type=resource_type,
                                      outcome=outcome, since=since, until=until, before_id=before_id)
    return AuditPage(entries=entries, next_before_id=entries[-1].id if len(entries) == limit else None)


@router.get(".csv", summary="The filtered audit log as CSV (up to 50 000 entries)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def export_csv(caller: ReadAudit, actor: str | None = None, action: str | None = None,
                     resource_type: str | None = None, outcome: str | None = None,
                     since: IsoDateTime | None = None, until: IsoDateTime | None = None) -> Response:
    entries = await run_in_threadpool(_query, caller, 50_000, actor=actor, action=action, resource_type=resource_type,
                                      outcome=outcome, since=since, until=until)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for entry in entries:
        row = entry.model_dump()
        row["at"] = entry.at.isoformat()
        row["details"] = json.dumps(entry.details, sort_keys=True)
        writer.writerow(_safe(row[column]) for column in COLUMNS)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="officeflow-audit-log.csv"'})


def _safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
