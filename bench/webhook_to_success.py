"""Benchmark: signed BambooHR webhook -> employee_onboarding run success, on real Airflow + PostgreSQL.

Baseline measured in the same run and on the same platform: the same DAG started through Airflow's
own REST API (``POST /api/v2/dags/employee_onboarding/dagRuns``). The difference is what the
gateway (verify, store, trigger) adds end to end. Also times the gateway's 202 answer itself
against Airflow's REST create-run answer (the same trigger work without verify/store) and
``GET /officeflow/health/live`` (the same server doing no work).

The DAG is the full workflow: the platform (with the SaaS sandbox, SMTP sink and Slack signing
secret) comes from bench/onboarding_runtime.py, and each timed run's equipment approval is clicked
through in Slack as soon as it is asked, on both paths.

    ./run.sh bench            # or: PYTHONPATH=. .venv/bin/python bench/webhook_to_success.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import platform as host
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.onboarding_runtime import (  # noqa: E402
    OnboardingPlatform,
    click_approve,
    finished_run,
    hire_conf,
    onboarding_platform,
    trigger,
)
from tests.harness.gateway import hire_body, signed  # noqa: E402


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered):7.3f}  p95 {p95:7.3f}  "
            f"min {ordered[0]:7.3f}  max {ordered[-1]:7.3f}  (n={len(ordered)})")


def wait_success(running: OnboardingPlatform, run_id: str) -> None:
    """Approve the run's equipment request in Slack as soon as it is asked, then wait for success."""
    click_approve(running, run_id)
    run = finished_run(running.airflow, "employee_onboarding", run_id)
    if run["state"] != "success":
        raise SystemExit(f"run {run_id} ended {run['state']}\n{running.airflow.logs_tail()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs per path (webhook and REST baseline)")
    parser.add_argument("--requests", type=int, default=100, help="HTTP requests for the 202 latency part")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop and delete the platform on SIGTERM too
    with onboarding_platform() as running:
        platform = running.airflow
        webhook_url = platform.base_url + "/officeflow/webhooks/bamboohr"

        # Interleave the two paths so both see the same machine load.
        webhook_s, rest_s = [], []
        for i in range(args.runs):
            employee_id = str(uuid.uuid4().int % 10**9)
            body = hire_body(employee_id, f"bench-{employee_id}@officeflow.test")
            started = time.perf_counter()
            response = httpx.post(webhook_url, content=body, headers=signed(body), timeout=30)
            response.raise_for_status()
            wait_success(running, response.json()["dag_run_id"])
            webhook_s.append(time.perf_counter() - started)

            started = time.perf_counter()
            wait_success(running, trigger(platform, "employee_onboarding", hire_conf(i)))
            rest_s.append(time.perf_counter() - started)

        # Runs created here are not waited for (nor approved): only the answer times count.
        accept_ms, rest_ms, live_ms = [], [], []
        with httpx.Client(timeout=30) as client:
            for i in range(args.requests):
                body = hire_body(str(uuid.uuid4().int % 10**9))
                started = time.perf_counter()
                client.post(webhook_url, content=body, headers=signed(body)).raise_for_status()
                accept_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                trigger(platform, "employee_onboarding", hire_conf(i))
                rest_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                client.get(platform.base_url + "/officeflow/health/live").raise_for_status()
                live_ms.append((time.perf_counter() - started) * 1000)

        print(f"machine: {host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}")
        print(f"webhook -> run success (s)      {summary(webhook_s)}")
        print(f"REST API -> run success (s)     {summary(rest_s)}   <- baseline")
        print(f"webhook 202 answer (ms)         {summary(accept_ms)}")
        print(f"REST API create-run answer (ms) {summary(rest_ms)}   <- baseline (same work, no verify/store)")
        print(f"health/live answer (ms)         {summary(live_ms)}   <- baseline (no work)")


if __name__ == "__main__":
    main()
