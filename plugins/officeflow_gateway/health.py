"""Health endpoints: liveness, readiness (required dependencies) and the full report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from include.officeflow.settings import get_settings
from include.officeflow.store import get_engine
from include.officeflow.store.db import current_revision, head_revision

router = APIRouter(prefix="/health", tags=["health"])


class Check(BaseModel):
    name: str
    status: Literal["pass", "warn", "fail"]
    message: str
    required: bool


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    checks: list[Check]


def _store() -> str:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = current_revision(), head_revision()
    if current != head:
        raise RuntimeError(f"schema at {current}, expected {head}: run ./run.sh migrate")
    return f"reachable, schema at {current}"


def _airflow_db() -> str:
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(text("SELECT 1"))
    return "reachable"


def _bamboohr_key() -> str:
    if get_settings().bamboohr_webhook_key is None:
        raise RuntimeError("OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY not set: BambooHR deliveries answer 503")
    return "configured"


CHECKS: list[tuple[str, Callable[[], str], bool]] = [
    ("officeflow_store", _store, True),
    ("airflow_metadata_db", _airflow_db, True),
    ("bamboohr_webhook_key", _bamboohr_key, False),
]


def _run(required_only: bool) -> HealthReport:
    checks = []
    for name, probe, required in CHECKS:
        if required_only and not required:
            continue
        try:
            checks.append(Check(name=name, status="pass", message=probe(), required=required))
        except Exception as exc:  # a failed probe is a report line, never a crash
            status: Literal["warn", "fail"] = "fail" if required else "warn"
            checks.append(Check(name=name, status=status, message=str(exc)[:300], required=required))
    if any(c.status == "fail" for c in checks):
        overall: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
    elif any(c.status == "warn" for c in checks):
        overall = "degraded"
    else:
        overall = "healthy"
    return HealthReport(status=overall, timestamp=datetime.now(UTC), checks=checks)


def _respond(report: HealthReport) -> JSONResponse:
    code = 503 if report.status == "unhealthy" else 200
    return JSONResponse(status_code=code, content=report.model_dump(mode="json"))


@router.get("", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def health() -> JSONResponse:
    """Every check; 503 when a required dependency is down."""
    return _respond(await run_in_threadpool(_run, False))


@router.get("/ready", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def ready() -> JSONResponse:
    """Required dependencies only: the load balancer's readiness probe."""
    return _respond(await run_in_threadpool(_run, True))


@router.get("/live", response_model=HealthReport)
async def live() -> HealthReport:
    """The process answers: the liveness probe (no dependency checks)."""
    return HealthReport(status="healthy", timestamp=datetime.now(UTC), checks=[])
