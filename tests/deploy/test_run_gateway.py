"""`./run.sh gateway`, the standalone edge gateway (plugins/officeflow_gateway/edge.py) as a developer starts it, for
real: run.sh's own process, which execs ``python -m plugins.officeflow_gateway.edge`` on a free port of 127.0.0.1 with
two uvicorn workers, on a migrated store and Airflow metadata DB (the session's PostgreSQL) in dev's default dispatcher
mode (embedded): its health, its metrics summed over both workers, and the sample delivery its banner prints stored in
that store and its DAG run created; a store that is not migrated stops it with what to do. And the chart, compose and
run.sh start the same command. The chart's objects: test_chart.py; compose: test_compose.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.chart import find, render
from tests.harness.ports import free_port
from tests.harness.processes import stop_process
from tests.harness.tools import ROOT
from tests.harness.waiting import wait_until

RUN_SH = ROOT / "run.sh"
EDGE = ["python", "-m", "plugins.officeflow_gateway.edge"]


def test_run_sh_lists_the_gateway_command_and_runs_it():
    usage = subprocess.run([RUN_SH, "help"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^  gateway +Run the standalone edge gateway", usage, re.M), usage
    assert "OFFICEFLOW_GATEWAY_PORT" in usage
    assert re.search(r'^  gateway\) shift; cmd_gateway "\$@" ;;$', RUN_SH.read_text(), re.M)


def test_one_command_starts_the_edge_in_run_sh_the_chart_and_compose():
    assert re.search(rf"^  exec {' '.join(EDGE)}$", RUN_SH.read_text(), re.M)
    container = find(render("--set", "gateway.enabled=true"), "Deployment", "officeflow-gateway")[
        "spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tini", "--"] and container["args"] == EDGE
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]["gateway"]
    assert compose["entrypoint"] == ["tini", "--", *EDGE] and compose["command"] == []


@contextmanager
def run_sh_gateway(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``./run.sh gateway`` with ``env``, its output in a file; stopped (SIGTERM, then SIGKILL) afterwards."""
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(RUN_SH), "gateway"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        stop_process(process, timeout=30)


def gateway_env(tmp_path: Path, store_url: str, port: int) -> dict[str, str]:
    env = {**os.environ, "OFFICEFLOW_HOME": str(tmp_path / "home"), "OFFICEFLOW_DB_URL": store_url,
           "OFFICEFLOW_GATEWAY_HOST": "127.0.0.1", "OFFICEFLOW_GATEWAY_PORT": str(port),
           "OFFICEFLOW_GATEWAY_WORKERS": "2",
           # dev's default: each edge process creates the runs of what it accepts (a dispatcher thread)
           "OFFICEFLOW_DISPATCHER_MODE": "embedded"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # run.sh gives several workers a folder of their own
    return env


def test_run_sh_gateway_serves_health_metrics_and_deliveries_on_the_dev_setup(tmp_path, store, airflow_db):
    port = free_port()
    env = gateway_env(tmp_path, store, port)
    base = f"http://127.0.0.1:{port}/officeflow"
    with run_sh_gateway(tmp_path, env) as (process, log):
        def live() -> bool:
            assert process.poll() is None, f"./run.sh gateway exited {process.returncode}\n{log.read_text()[-3000:]}"
            try:
                return httpx.get(f"{base}/health/live", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        wait_until(live, timeout=180, what="./run.sh gateway to answer /officeflow/health/live", interval=0.5,
                   detail=lambda: log.read_text()[-3000:])
        # run.sh execs the edge: the process the test started is python -m plugins.officeflow_gateway.edge
        assert Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", EDGE[2].encode()]
        banner = log.read_text()
        assert f"OfficeFlow edge gateway on {base}" in banner
        assert "created in this process (OFFICEFLOW_DISPATCHER_MODE=embedded)" in banner

        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert {c["name"] for c in ready.json()["checks"]} == {"officeflow_store", "airflow_metadata_db"}
        answered = 1 + sum(httpx.get(f"{base}/health/live", timeout=5).status_code == 200 for _ in range(8))

        # the banner's sample delivery, verbatim: signed with the configured key, stored in the store run.sh named
        [sample] = re.findall(r"Sample webhook +(\./run\.sh webhook .*)$", banner, re.M)
        sent = subprocess.run(["bash", "-c", sample], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0 and "HTTP 202" in sent.stdout, sent.stdout + sent.stderr
        accepted = json.loads(sent.stdout[sent.stdout.index("{"):])
        event = wait_until(lambda: triggered(store, accepted["event_id"]), timeout=60, interval=0.5,
                           what="the edge's dispatcher to create the delivery's run")
        assert event == ("bamboohr", accepted["correlationId"], "employee_onboarding", accepted["dag_run_id"])
        engine = sa.create_engine(airflow_db)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM dag_run WHERE dag_id = :dag AND run_id = :run"),
                                    {"dag": event[2], "run": event[3]}).scalar() == 1
        finally:
            engine.dispose()

        # two workers, one sum: whichever answers the scrape counts every worker's requests (multiprocess mode)
        scrape = httpx.get(f"{base}/metrics", timeout=10)
        assert scrape.status_code == 200
        counted = {(s.labels["route"], s.labels["status_code"]): s.value
                   for family in text_string_to_metric_families(scrape.text)
                   if family.name == "officeflow_http_requests" for s in family.samples if s.name.endswith("_total")}
        assert counted[("/health/live", "200")] == answered
        assert counted[("/webhooks/{endpoint_id}", "202")] == 1
    assert (tmp_path / "home" / "gateway-metrics").is_dir()


def triggered(store: str, event_id: str) -> tuple | None:
    """The stored event's endpoint, correlation id, DAG and run id once the dispatcher has created its run."""
    engine = sa.create_engine(store)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT endpoint_id, correlation_id, dag_id, dag_run_id, status"
                                       " FROM webhook_events WHERE id = :id"), {"id": event_id}).one()
    finally:
        engine.dispose()
    return tuple(row[:4]) if row.status == "triggered" else None


def test_run_sh_gateway_says_what_to_do_when_the_store_is_not_migrated(tmp_path):
    port = free_port()
    env = gateway_env(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}", port)
    with run_sh_gateway(tmp_path, env) as (process, log):
        assert process.wait(timeout=120) == 1
    out = log.read_text()
    assert "not migrated" in out and "start ./run.sh dev once" in out and "./run.sh migrate" in out, out
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/officeflow/health/live", timeout=2)
