"""OfficeFlow's Prometheus metrics: the gateway's counters and histogram, and what a scrape of
``/officeflow/metrics`` exposes (docs/observability.md).

Processes and replicas. The api-server runs several worker processes per pod (``--workers``), and any of them may
answer a scrape, so the counters are kept in prometheus_client's **multiprocess mode** whenever
``PROMETHEUS_MULTIPROC_DIR`` is set (the chart sets it to an emptyDir): each worker writes its values to files
of its own in that folder and a scrape, whichever worker answers it, sums every worker's files. Prometheus
scrapes each pod and sums over pods. Without the variable (``./run.sh dev``, one worker) the values live in this
process's registry. Only counters and histograms are kept this way (no gauges): their sums stay right after a
worker exits, so nothing needs cleaning up while the pod runs.

What lives in databases (workflow runs, the inbox, the outbox, approvals, email deliveries) is read at scrape
time by collectors passed to :func:`exposition`, so it survives restarts and is the same whichever worker or
replica answers: alert on ``max()`` of those series, ``sum()`` the counters.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "<unmatched>"  # the route label of a request no route matched (never its raw path)


def multiprocess_dir() -> str | None:
    """The folder the workers share their counters through, or None (single process)."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


_pid = os.getpid()


def _process_id() -> int:
    """This process's id, read from the kernel once and again after a fork, not on every increment."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _cache_the_pid(shared_dir: str) -> None:
    """In multiprocess mode prometheus_client asks ``os.getpid()`` (a system call) on every increment to notice a
    fork; a request made four, ~4% of an edge worker's CPU (docs/BENCHMARKS.md, sixth round). Its values are made
    with :func:`_process_id` instead, which notices a fork as well. Only while this process has written no value:
    values made with the default class keep their own open file, which a second writer of the same file would
    overwrite."""
    if values.ValueClass is values.MutexValue or any(
            name.endswith(f"_{_pid}.db") for name in os.listdir(shared_dir)):
        return
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)


_shared_dir = multiprocess_dir()
if _shared_dir:
    # prometheus_client writes a worker's first value when a labelled series is first used: the folder must exist.
    os.makedirs(_shared_dir, exist_ok=True)
    _cache_the_pid(_shared_dir)

# This process's own series (single-process mode); in multiprocess mode the values go to the shared folder.
REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "officeflow_http_requests", "Requests the gateway answered, by method, route template and status code.",
    ["method", "route", "status_code"], registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "officeflow_http_request_duration_seconds", "Time the gateway took to answer, by method and route template.",
    ["method", "route"], registry=REGISTRY,
)
WEBHOOK_EVENTS = Counter(
    "officeflow_webhook_events",
    "Webhook deliveries to known endpoints by outcome: each event accepted, duplicate, ignored or rejected, or "
    "the delivery refused (denied, rate_limited, too_large, unsupported_media_type, invalid_payload, error).",
    ["endpoint", "adapter", "outcome"], registry=REGISTRY,
)


def exposition(*collectors: Collector) -> bytes:
    """The Prometheus text of a scrape: the counters (this process's, or every worker's in multiprocess mode)
    and what ``collectors`` read now."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
