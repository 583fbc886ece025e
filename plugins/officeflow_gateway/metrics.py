"""``GET /officeflow/metrics`` (Prometheus text), and the count and timing of every gateway request (run by the
gateway's per-request layer, request_layer.py).

The route label is the matched route's template (``/webhooks/{endpoint_id}``), never the raw path, and
``<unmatched>`` when no route matches, so unknown paths and ids add no series. What the series mean, and how
several workers and replicas are summed: include/officeflow/metrics.py and docs/observability.md.
"""

from __future__ import annotations

import hmac
import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from include.officeflow.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, exposition
from include.officeflow.settings import get_settings
from include.officeflow.store_metrics import StoreCollector
from plugins.officeflow_gateway.airflow_metrics import AirflowCollector, KnownOrganizations
from plugins.officeflow_gateway.errors import ApiError

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})



def count_request(scope: Scope, route: str, status: int, started: float) -> None:
    """Count and time a request by method, route template (``route``) and status code."""
    method = scope["method"] if scope["method"] in METHODS else "OTHER"
    _requests(method, route, status).inc()
    _durations(method, route).observe(time.perf_counter() - started)


# A metric's labelled series, found once: ``labels()`` checks and joins its values on every call (~1.5% of an edge
# worker's CPU). The labels are bounded (methods, route templates, status codes), and an evicted series is found
# again, the same one.
@lru_cache(maxsize=1024)
def _requests(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


@lru_cache(maxsize=256)
def _durations(method: str, route: str) -> Any:
    return HTTP_REQUEST_DURATION.labels(method, route)


def _check_token(request: Request) -> None:
    token = get_settings().metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                              token.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "metrics need the bearer token (OFFICEFLOW_METRICS_TOKEN)",
                       headers={"WWW-Authenticate": "Bearer"})


def build_router(*collectors: Collector) -> APIRouter:
    """``GET /metrics``: this process's (and, in multiprocess mode, its sibling workers') series, plus what
    ``collectors`` read at scrape time."""
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=Response,
                responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {}},
                summary="Prometheus metrics of the gateway, the workflows, the inbox and outbox, approvals and email")
    async def metrics(request: Request) -> Response:
        _check_token(request)
        body = await run_in_threadpool(exposition, *collectors)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    return router


# The api-server's: the store's inbox/outbox and Airflow's runs and approvals too. The edge gateway serves
# only its own request and delivery series (edge.py), so those figures are not reported twice.
collectors = (StoreCollector(), AirflowCollector(KnownOrganizations()))
router = build_router(*collectors)
