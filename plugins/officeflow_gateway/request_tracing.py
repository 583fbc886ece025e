"""A server span for every gateway request, continuing the caller's W3C ``traceparent`` when it sends one.

The span is named ``<METHOD> /officeflow<route template>`` (never the raw path) and carries the HTTP semantic
attributes and the correlation id; it is current while the route runs, so a webhook's stored event keeps its
``traceparent`` and the run the dispatcher starts from it joins the trace (include/officeflow/tracing.py).
With Airflow's tracing off (``[traces] otel_on``, the default in dev mode) the span is a no-op, and skipped
for a request that sends no ``traceparent``.

Run by the gateway's one per-request layer (request_layer.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.datastructures import Headers
from starlette.types import Scope

from include.officeflow import tracing
from include.officeflow.metrics import UNMATCHED_ROUTE

PREFIX = "/officeflow"


_NO_SPAN: AbstractContextManager[None] = nullcontext()


def request_span(scope: Scope) -> AbstractContextManager[Span | None]:
    """The request's server span, current inside the block; None for a request that sends no ``traceparent``
    while tracing is off (a no-op span in no trace: its context switches are skipped, and so is a generator's
    context manager, for the gateway's commonest request). Named by :func:`end_span`, which the caller runs inside
    the block once the route is known."""
    headers = Headers(scope=scope)
    carrier = {name: headers[name] for name in (tracing.TRACEPARENT, tracing.TRACESTATE) if name in headers}
    if not carrier and not tracing.recording():
        return _NO_SPAN
    return _server_span(scope, carrier)


@contextmanager
def _server_span(scope: Scope, carrier: dict[str, str]) -> Iterator[Span]:
    method = scope["method"]
    with tracing.tracer.start_as_current_span(
            method, context=tracing.extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method,
                        "officeflow.correlation_id": scope.get("state", {}).get("correlation_id", "")},
            record_exception=True, set_status_on_exception=True) as span:
        yield span


def end_span(span: Span | None, scope: Scope, route: str, status: int) -> None:
    """Name the span by the route template and record the response's status."""
    if span is None:
        return
    if route != UNMATCHED_ROUTE:  # else the name stays the method alone (OTel's HTTP conventions)
        span.update_name(f"{scope['method']} {PREFIX}{route}")
        span.set_attribute("http.route", f"{PREFIX}{route}")
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
