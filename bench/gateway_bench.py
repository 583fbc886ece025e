"""Gateway throughput benchmark: signed BambooHR deliveries against a running api-server on PostgreSQL.

    ./run.sh bench-gateway                         # or:
    PYTHONPATH=. .venv/bin/python bench/gateway_bench.py --requests 5000 --concurrency 32

What it does, all on 127.0.0.1:
1. starts a throw-away PostgreSQL, migrates Airflow's metadata DB and the OfficeFlow store, serialises
   the DAGs, and starts ``airflow api-server`` with the OfficeFlow plugin (no scheduler: runs are
   created by the gateway's dispatcher but not executed, so the machine measures the gateway);
2. in a separate process, pre-signs the deliveries (10 % are redeliveries of an earlier event) and
   sends them with keep-alive connections at a fixed concurrency, timing each answer;
3. measures ``GET /officeflow/health/live`` (a FastAPI route that does nothing) the same way, in the
   same server, as the ceiling;
4. checks the inbox: every accepted event stored exactly once, every redelivery answered with the
   event id of its original, and waits for the dispatcher to create every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _load(url: str, requests: list[tuple[bytes, dict[str, str]] | None], concurrency: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    answers: list[tuple[int, dict[str, Any] | None]] = [(0, None)] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                item = requests[index]
                started = time.perf_counter()
                try:
                    if item is None:
                        response = await client.get(url)
                    else:
                        response = await client.post(url, content=item[0], headers=item[1])
                    status = response.status_code
                    body = response.json() if item is not None and status < 500 else None
                except httpx.HTTPError:
                    status, body = 599, None
                latencies.append((time.perf_counter() - started) * 1000)
                answers[index] = (status, body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "answers": answers}


def load_main(args: argparse.Namespace) -> None:
    """The load generator (run as its own process): prints one JSON result line."""
    from include.sandbox.bamboohr_sender import sample_hire, signed_headers

    key = os.environ["OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY"]
    rng = random.Random(42)  # noqa: S311 - reproducible choice of redeliveries, not security
    deliveries: list[tuple[bytes, dict[str, str]] | None] = []
    originals: list[int] = []
    duplicate_of: dict[int, int] = {}
    for index in range(args.requests):
        if originals and rng.random() < 0.10:
            source = rng.choice(originals)
            duplicate_of[index] = source
            body = deliveries[source][0]  # type: ignore[index]
        else:
            originals.append(index)
            payload = sample_hire(employee_id=uuid.uuid4().hex[:12])
            body = json.dumps(payload).encode()
        deliveries.append((body, signed_headers(body, key)))

    # The ceiling first, on an idle server; the webhook burst after it (its runs are created afterwards).
    ceiling = asyncio.run(_load(args.url + "/officeflow/health/live", [None] * args.requests, args.concurrency))
    webhook = asyncio.run(_load(args.url + "/officeflow/webhooks/bamboohr", deliveries, args.concurrency))

    accepted = {i: body for i, (status, body) in enumerate(webhook["answers"]) if status == 202}
    mismatched = [i for i, src in duplicate_of.items()
                  if i in accepted and src in accepted and accepted[i]["event_id"] != accepted[src]["event_id"]]
    statuses: dict[str, int] = {}
    for status, _ in webhook["answers"]:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    print(json.dumps({
        "webhook": {"elapsed": webhook["elapsed"], "latencies": webhook["latencies"], "statuses": statuses},
        "ceiling": {"elapsed": ceiling["elapsed"], "latencies": ceiling["latencies"]},
        "accepted_event_ids": sorted({body["event_id"] for body in accepted.values()}),
        "unique_events_sent": len(originals),
        "duplicates_sent": len(duplicate_of),
        "duplicate_id_mismatches": len(mismatched),
    }))


def report(name: str, part: dict[str, Any], count: int) -> str:
    lat = part["latencies"]
    return (f"{name:<26} {count / part['elapsed']:8.0f} req/s   p50 {statistics.median(lat):6.1f} ms   "
            f"p95 {percentile(lat, 0.95):6.1f} ms   p99 {percentile(lat, 0.99):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="api-server worker processes")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return

    from sqlalchemy import create_engine, text

    from include.officeflow.store import migrate
    from tests.conftest import base_environment
    from tests.harness.airflow_platform import AirflowPlatform
    from tests.harness.postgres import PostgresCluster

    cluster = PostgresCluster().start()
    server = None
    try:
        home = Path(tempfile.mkdtemp(prefix="officeflow-gateway-bench-"))
        env = base_environment(home, cluster.create_database("airflow"), cluster.create_database("officeflow"))
        env["OFFICEFLOW_WEBHOOK_DEFAULT_RATE_LIMIT_PER_MINUTE"] = str(10**8)
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
        os.environ.update(env)
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=dict(os.environ), check=True, capture_output=True)
        subprocess.run([airflow, "dags", "reserialize"], env=dict(os.environ), check=True, capture_output=True)
        migrate(os.environ["OFFICEFLOW_DB_URL"])
        server = AirflowPlatform(env, smtp_port=1)
        server.start(components=("api-server",), api_server_args=("--workers", str(args.workers)))

        load = subprocess.run(
            [sys.executable, __file__, "--load", "--url", server.base_url, "--requests", str(args.requests),
             "--concurrency", str(args.concurrency)],
            env=dict(os.environ), check=True, capture_output=True, text=True,
        )
        result = json.loads(load.stdout.strip().splitlines()[-1])

        engine = create_engine(os.environ["OFFICEFLOW_DB_URL"])
        drain_started = time.monotonic()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT id FROM webhook_events")).scalars().all()
            pending_at_end = conn.execute(text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")).scalar()
            while time.monotonic() < drain_started + 900:
                pending = conn.execute(text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")).scalar()
                if not pending:
                    break
                time.sleep(1)
            by_status = dict(conn.execute(text("SELECT status, count(*) FROM webhook_events GROUP BY status")).all())
        drain_seconds = time.monotonic() - drain_started
        engine.dispose()

        statuses = result["webhook"]["statuses"]
        print(f"machine: {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}, "
              f"api-server workers {args.workers}, concurrency {args.concurrency}, {args.requests} requests")
        print(report("webhook (signed, stored)", result["webhook"], args.requests))
        print(report("health/live (ceiling)", result["ceiling"], args.requests))
        print(f"answers: {statuses}   unique events sent {result['unique_events_sent']}, "
              f"redeliveries {result['duplicates_sent']}")
        accepted_ids = set(result["accepted_event_ids"])
        print(f"inbox: {len(stored)} rows; every accepted event stored once: {accepted_ids == set(stored)}; "
              f"redeliveries answered with another event id: {result['duplicate_id_mismatches']}; "
              f"after dispatch: {by_status}")
        print(f"dispatcher: {pending_at_end} runs still owed when the burst ended, created in {drain_seconds:.0f} s "
              f"({(pending_at_end or 0) / max(drain_seconds, 0.001):.0f} runs/s)")
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
