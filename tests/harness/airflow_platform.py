"""Real Airflow processes (api-server, scheduler, dag-processor, triggerer) for end-to-end tests,
plus OfficeFlow's own ``dispatcher`` process when a test runs the gateway in external mode."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness.auth_users import INSIGHTS_USER, PASSWORD
from tests.harness.ports import free_port

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowPlatform:
    """OfficeFlow as deployed: Airflow's components with the plugin, on the given databases."""

    def __init__(self, env: dict[str, str], smtp_port: int) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="officeflow-e2e-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = PASSWORD  # every test user's (tests/harness/auth_users.py); admin is the Admin role's
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            **env,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "OFFICEFLOW_HOME": str(self.home / "officeflow"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # workflow_insights reads the run history through this api-server as the read-only test user.
            "AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API": json.dumps({
                "conn_type": "http", "host": self.base_url, "login": INSIGHTS_USER, "password": PASSWORD}),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "people@officeflow.test",
                          "timeout": 10, "retry_limit": 1},
            }),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self._api_server_args: tuple[str, ...] = ()

    def start(self, timeout: float = 240, components: tuple[str, ...] = COMPONENTS,
              api_server_args: tuple[str, ...] = ()) -> AirflowPlatform:
        self._api_server_args = api_server_args
        for name in components:
            self.spawn(name)
        self.wait_ready(timeout)
        return self

    def spawn(self, name: str) -> None:
        """Start one component (again: its log is appended to)."""
        airflow = str(Path(sys.executable).with_name("airflow"))
        args = [airflow, name]
        if name == "dispatcher":
            args = [sys.executable, "-m", "plugins.officeflow_gateway.dispatcher"]
        elif name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), *self._api_server_args]
        log = (self.home / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process it started (a crash, as far as it can tell)."""
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(timeout=30)

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.ready():
                return
            time.sleep(1)
        raise RuntimeError(f"Airflow did not become ready in {timeout}s\n{self.logs_tail()}")

    def ready(self) -> bool:
        """The api-server answers: ready, and the DAGs are parsed."""
        try:
            if httpx.get(f"{self.base_url}/officeflow/health/ready", timeout=5).status_code != 200:
                return False
            return self.api("GET", "/api/v2/dags/employee_onboarding").status_code == 200
        except httpx.HTTPError:
            return False

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs_tail()}")

    def token(self) -> str:
        if self._token is None:
            response = httpx.post(f"{self.base_url}/auth/token",
                                  json={"username": "admin", "password": self.password}, timeout=10)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def _poll(self, path: str) -> httpx.Response | None:
        """One GET of a wait loop; None when the answer took longer than :meth:`api`'s 30 s (a machine loaded by
        task processes starting): the loop asks again until its own deadline, as for any other not-yet answer."""
        try:
            return self.api("GET", path)
        except httpx.TimeoutException:
            return None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
        """Poll the REST API until the run finishes; return the run."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self._poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if response is not None and response.status_code == 200:
                run = response.json()
                if run["state"] in ("success", "failed"):
                    return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} not finished after {timeout}s: {run}\n"
                             f"{self.task_states(dag_id, run_id)}\n{self.logs_tail()}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (the REST API knows it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self._poll(f"/api/v2/dags/{dag_id}")
            if response is not None and response.status_code == 200:
                return
            time.sleep(1)
        raise AssertionError(f"{dag_id} not parsed after {timeout}s\n{self.logs_tail()}")

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, timeout: float = 180) -> str:
        """Poll until the task instance finishes (or waits for a person); return its state."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            response = self._poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
            state = response.json().get("state") if response is not None and response.status_code == 200 else state
            if state in ("success", "failed", "upstream_failed", "skipped", "awaiting_input"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"{dag_id}/{run_id}/{task_id} still {state} after {timeout}s\n"
                             f"{self.task_states(dag_id, run_id)}\n{self.logs_tail()}")

    def settle(self, dag_id: str, run_id: str) -> None:
        """Mark a run that waits for a person (an approval nobody will give in this test) as done."""
        response = self.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "success"})
        assert response.status_code == 200, response.text

    def task_states(self, dag_id: str, run_id: str) -> str:
        """``task_id[map_index]: state (try n)`` per task instance of the run, for failure messages."""
        response = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        if response.status_code != 200:
            return f"(task instances unavailable: {response.status_code})"
        return "\n".join(f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} (try {ti['try_number']})"
                         for ti in response.json()["task_instances"])

    def logs_tail(self, lines: int = 40) -> str:
        out = []
        for name in self.processes or COMPONENTS:
            path = self.home / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"----- {name} -----\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 15)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
        if os.environ.get("OFFICEFLOW_E2E_KEEP_HOME"):  # debugging: keep the task logs
            print(f"e2e platform home kept: {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)
