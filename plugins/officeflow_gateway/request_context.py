"""Every gateway request: its correlation id, its log context and one access log line.

- The correlation id is the caller's ``X-Correlation-ID`` when valid (include/officeflow/correlation.py), else a
  new UUID; it is stored on the request (``request.state.correlation_id``, what
  :func:`plugins.officeflow_gateway.errors.correlation_id` and so every route, error body, audit record, stored
  event and run conf use) and sent back in the response's ``X-Correlation-ID`` header, on every answer.
- It is bound to the log context (``correlationId``) for the whole request, so every line logged while
  serving it (the routes, the store, the worker threads of ``run_in_threadpool``) carries it; routes bind
  ``organizationId`` / ``workflowId`` when they know them (include/officeflow/structured_logs.py).
- One ``request`` line per request: method, route template (``/webhooks/{endpoint_id}``), status, duration.
  Health probes log it at DEBUG.
- The first request sets up the gateway's log lines (JSON or text, secrets redacted): only api-server processes
  serve requests, while every Airflow component imports the plugin.

A plain ASGI middleware, like ``StartDispatcher`` in app.py (no BaseHTTPMiddleware task per request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include.officeflow.correlation import CORRELATION_HEADER, correlation_id_from
from include.officeflow.structured_logs import bound, configure_gateway_logging
from plugins.officeflow_gateway.response_status import ResponseStatus
from plugins.officeflow_gateway.route_templates import route_template

log = logging.getLogger(__name__)
QUIET_PREFIX = "/health"


class RequestContext:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        configure_gateway_logging()
        cid = correlation_id_from(Headers(scope=scope).get(CORRELATION_HEADER))
        scope.setdefault("state", {})["correlation_id"] = cid
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        status = ResponseStatus(send_with_id)
        with bound(correlationId=cid):
            try:
                await self.app(scope, receive, status)
            finally:
                route = route_template(scope, self.routes)
                level = logging.DEBUG if route.startswith(QUIET_PREFIX) and status.value < 500 else logging.INFO
                log.log(level, "%s %s -> %d", scope.get("method"), route, status.value,
                        extra={"method": scope.get("method"), "route": route, "status": status.value,
                               "durationMs": round((time.perf_counter() - started) * 1000, 1)})
