"""``GET /officeflow/metrics`` (Prometheus text) and the middleware counting and timing every gateway request.

The route label is the matched route's template (``/webhooks/{endpoint_id}``), never the raw path, and
``<unmatched>`` when no route matches, so unknown paths and ids add no series. What the series mean, and how
several workers and replicas are summed: include/officeflow/metrics.py and docs/observability.md.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from include.officeflow.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, exposition
from include.officeflow.settings import get_settings
from include.officeflow.store_metrics import StoreCollector
from plugins.officeflow_gateway.airflow_metrics import AirflowCollector, KnownOrganizations
from plugins.officeflow_gateway.errors import ApiError
from plugins.officeflow_gateway.response_status import ResponseStatus
from plugins.officeflow_gateway.route_templates import route_template

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})



class HttpMetrics:
    """Counts and times every HTTP request by method, route template and status code.

    A plain ASGI middleware (no BaseHTTPMiddleware task per request); the route label is
    :func:`~plugins.officeflow_gateway.route_templates.route_template`.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_template(scope, self.routes)
            HTTP_REQUESTS.labels(method, route, str(status.value)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)


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
