"""Gateway throughput benchmark: signed BambooHR deliveries against a running api-server on PostgreSQL.

    ./run.sh bench-gateway                         # or:
    PYTHONPATH=. .venv/bin/python bench/gateway_bench.py --seconds 20 --connections 32

What it does, all on 127.0.0.1:
1. starts a throw-away PostgreSQL, migrates Airflow's metadata DB and the OfficeFlow store, serialises
   the DAGs, and starts ``airflow api-server`` with the OfficeFlow plugin (no scheduler: runs are
   created by the gateway's dispatcher but not executed, so the machine measures the gateway);
2. measures ``GET /officeflow/health/live`` (a FastAPI route in the same server that does nothing)
   with ``wrk`` as the ceiling;
3. pre-signs ``--events`` distinct deliveries (valid for the 300 s replay window) and replays them with
   ``wrk`` (a separate process, keep-alive connections) for ``--seconds``; requests past the end of the
   list repeat earlier events, i.e. redeliveries that must be merged;
4. checks the inbox: one row per distinct event sent, no error answers, and waits for the
   dispatcher to create every run (the drain rate is Airflow's run creation, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def wrk(url: str, seconds: int, connections: int, script: list[str] | None = None) -> dict[str, float | str]:
    """Run wrk and parse requests/s, latency percentiles and error counts from its report."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", script[0], url, "--", *script[1:]]
    else:
        command.append(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", report, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = re.search(r"(\d+) requests in", report)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    socket_errors = re.search(r"Socket errors: (.*)", report)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),  # type: ignore[union-attr]
        "requests": float(requests.group(1)) if requests else 0.0,
        "p50": millis("50"), "p90": millis("90"), "p99": millis("99"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "wrk_cpu": wrk_cpu,
    }


def cpu_by_process(api_server_session: int) -> dict[str, float]:
    """CPU seconds used so far, grouped: api-server (its process and workers), postgres, wrk.

    Read from /proc (utime + stime of live processes), so a process that exited is not counted;
    the server keeps its pooled connections, so its PostgreSQL backends stay alive.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    groups: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, session, ...
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        if int(fields[3]) == api_server_session:
            name = "api-server"
        elif cmdline.startswith("postgres") or "/postgres " in cmdline:
            name = "postgres"
        elif cmdline.startswith("wrk"):
            name = "wrk"
        else:
            continue
        groups[name] = groups.get(name, 0.0) + seconds
    return groups


def line(name: str, result: dict[str, float | str]) -> str:
    return (f"{name:<26} {result['rps']:8.0f} req/s   p50 {result['p50']:6.1f} ms   p90 {result['p90']:6.1f} ms   "
            f"p99 {result['p99']:6.1f} ms   non-2xx {result['non_2xx']:.0f}   socket errors {result['socket_errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=1500,
                        help="distinct pre-signed deliveries; fewer than the requests sent, so the rest are "
                        "redeliveries that must be merged")
    parser.add_argument("--workers", type=int, default=1, help="api-server worker processes")
    parser.add_argument("--dispatcher", choices=("embedded", "external"), default="external",
                        help="embedded: runs are created by a thread in the api-server; external: by the "
                        "dispatcher process (started after the load, so the measurement is the api-server's)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk; ./run.sh bench-gateway installs it)")

    from sqlalchemy import create_engine, text

    from include.officeflow.store import migrate
    from sandbox.bamboohr.samples import sample_hire
    from sandbox.bamboohr.sender import signed_headers
    from tests.harness.airflow_platform import AirflowPlatform
    from tests.harness.environment import base_environment
    from tests.harness.postgres import PostgresCluster

    cluster = PostgresCluster().start()
    server = None
    try:
        home = Path(tempfile.mkdtemp(prefix="officeflow-gateway-bench-"))
        env = base_environment(home, cluster.create_database("airflow"), cluster.create_database("officeflow"))
        env["OFFICEFLOW_WEBHOOK_DEFAULT_RATE_LIMIT_PER_MINUTE"] = str(10**8)
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
        env["OFFICEFLOW_DISPATCHER_MODE"] = args.dispatcher
        os.environ.update(env)
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=dict(os.environ), check=True, capture_output=True)
        subprocess.run([airflow, "dags", "reserialize"], env=dict(os.environ), check=True, capture_output=True)
        migrate(os.environ["OFFICEFLOW_DB_URL"])
        server = AirflowPlatform(env, smtp_port=1)
        server.start(components=("api-server",), api_server_args=("--workers", str(args.workers)))

        ceiling = wrk(server.base_url + "/officeflow/health/live", args.seconds, args.connections)

        key = os.environ["OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY"]
        deliveries = home / "deliveries.tsv"
        with deliveries.open("w") as out:
            for _ in range(args.events):
                body = json.dumps(sample_hire(employee_id=uuid.uuid4().hex[:12])).encode()
                headers = signed_headers(body, key)
                out.write(f"{headers['X-BambooHR-Timestamp']}\t{headers['X-BambooHR-Signature']}\t"
                          f"{body.decode()}\n")
        script = str(Path(__file__).with_name("signed_deliveries.lua"))
        session = server.processes["api-server"].pid  # started in its own session
        cpu_before = cpu_by_process(session)
        webhook = wrk(server.base_url, args.seconds, args.connections, [script, str(deliveries)])
        cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in cpu_by_process(session).items()}
        cpu["wrk"] = float(webhook["wrk_cpu"])

        time.sleep(2)  # requests in flight when wrk stopped still complete
        if args.dispatcher == "external":
            server.start(components=("dispatcher",))
        engine = create_engine(os.environ["OFFICEFLOW_DB_URL"])
        drain_started = time.monotonic()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM webhook_events")).scalar() or 0
            owed = conn.execute(text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")).scalar() or 0
            while time.monotonic() < drain_started + 1200:
                if not conn.execute(text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")).scalar():
                    break
                time.sleep(1)
            by_status = dict(conn.execute(text("SELECT status, count(*) FROM webhook_events GROUP BY status")).all())
        drain_seconds = time.monotonic() - drain_started
        engine.dispose()

        sent = int(webhook["requests"])
        distinct = min(sent, args.events)  # wrk's count excludes the few requests still in flight at its end
        print(f"machine: {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}; "
              f"api-server workers {args.workers}; wrk 1 thread, {args.connections} connections, {args.seconds} s each")
        print(line("health/live (ceiling)", ceiling))
        print(line("webhook (signed, stored)", webhook))
        print("CPU during the webhook run (s of CPU per wall second): " + ", ".join(
            f"{name} {seconds / args.seconds:.2f}" for name, seconds in sorted(cpu.items(), key=lambda i: -i[1])))
        print(f"inbox: {stored} rows for {distinct} distinct events in {sent} deliveries "
              f"({sent - distinct} redeliveries); one row per event: "
              f"{stored == args.events if sent >= args.events else distinct <= stored <= distinct + args.connections}")
        print(f"dispatcher: {owed} runs owed when the load ended, all created after {drain_seconds:.0f} s "
              f"({owed / max(drain_seconds, 0.001):.1f} runs/s); final statuses {by_status}")
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
