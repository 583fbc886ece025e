"""The relay's monitoring endpoint: ``/metrics`` in the Prometheus text format and ``/healthz`` for probes, on
``OFFICEFLOW_EVENTS_RELAY_METRICS_HOST``:``OFFICEFLOW_EVENTS_RELAY_METRICS_PORT`` (a thread of the relay process).

The outbox lag is read from the store at each scrape (one indexed query), so every relay replica reports the
same, current value: alert on ``max()`` of it. The counters are the process's own: sum them over replicas.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from include.officeflow.events.outbox import Lag

log = logging.getLogger(__name__)


class _LagCollector(Collector):
    """The outbox lag, read when Prometheus scrapes; ``officeflow_outbox_lag_up`` is 0 when the store did not
    answer (the lag gauges are then left out rather than reported as 0)."""

    def __init__(self, lag: Callable[[], Lag]) -> None:
        self._lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("officeflow_outbox_lag_up", "1 when the outbox lag could be read from the store.")
        try:
            lag = self._lag()
        except Exception as exc:  # the store away: say so, keep serving the counters
            log.warning("Outbox lag unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("officeflow_outbox_unsent_events", "Events in the outbox not yet acknowledged by "
                                "Kafka.", value=lag.unsent)
        yield GaugeMetricFamily("officeflow_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent event "
                                "(0 when none).", value=lag.oldest_unsent_age_seconds)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # collected at scrape time only (nothing read at registration)


class RelayMetrics:
    """The relay's counters and the lag, in a registry of their own (not the process-global one)."""

    def __init__(self, lag: Callable[[], Lag]) -> None:
        self.registry = CollectorRegistry()
        self.published = Counter("officeflow_events_relay_published", "Events Kafka acknowledged and the relay "
                                 "marked sent.", registry=self.registry)
        self.delivery_failures = Counter("officeflow_events_relay_delivery_failures", "Events Kafka did not "
                                         "acknowledge in a pass (given back for a retry).", registry=self.registry)
        self.pass_errors = Counter("officeflow_events_relay_pass_errors", "Passes that failed before publishing "
                                   "(the store unreachable).", registry=self.registry)
        self.purged = Counter("officeflow_outbox_purged", "Sent outbox rows deleted past the retention.",
                              registry=self.registry)
        self.last_pass = Gauge("officeflow_events_relay_last_pass_timestamp_seconds", "When the relay last "
                               "finished a pass (Unix time).", registry=self.registry)
        self.registry.register(_LagCollector(lag))


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not worth a log line


class MetricsServer:
    """``/metrics`` and ``/healthz`` in a daemon thread; ``healthy()`` returns (ok, reason)."""

    def __init__(self, metrics: RelayMetrics, healthy: Callable[[], tuple[bool, str]], host: str,
                 port: int) -> None:
        metrics_app = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                ok, reason = healthy()
                start_response("200 OK" if ok else "503 Service Unavailable",
                               [("Content-Type", "text/plain; charset=utf-8")])
                return [reason.encode() + b"\n"]
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: /metrics, /healthz\n"]

        self._server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="relay-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
