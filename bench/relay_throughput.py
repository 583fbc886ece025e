"""Benchmark: events relay throughput, outbox → acknowledged by Kafka, against producing the same messages
directly with the same producer.

The script starts a throw-away PostgreSQL cluster (the store, migrated) and a real Apache Kafka 4.4 broker (KRaft,
``tests/harness/kafka.py``), writes ``--events`` events to the outbox (not timed), then in the same run:

- **relay**: ``Relay.run_once()`` passes (claim ``OFFICEFLOW_EVENTS_RELAY_BATCH`` rows with SKIP LOCKED and a
  lease, produce, wait for Kafka's delivery reports, mark sent) until a pass claims nothing: every event is
  acknowledged by the broker and marked sent;
- **baseline**: the same events (read back from the outbox, not timed) produced to another topic of the same
  partitions with the relay's own producer (``EventsProducerHook``: idempotent, ``acks=all``), the same key,
  value serialisation and header, then one ``flush()``: what Kafka alone costs, without the store.

events/s = events / time until the last acknowledgement (the relay: until its last pass committed). The rounds
alternate the order. ``--profile`` prints the relay's top functions (cProfile) of the last round.

    ./run.sh bench-relay                # or: PYTHONPATH=. .venv/bin/python bench/relay_throughput.py --events 20000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform as host
import pstats
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.harness.kafka import KafkaBroker  # noqa: E402
from tests.harness.postgres import PostgresCluster  # noqa: E402

WRITE_CHUNK = 1000  # events per transaction while filling the outbox (not timed)


def configure(store_url: str, broker: KafkaBroker, batch: int) -> None:
    os.environ.update({
        "OFFICEFLOW_ENV": "test",
        "OFFICEFLOW_ENV_FILE": os.devnull,
        "OFFICEFLOW_HOME": tempfile.mkdtemp(prefix="officeflow-bench-relay-"),
        "OFFICEFLOW_DB_URL": store_url,
        "OFFICEFLOW_EVENTS_RELAY_BATCH": str(batch),
        "OFFICEFLOW_EVENTS_TOPIC_PARTITIONS": "3",
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka",
                                                  "extra": {**broker.client_config(), "log_level": 3}}),
    })
    from include.officeflow.settings import get_settings

    get_settings.cache_clear()


def fill_outbox(area: str, events: int, subjects: int) -> None:
    from include.officeflow.events.outbox import add_event
    from include.officeflow.store import session_scope

    for start in range(0, events, WRITE_CHUNK):
        with session_scope() as session:
            for n in range(start, min(events, start + WRITE_CHUNK)):
                add_event(session, area=area, action="changed", subject=f"emp-{n % subjects}",
                          data={"n": n, "employee_id": f"emp-{n % subjects}", "status": "active"},
                          organization_id="acme", correlation_id=f"bench-{n}")


def relay_round(profile: bool) -> tuple[float, int, str]:
    """Relay passes until one claims nothing; returns the time, the events sent and the profile report."""
    from sqlalchemy.orm import configure_mappers

    from include.officeflow.events.outbox import lag
    from include.officeflow.store import session_scope
    from plugins.officeflow_events.relay import Relay

    configure_mappers()  # one-time costs of any relay process, not timed: the ORM's set-up and the producer
    relay = Relay()
    relay._ensure_producer()
    sent = 0
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    while True:
        result = relay.run_once()
        sent += result.sent
        if result.failed:
            raise RuntimeError(f"relay pass failed: {result.errors[:3]}")
        if result.claimed == 0:
            break
    elapsed = time.perf_counter() - started
    if profiler:
        profiler.disable()
    with session_scope() as session:
        left = lag(session).unsent
    if left:
        raise RuntimeError(f"{left} events still unsent")
    report = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        report = out.getvalue()
    return elapsed, sent, report


def baseline_round(area: str, topic: str) -> tuple[float, int]:
    """The events of ``area`` produced straight to ``topic`` with the relay's producer config."""
    from sqlalchemy import select

    from include.officeflow.store import OutboxEvent, session_scope
    from operators.hooks.kafka_events import EventsProducerHook
    from plugins.officeflow_events.relay import HEADERS

    with session_scope() as session:
        rows = [(subject, event) for subject, event in session.execute(
            select(OutboxEvent.subject, OutboxEvent.event).where(OutboxEvent.area == area)
            .order_by(OutboxEvent.seq))]
    producer = EventsProducerHook().get_producer()
    acknowledged: list[int] = []
    failed: list[str] = []

    def on_delivery(err: Any, _message: Any) -> None:
        if err is None:
            acknowledged.append(1)
        else:
            failed.append(str(err))

    started = time.perf_counter()
    for subject, event in rows:
        while True:
            try:
                producer.produce(topic, value=json.dumps(event, separators=(",", ":")).encode(),
                                 key=subject.encode(), headers=HEADERS, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if failed or len(acknowledged) != len(rows):
        raise RuntimeError(f"baseline: {len(acknowledged)} of {len(rows)} acknowledged; {failed[:3]}")
    return elapsed, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000, help="events per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of relay and baseline, alternating order")
    parser.add_argument("--batch", type=int, default=500, help="OFFICEFLOW_EVENTS_RELAY_BATCH (default 500, the "
                                                               "setting's default)")
    parser.add_argument("--subjects", type=int, default=500, help="distinct subjects (Kafka keys)")
    parser.add_argument("--profile", action="store_true", help="print the relay's cProfile of the last round")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    postgres = PostgresCluster().start()
    broker: KafkaBroker | None = None
    try:
        broker = KafkaBroker().start()
        store_url = postgres.create_database("officeflow_bench_relay")
        from include.officeflow.store import migrate

        migrate(store_url)
        pg_version = postgres.psql("SHOW server_version")
        configure(store_url, broker, args.batch)
        from operators.hooks.kafka_events import EventsProducerHook, topic_for

        relay_rates: list[float] = []
        direct_rates: list[float] = []
        profile_report = ""
        for round_no in range(args.rounds):
            area, direct_area = f"bench{round_no}", f"benchdirect{round_no}"
            EventsProducerHook().ensure_topics([area, direct_area])  # not timed: both topics exist up front
            fill_outbox(area, args.events, args.subjects)  # not timed
            steps = ["relay", "baseline"] if round_no % 2 == 0 else ["baseline", "relay"]
            for step in steps:
                if step == "baseline":  # reads the round's events, sent or not, from the outbox
                    elapsed, count = baseline_round(area, topic_for(direct_area))
                    direct_rates.append(count / elapsed)
                else:
                    elapsed, count, report = relay_round(args.profile and round_no == args.rounds - 1)
                    if count != args.events:
                        raise RuntimeError(f"the relay sent {count} of {args.events} events")
                    relay_rates.append(count / elapsed)
                    profile_report = report or profile_report
                print(f"round {round_no + 1}: {step} {count} events in {elapsed:.2f} s ({count / elapsed:,.0f}/s)",
                      flush=True)
    finally:
        if broker is not None:
            broker.stop()
        postgres.stop()

    from importlib.metadata import version

    relay_rate, direct_rate = statistics.median(relay_rates), statistics.median(direct_rates)
    print(f"\nmachine: {os.cpu_count()} cores {host.machine()}, Python {host.python_version()}, "
          f"confluent-kafka {version('confluent-kafka')}, PostgreSQL {pg_version}, Kafka 4.4 (1 broker, KRaft); "
          f"{args.events} events per round, {args.rounds} rounds, batch {args.batch}, {args.subjects} subjects")
    print("\n| path | events/s (median) | rounds |\n|---|---|---|")
    print(f"| relay: outbox → acknowledged → marked sent | {relay_rate:,.0f} | "
          f"{', '.join(f'{r:,.0f}' for r in relay_rates)} |")
    print(f"| baseline: the same messages produced directly | {direct_rate:,.0f} | "
          f"{', '.join(f'{r:,.0f}' for r in direct_rates)} |")
    print(f"\nrelay / baseline: {relay_rate / direct_rate:.2f}")
    if profile_report:
        print("\nrelay profile (last round, cumulative):\n" + profile_report)


if __name__ == "__main__":
    main()
