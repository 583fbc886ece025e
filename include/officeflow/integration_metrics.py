"""Calls to external services (Slack, Google Workspace, Microsoft Graph, Okta, the OpenAI-compatible API,
BambooHR): how many, how long, and how they ended, per integration, recorded where each hook makes its calls.

These calls are made by task code, in worker processes (short-lived pods under the KubernetesExecutor) that no
Prometheus scrapes, so they are OpenTelemetry instruments on the meter provider Airflow sets up in every
process when ``[metrics] otel_on`` is true: they go out over OTLP with Airflow's own metrics
(docs/observability.md, "External API calls"). With Airflow's metrics off they cost nothing.

- ``officeflow.external_api.calls`` (counter) by ``integration`` and ``outcome``: ``ok``, ``rate_limited``
  (the service's 429 or its throttling error), ``unavailable`` (5xx, timeouts, unreachable), ``auth_error``,
  ``refused`` (the service refused the input, a conflict or a missing object: answered, not failed).
- ``officeflow.external_api.duration`` (histogram, seconds) by ``integration`` and ``outcome``.

As Prometheus series (OTLP -> Prometheus): ``officeflow_external_api_calls_total`` and
``officeflow_external_api_duration_seconds``. Labels are two closed sets: no path, id or address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import metrics

from include.officeflow import errors

INTEGRATIONS = frozenset({"slack", "google_workspace", "microsoft_graph", "okta", "openai", "bamboohr",
                          "workday"})
OUTCOMES = ("ok", "rate_limited", "unavailable", "auth_error", "refused")

_meter = metrics.get_meter("officeflow")
CALLS = _meter.create_counter("officeflow.external_api.calls", unit="{call}",
                              description="Calls to external services by integration and outcome")
DURATION = _meter.create_histogram("officeflow.external_api.duration", unit="s",
                                   description="Duration of calls to external services")


def outcome_of(error: BaseException | None) -> str:
    """The outcome label of a call that raised ``error`` (None: it succeeded)."""
    if error is None:
        return "ok"
    if isinstance(error, errors.RateLimited):
        return "rate_limited"
    if isinstance(error, errors.AuthError):
        return "auth_error"
    if isinstance(error, errors.ServiceError) and not error.retryable:
        return "refused"
    return "unavailable"  # Unavailable, other retryable service errors, anything unexpected


def record(integration: str, outcome: str, seconds: float) -> None:
    if integration not in INTEGRATIONS or outcome not in OUTCOMES:
        raise ValueError(f"unknown integration or outcome: {integration!r}, {outcome!r}")
    attributes = {"integration": integration, "outcome": outcome}
    CALLS.add(1, attributes)
    DURATION.record(seconds, attributes)


@contextmanager
def external_call(integration: str) -> Iterator[None]:
    """Time the ``with`` block as one call to ``integration``; its outcome from what it raised (the hooks raise
    :mod:`include.officeflow.errors` classes)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        record(integration, outcome_of(exc), time.perf_counter() - started)
        raise
    record(integration, "ok", time.perf_counter() - started)
