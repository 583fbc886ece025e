"""A server span for every gateway request, continuing the caller's W3C ``traceparent`` when it sends one.

The span is named ``<METHOD> /officeflow<route template>`` (never the raw path) and carries the HTTP semantic
attributes and the correlation id; it is current while the route runs, so a webhook's stored event keeps its
``traceparent`` and the run the dispatcher starts from it joins the trace (include/officeflow/tracing.py).
With Airflow's tracing off (``[traces] otel_on``, the default in dev mode) the span is a no-op.

A plain ASGI middleware, like the others in app.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from include.officeflow import tracing
from include.officeflow.metrics import UNMATCHED_ROUTE
from plugins.officeflow_gateway.response_status import ResponseStatus
from plugins.officeflow_gateway.route_templates import route_template

PREFIX = "/officeflow"


class RequestTracing:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        parent = tracing.extract({name: headers[name] for name in (tracing.TRACEPARENT, tracing.TRACESTATE)
                                  if name in headers})
        method = scope["method"]
        status = ResponseStatus(send)

        with tracing.tracer.start_as_current_span(
                method, context=parent, kind=SpanKind.SERVER,
                attributes={"http.request.method": method,
                            "officeflow.correlation_id": scope.get("state", {}).get("correlation_id", "")},
                record_exception=True, set_status_on_exception=True) as span:
            try:
                await self.app(scope, receive, status)
            finally:
                route = route_template(scope, self.routes)
                if route != UNMATCHED_ROUTE:  # else the name stays the method alone (OTel's HTTP conventions)
                    span.update_name(f"{method} {PREFIX}{route}")
                    span.set_attribute("http.route", f"{PREFIX}{route}")
                span.set_attribute("http.response.status_code", status.value)
                if status.value >= 500:
                    span.set_status(Status(StatusCode.ERROR))
