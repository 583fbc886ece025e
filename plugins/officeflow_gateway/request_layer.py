"""The gateway's one per-request ASGI layer: what every request to an OfficeFlow app goes through, in order.

1. the embedded dispatcher and the app's other background loops (the api-server's applier of Slack approval
   clicks) are started (on the first request, not at import: every Airflow component imports the plugin, only
   api-server and edge processes serve requests);
2. the correlation id and the log context (request_context.py): every answer carries ``X-Correlation-ID``,
   every line logged while serving the request the request's ids;
3. the server span, continuing the caller's ``traceparent`` (request_tracing.py);
4. the cross-site request forgery guard's 403 (same_origin.py), the 422 for a NUL in the URL (errors.py), else
   the app;
5. afterwards, by the route's template: the span's name and status, the request metrics (metrics.py; requests
   the guard refused are counted too) and the request's one log line; the request counted for the warm heap's
   freeze (heap.py).

One layer rather than one middleware per concern: a coroutine resumed after an ``await`` (a delivery resumes a
dozen times: the body, the rate limiter, the store's round trips, the answer) walks back through every frame
that awaits it, so each nested middleware cost every request that walk again (docs/BENCHMARKS.md). The
concerns stay in their modules as plain functions; the blocks here are synchronous context managers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from include.officeflow.structured_logs import bound
from plugins.officeflow_gateway import heap, metrics, request_context, request_tracing
from plugins.officeflow_gateway.dispatcher import dispatcher
from plugins.officeflow_gateway.errors import nul_in_url_refusal
from plugins.officeflow_gateway.response_status import ResponseStatus
from plugins.officeflow_gateway.route_templates import route_template
from plugins.officeflow_gateway.same_origin import cross_origin_refusal


class GatewayRequests:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute],
                 background: Sequence[Callable[[], None]] = ()) -> None:
        self.app = app
        self.routes = routes
        self.background = tuple(background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        dispatcher.ensure_started()
        for ensure_started in self.background:
            ensure_started()
        cid = request_context.begin(scope)
        status = ResponseStatus(request_context.sending_correlation_id(send, cid))
        with bound(correlationId=cid):
            try:
                with request_tracing.request_span(scope) as span:
                    try:
                        refusal = cross_origin_refusal(scope) or nul_in_url_refusal(scope)
                        await (refusal or self.app)(scope, receive, status)
                    finally:
                        route = route_template(scope, self.routes)
                        request_tracing.end_span(span, scope, route, status.value)
            finally:
                route = route_template(scope, self.routes)
                metrics.count_request(scope, route, status.value, started)
                request_context.log_request(scope, route, status.value, started)
                heap.count_request()
