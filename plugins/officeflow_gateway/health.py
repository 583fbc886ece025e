"""Health endpoints: liveness, readiness (required dependencies) and the full report.

``/health`` checks every dependency this deployment has configured: the OfficeFlow store and Airflow's
metadata DB (required: readiness fails without them), and, each only when configured, Redis
(``OFFICEFLOW_REDIS_URL``), Kafka (the events relay's connection), S3 (an ``s3://`` documents URL) and SMTP
(the ``smtp_default`` connection). Optional ones failing make the report ``degraded`` (200), not down.

The checks run side by side in worker threads, each bounded by ``OFFICEFLOW_HEALTH_TIMEOUT_SECONDS``, the
required ones first: a dependency that accepts connections and never answers is reported as timed out, and
the probe answers within twice that time whatever hangs. Each check also sets its own client timeouts, so
its thread ends too.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from include.officeflow.redaction import redact_text
from include.officeflow.settings import get_settings
from include.officeflow.store import get_engine
from include.officeflow.store.db import current_revision, head_revision

Probe = tuple[str, Callable[[], str], bool]  # name, check, required


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


SMTP_CONN_ID = "smtp_default"


class NotConfigured(Exception):
    """The dependency is not part of this deployment: its check is left out of the report."""


def _timeout() -> float:
    return get_settings().health_timeout_seconds


def _connection(conn_id: str) -> Any:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise NotConfigured(conn_id) from None


def _redis() -> str:
    url = get_settings().redis_url
    if not url:
        raise NotConfigured("OFFICEFLOW_REDIS_URL")
    import redis

    client = redis.Redis.from_url(url, socket_timeout=_timeout(), socket_connect_timeout=_timeout())
    try:
        client.ping()
    finally:
        client.close()
    return "answers PING"


def _kafka() -> str:
    conn = _connection(get_settings().events_kafka_conn_id)
    from confluent_kafka.admin import AdminClient

    config = {key: value for key, value in (conn.extra_dejson or {}).items() if "." in key}
    if "bootstrap.servers" not in config:
        raise RuntimeError(f"connection {conn.conn_id!r} has no bootstrap.servers")
    timeout_ms = int(_timeout() * 1000)
    # The answer (or its absence) is the report; librdkafka's own complaints on stderr would repeat it.
    config.update({"log_level": 0, "socket.timeout.ms": max(timeout_ms, 10),
                   "socket.connection.setup.timeout.ms": max(timeout_ms, 1000)})
    admin = AdminClient(config)
    try:
        brokers, error = len(admin.list_topics(timeout=_timeout()).brokers), ""
    except Exception as exc:
        brokers, error = 0, f"{type(exc).__name__}: {exc}"
    del admin  # the client's threads stop now, not when the error's traceback is collected
    if error:
        raise RuntimeError(error)
    return f"{brokers} broker(s) answer"


def _s3() -> str:
    settings = get_settings()
    if not settings.documents_url.startswith("s3://"):
        raise NotConfigured("OFFICEFLOW_DOCUMENTS_URL")
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    bucket = urlparse(settings.documents_url).netloc
    hook = S3Hook(aws_conn_id=settings.documents_aws_conn_id)
    config = hook.config.merge(Config(connect_timeout=_timeout(), read_timeout=_timeout(),
                                      retries={"max_attempts": 1, "mode": "standard"}))
    hook.get_client_type(config=config).head_bucket(Bucket=bucket)
    return f"bucket {bucket} reachable"


def _smtp() -> str:
    conn = _connection(SMTP_CONN_ID)
    extra = conn.extra_dejson or {}
    use_ssl = not extra.get("disable_ssl", False)  # the smtp provider's meaning: SSL unless disabled
    port = conn.port or (465 if use_ssl else 25)
    smtp_class = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
    with smtp_class(conn.host or "localhost", port, timeout=_timeout()) as client:
        code, _ = client.noop()
    if code != 250:
        raise RuntimeError(f"NOOP answered {code}")
    return f"{conn.host}:{port} answers"


CHECKS: list[Probe] = [
    ("officeflow_store", _store, True),
    ("airflow_metadata_db", _airflow_db, True),
    ("bamboohr_webhook_key", _bamboohr_key, False),
    ("redis", _redis, False),
    ("kafka", _kafka, False),
    ("s3_documents", _s3, False),
    ("smtp", _smtp, False),
]
# Shared by every probe; a check stuck past its timeout holds a thread until its own client timeout ends it.
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="officeflow-health")


def edge_checks() -> list[Probe]:
    """What the standalone edge gateway depends on: the store, Airflow's metadata DB (the workflows' params every
    event is validated against, and the runs an embedded dispatcher creates), the sender's key and Redis (the
    rate limits)."""
    names = {"officeflow_store", "airflow_metadata_db", "bamboohr_webhook_key", "redis"}
    return [check for check in CHECKS if check[0] in names]


def _run(checks: list[Probe], required_only: bool) -> HealthReport:
    required = [check for check in checks if check[2]]
    optional = [] if required_only else [check for check in checks if not check[2]]
    # The required checks run first, on their own: an optional one's client set-up (boto3 builds its S3 client
    # from JSON models, librdkafka starts threads) must not slow the store's check past the timeout and turn a
    # hung optional dependency into a false "unhealthy". The probe answers within twice the timeout.
    results = _checked(required) + _checked(optional)
    if any(c.status == "fail" for c in results):
        overall: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
    elif any(c.status == "warn" for c in results):
        overall = "degraded"
    else:
        overall = "healthy"
    return HealthReport(status=overall, timestamp=datetime.now(UTC), checks=results)


def _checked(selected: list[Probe]) -> list[Check]:
    """Run ``selected`` side by side, each bounded by the timeout; a check not configured is left out."""
    timeout = _timeout()
    futures = [_executor.submit(probe) for _, probe, _ in selected]
    deadline = time.monotonic() + timeout
    results: list[Check] = []
    for (name, _, required), future in zip(selected, futures, strict=True):
        try:
            message = future.result(timeout=max(0.0, deadline - time.monotonic()))
            results.append(Check(name=name, status="pass", message=message, required=required))
        except NotConfigured:
            continue
        except Exception as exc:  # a failed probe is a report line, never a crash
            status: Literal["warn", "fail"] = "fail" if required else "warn"
            reason = f"no answer within {timeout:g}s" if isinstance(exc, FutureTimeout) else str(exc) or repr(exc)
            results.append(Check(name=name, status=status, message=redact_text(reason)[:300], required=required))
    return results


def _respond(report: HealthReport) -> JSONResponse:
    code = 503 if report.status == "unhealthy" else 200
    return JSONResponse(status_code=code, content=report.model_dump(mode="json"))


def build_router(checks: Callable[[], list[Probe]] = lambda: CHECKS) -> APIRouter:
    """The ``/health`` routes over ``checks()`` (every check in the api-server, :func:`edge_checks` at the edge)."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("", response_model=HealthReport, responses={503: {"model": HealthReport}})
    async def health() -> JSONResponse:
        """Every check; 503 when a required dependency is down."""
        return _respond(await run_in_threadpool(_run, checks(), False))

    @router.get("/ready", response_model=HealthReport, responses={503: {"model": HealthReport}})
    async def ready() -> JSONResponse:
        """Required dependencies only: the load balancer's readiness probe."""
        return _respond(await run_in_threadpool(_run, checks(), True))

    @router.get("/live", response_model=HealthReport)
    async def live() -> HealthReport:
        """The process answers: the liveness probe (no dependency checks)."""
        return HealthReport(status="healthy", timestamp=datetime.now(UTC), checks=[])

    return router


router = build_router()
