"""``GET /officeflow/api/v1/dashboard?days=7|30|90``: the figures of the dashboard view (counts and durations
only), for the caller's organizations and readable workflows. Permission: can_read on ``OfficeFlow Dashboard``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from include.officeflow.dashboard import DEFAULT_PERIOD, PERIODS
from plugins.officeflow_gateway import dashboard
from plugins.officeflow_gateway.auth import ReadDashboard
from plugins.officeflow_gateway.errors import ApiError

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@router.get("", summary="Runs, lead time, webhook outcomes, approval waits and email rates per UTC day")
async def get_dashboard(caller: ReadDashboard, days: int = DEFAULT_PERIOD) -> dict[str, Any]:
    if days not in PERIODS:
        raise ApiError(422, "invalid_period", f"days must be one of {', '.join(map(str, PERIODS))}")
    return await run_in_threadpool(dashboard.build, caller, days)
