"""OpenTelemetry tracing for OfficeFlow's own code, on the tracer provider Airflow configures.

Every Airflow process (the api-server that serves the gateway included) sets up the global tracer provider
when ``[traces] otel_on`` is true (``AIRFLOW__TRACES__OTEL_ON``), exporting over OTLP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (``OTEL_TRACES_EXPORTER=otlp_proto_http`` for OTLP/HTTP). OfficeFlow's spans
go through the same provider, so nothing here exports on its own, and with tracing off every span is a no-op.

A DAG run joins a trace through its W3C carriers: Airflow emits the run's ``dag_run.<dag_id>`` span with the
trace and span id of ``DagRun.context_carrier`` and each ``task_run.<task_id>`` span with its task instance's
``context_carrier``, a child of the run's. :func:`run_carrier` and :func:`task_carrier` make those carriers
continue the current trace instead of starting a new one. docs/observability.md ("Traces") shows the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

tracer = trace.get_tracer("officeflow")
_propagator = TraceContextTextMapPropagator()
_ids = RandomIdGenerator()


_NOT_RECORDING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)  # a tuple: isinstance is slower with a union


def recording() -> bool:
    """Whether spans are recorded: a tracer provider was set up (Airflow's ``[traces] otel_on``). Without one
    every span is a no-op, and one without a parent to continue carries nothing either."""
    return not isinstance(trace.get_tracer_provider(), _NOT_RECORDING)


def extract(headers: dict[str, str] | None) -> context.Context:
    """The context of a W3C ``traceparent`` (and ``tracestate``) header; empty when missing or malformed."""
    return _propagator.extract({k.lower(): v for k, v in (headers or {}).items()})


def current_traceparent() -> str | None:
    """The current span's ``traceparent`` (to store with an event and continue later), None outside a trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def _carrier(span_context: SpanContext) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    return carrier


def run_carrier() -> dict[str, str] | None:
    """A DAG run carrier in the current trace: its trace id and sampling decision, a new span id (the run
    span's). None outside a trace (the run keeps the carrier Airflow made: a trace of its own)."""
    parent = trace.get_current_span().get_span_context()
    if not parent.is_valid:
        return None
    return _carrier(SpanContext(parent.trace_id, _ids.generate_span_id(), is_remote=False,
                                trace_flags=TraceFlags(parent.trace_flags), trace_state=parent.trace_state))


def task_carrier(run: dict[str, str]) -> dict[str, str]:
    """A task instance's carrier under run carrier ``run``: the same trace and flags, a new span id."""
    parent = trace.get_current_span(_propagator.extract(run)).get_span_context()
    return _carrier(SpanContext(parent.trace_id, _ids.generate_span_id(), is_remote=False,
                                trace_flags=TraceFlags(parent.trace_flags), trace_state=parent.trace_state))


def span_context_of(carrier: dict[str, str]) -> SpanContext:
    return trace.get_current_span(_propagator.extract(carrier)).get_span_context()


@contextmanager
def span(name: str, *, traceparent: str | None = None, kind: SpanKind = SpanKind.INTERNAL,
         attributes: dict[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span, current for the ``with`` block: a child of ``traceparent`` when given (work continued from a
    stored event), else of the current span."""
    parent = extract({TRACEPARENT: traceparent}) if traceparent else None
    with tracer.start_as_current_span(name, context=parent, kind=kind,
                                      attributes={k: v for k, v in (attributes or {}).items() if v is not None}
                                      ) as current:
        yield current


def link_run(carrier: dict[str, str], dag_id: str, run_id: str) -> None:
    """Link the current span to the run span of ``carrier``: Airflow 3.3 emits the run span as a root of its
    trace (apache/airflow#67210), so the link is what leads from the span that started the run to it."""
    current = trace.get_current_span()
    if current.is_recording():
        current.add_link(span_context_of(carrier), {"airflow.dag_id": dag_id, "airflow.dag_run.run_id": run_id})

