"""An OTLP/HTTP collector in the test process: the spans (``/v1/traces``, ``OTEL_TRACES_EXPORTER=otlp_proto_http``)
and metrics (``/v1/metrics``, Airflow's OTLP/HTTP default) the platform's processes export, decoded from the
protobuf requests into :class:`Span` and :class:`Point` records.

``with OtlpCollector() as collector:`` -> ``collector.env()`` for the processes, ``collector.spans(trace_id)``,
``collector.points(name)``.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: int
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (trace_id, span_id) of each link


@dataclass(frozen=True)
class Point:
    """One data point of one export: a counter's cumulative value, or a histogram's count."""

    name: str
    service: str
    attributes: dict[str, Any]
    value: float


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(Span(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(), name=span.name, kind=span.kind,
                    service=str(resource.get("service.name", "")),
                    attributes={a.key: _value(a.value) for a in span.attributes},
                    links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links)))
    return spans


def decode_metrics(body: bytes) -> list[Point]:
    request = ExportMetricsServiceRequest.FromString(body)
    points = []
    for resource_metrics in request.resource_metrics:
        resource = {a.key: _value(a.value) for a in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points if kind else []:
                    value = point.count if kind in ("histogram", "exponential_histogram") else (
                        point.as_int if point.WhichOneof("value") == "as_int" else point.as_double)
                    points.append(Point(metric.name, str(resource.get("service.name", "")),
                                        {a.key: _value(a.value) for a in point.attributes}, value))
    return points


class OtlpCollector:
    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._points: list[Point] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    spans = decode(body)
                    with collector._lock:
                        collector._spans.extend(spans)
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    points = decode_metrics(body)
                    with collector._lock:
                        collector._points.extend(points)
                    answer = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-collector", daemon=True)

    def env(self, service: str = "officeflow") -> dict[str, str]:
        """What turns on Airflow's traces and metrics (and so OfficeFlow's) towards this collector, exporting
        fast."""
        base = f"http://127.0.0.1:{self.port}"
        return {"AIRFLOW__TRACES__OTEL_ON": "True", "OTEL_TRACES_EXPORTER": "otlp_proto_http",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/v1/traces", "OTEL_SERVICE_NAME": service,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "AIRFLOW__METRICS__OTEL_ON": "True", "AIRFLOW__METRICS__LEGACY_NAMES_ON": "False",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{base}/v1/metrics", "OTEL_METRIC_EXPORT_INTERVAL": "2000"}

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def points(self, name: str) -> list[Point]:
        with self._lock:
            return [p for p in self._points if p.name == name]

    def points_named_like(self, prefix: str) -> list[Point]:
        with self._lock:
            return [p for p in self._points if p.name.startswith(prefix)]

    def __enter__(self) -> OtlpCollector:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
