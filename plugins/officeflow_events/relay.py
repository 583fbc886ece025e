"""The events relay: publishes the outbox (``include/officeflow/events/outbox.py``) to Kafka.

Each pass claims up to ``OFFICEFLOW_EVENTS_RELAY_BATCH`` unsent rows, oldest first (``FOR UPDATE SKIP LOCKED``,
then a lease of ``OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS``, so several relays share the outbox without publishing a
row twice), produces each event to ``officeflow.events.<area>`` keyed by its subject through the idempotent
producer of ``operators/hooks/kafka_events.py``, and marks a row sent only after Kafka's delivery report. Rows
Kafka did not acknowledge are given back and retried with backoff (1 s doubling, capped by
``OFFICEFLOW_EVENTS_RELAY_MAX_DELAY_SECONDS``) while Kafka is down; they wait in the outbox meanwhile.

Every ``OFFICEFLOW_EVENTS_OUTBOX_PURGE_INTERVAL_SECONDS`` the relay also deletes rows sent more than
``OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS`` ago, in batches (:meth:`Relay.purge`); unsent rows are never deleted.
While it runs, ``/metrics`` and ``/healthz`` answer on ``OFFICEFLOW_EVENTS_RELAY_METRICS_PORT`` (``metrics.py``).

``python -m plugins.officeflow_events.relay`` (``./run.sh relay``) runs it until SIGTERM/SIGINT;
``… relay lag`` prints the outbox lag (unsent count, oldest unsent age) as JSON; ``… relay configured`` tells
whether the Kafka connection exists (exit 0) or not (exit 1), for ``./run.sh dev``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.officeflow.events import outbox
from include.officeflow.settings import get_settings
from include.officeflow.store import session_scope
from operators.hooks.kafka_events import EventsProducerHook, topic_for
from plugins.officeflow_events.metrics import MetricsServer, RelayMetrics

log = logging.getLogger(__name__)

#: The CloudEvents Kafka protocol binding's structured mode: the whole event is the message value.
HEADERS = [("content-type", b"application/cloudevents+json; charset=UTF-8")]


def current_lag() -> outbox.Lag:
    """The outbox lag: how many events wait to be published, and the age of the oldest."""
    with session_scope() as session:
        return outbox.lag(session)


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def kafka_configured(conn_id: str | None = None) -> tuple[bool, str]:
    """Whether the relay's Kafka connection (``OFFICEFLOW_EVENTS_KAFKA_CONN_ID``) exists, looked up as the relay
    looks it up (the Task SDK outside a task: ``AIRFLOW_CONN_*`` variables and a configured secrets backend, not
    connections stored in Airflow's database), and names brokers (``bootstrap.servers`` in its extra); with the
    reason. ``./run.sh dev`` starts the relay only then."""
    conn_id = conn_id or get_settings().events_kafka_conn_id
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as exc:  # not defined (AirflowNotFoundException), or no metadata DB to look in
        return False, f"no Airflow connection {conn_id!r} ({type(exc).__name__})"
    servers = (connection.extra_dejson or {}).get("bootstrap.servers")
    if not servers:
        return False, f"connection {conn_id!r} has no bootstrap.servers in its extra"
    return True, f"connection {conn_id!r}: {servers}"


class Relay:
    """One relay; :meth:`run_once` is a pass, :meth:`purge` the retention, :meth:`run` the loop."""

    def __init__(self, relay_id: str | None = None, kafka_config_id: str | None = None,
                 metrics: RelayMetrics | None = None) -> None:
        self.relay_id = relay_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.kafka_config_id = kafka_config_id
        self.metrics = metrics
        self.heartbeat = time.monotonic()  # the loop's last sign of life (/healthz)
        self._next_purge = 0.0
        self._hook: EventsProducerHook | None = None
        self._producer: Any = None
        self._topics: set[str] = set()
        self.failures = 0  # consecutive failed passes: the backoff's exponent
        self._stop = threading.Event()

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            self._hook = EventsProducerHook(self.kafka_config_id)
            self._producer = self._hook.get_producer()
        return self._producer

    def _reset_producer(self) -> None:
        """Drop the producer after a fatal error (an idempotent producer can end up fenced); the next pass makes
        a new one."""
        self._producer = None
        self._hook = None

    def backoff_seconds(self) -> float:
        if self.failures == 0:
            return 0.0
        return float(min(get_settings().events_relay_max_delay_seconds, 2 ** (self.failures - 1)))

    def run_once(self) -> PassResult:
        """Claim, publish and mark one batch; returns what happened."""
        settings = get_settings()
        with session_scope() as session:
            rows = outbox.claim(session, self.relay_id, limit=settings.events_relay_batch,
                                lease_seconds=settings.events_relay_lease_seconds)
        result = PassResult(claimed=len(rows))
        if not rows:
            return result
        delivered: list[int] = []
        failed: list[int] = []
        try:
            producer = self._ensure_producer()
            areas = {row.area for row in rows}
            if self._hook is not None and not {topic_for(a) for a in areas} <= self._topics:
                timeout = settings.events_relay_delivery_timeout_seconds
                self._topics.update(self._hook.ensure_topics(areas, timeout=timeout))

            def report(seq: int) -> Callable[[Any, Any], None]:
                def on_delivery(err: Any, _message: Any) -> None:
                    if err is None:
                        delivered.append(seq)
                    else:
                        failed.append(seq)
                        result.errors.append(str(err))
                        if err.fatal():
                            self._reset_producer()
                return on_delivery

            for row in rows:
                producer.produce(topic_for(row.area), value=json.dumps(row.event, separators=(",", ":")).encode(),
                                 key=row.subject.encode(), headers=HEADERS, on_delivery=report(row.seq))
                producer.poll(0)
            producer.flush(settings.events_relay_delivery_timeout_seconds + 5)
        except Exception as exc:  # Kafka unreachable for the admin call, a full queue, a bad config...
            result.errors.append(f"{type(exc).__name__}: {exc}")
            self._reset_producer()
        acknowledged = set(delivered)
        undelivered = [row.seq for row in rows if row.seq not in acknowledged]
        result.sent, result.failed = len(delivered), len(undelivered)
        self.failures = self.failures + 1 if undelivered else 0
        with session_scope() as session:
            outbox.mark_sent(session, self.relay_id, delivered)
            if undelivered:
                retry_at = datetime.now(UTC) + timedelta(seconds=self.backoff_seconds())
                outbox.release(session, self.relay_id, undelivered, "; ".join(result.errors[:3]) or "not delivered",
                               retry_at)
        if self.metrics is not None:
            self.metrics.published.inc(len(delivered))
            self.metrics.delivery_failures.inc(len(undelivered))
        if undelivered:
            log.warning("Relay %s: %d of %d events not delivered (%s); retrying in %.0f s", self.relay_id,
                        len(undelivered), len(rows), "; ".join(result.errors[:1]), self.backoff_seconds())
        return result

    def purge(self, now: datetime | None = None) -> int:
        """Delete the rows sent more than ``OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS`` ago, a transaction per
        ``OFFICEFLOW_EVENTS_OUTBOX_PURGE_BATCH`` rows (short locks, bounded WAL per commit); returns how many.
        Unsent rows are never deleted, however old."""
        settings = get_settings()
        cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.events_outbox_retention_days)
        total = 0
        while not self._stop.is_set():
            with session_scope() as session:
                deleted = outbox.purge_sent(session, cutoff, limit=settings.events_outbox_purge_batch)
            total += deleted
            if self.metrics is not None:
                self.metrics.purged.inc(deleted)
            if deleted < settings.events_outbox_purge_batch:
                break
        if total:
            log.info("Relay %s purged %d outbox rows sent before %s", self.relay_id, total, cutoff.isoformat())
        return total

    def _purge_if_due(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + get_settings().events_outbox_purge_interval_seconds
        try:
            self.purge()
        except Exception:  # the store away: the next interval tries again, relaying goes on
            log.exception("Outbox purge failed; retrying in the next interval")

    def health(self) -> tuple[bool, str]:
        """Alive while the loop keeps coming round: a pass (or a wait) that takes longer than the lease plus the
        backoff cap and a margin means a stuck process (restart it; its rows are claimed again after the lease)."""
        settings = get_settings()
        limit = settings.events_relay_lease_seconds + settings.events_relay_max_delay_seconds + 30
        silent = time.monotonic() - self.heartbeat
        if silent > limit:
            return False, f"relay loop silent for {silent:.0f} s (limit {limit:.0f} s)"
        return True, f"ok: last pass {silent:.1f} s ago"

    def run(self) -> None:
        """Pass after pass until :meth:`stop`: at once while a batch was full, after the poll interval when idle,
        after the backoff while Kafka is down."""
        log.info("OfficeFlow events relay %s started", self.relay_id)
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                result = self.run_once()
            except Exception:  # the store away: keep going, the events wait in the outbox
                log.exception("Relay pass failed; retrying")
                self.failures += 1
                if self.metrics is not None:
                    self.metrics.pass_errors.inc()
                result = PassResult(failed=1)
            self.heartbeat = time.monotonic()
            if self.metrics is not None:
                self.metrics.last_pass.set_to_current_time()
            if not result.failed:
                self._purge_if_due()
            if result.failed:
                self._stop.wait(self.backoff_seconds())
            elif result.claimed < get_settings().events_relay_batch:
                self._stop.wait(get_settings().events_relay_poll_seconds)
        if self._producer is not None:
            self._producer.flush(5)

    def stop(self) -> None:
        self._stop.set()


def main(argv: list[str] | None = None) -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m plugins.officeflow_events.relay",
                                     description="Publish the OfficeFlow outbox to Kafka (docs/events.md).")
    parser.add_argument("command", nargs="?", choices=["run", "lag", "configured"], default="run",
                        help="run: relay until SIGTERM (default); lag: print the outbox lag as JSON; "
                             "configured: exit 0 when the Kafka connection exists, else 1 (with the reason)")
    args = parser.parse_args(argv)
    if args.command == "lag":
        print(json.dumps(current_lag().as_dict()))
        return
    if args.command == "configured":
        configured, reason = kafka_configured()
        print(reason)
        raise SystemExit(0 if configured else 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    metrics = RelayMetrics(current_lag)
    relay = Relay(metrics=metrics)
    server = None
    if settings.events_relay_metrics_port:
        server = MetricsServer(metrics, relay.health, settings.events_relay_metrics_host,
                               settings.events_relay_metrics_port).start()
        log.info("Relay metrics on http://%s:%d/metrics (health: /healthz)", settings.events_relay_metrics_host,
                 server.port)

    def _stop(signum: int, _frame: object) -> None:
        log.info("Signal %s: stopping the relay", signum)
        relay.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        relay.run()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
