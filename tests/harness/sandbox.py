"""The integration sandbox (the top-level sandbox package) as a real HTTP server process on a free port."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.credentials import SandboxSetup, generate
from tests.harness.ports import free_port
from tests.harness.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]


class SandboxServer:
    """``python -m sandbox`` with freshly generated credentials; stopped by :meth:`stop`."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="officeflow-sandbox-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_port = free_port()
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"  # the same app over TLS (the Microsoft connection)
        self.setup: SandboxSetup = generate(self.home, self.url, tls_base_url=self.tls_url)
        self.ca_file = self.home / "tls-ca.pem"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=10)

    @property
    def connections(self) -> dict[str, dict[str, Any]]:
        return self.setup.connections

    def env(self) -> dict[str, str]:
        return self.setup.env()

    def start(self, timeout: float = 30) -> SandboxServer:
        log = (self.home / "sandbox.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(self.port),
             "--tls-port", str(self.tls_port), "--credentials", str(self.setup.credentials_file)],
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.client.get("/_sandbox/health").status_code == 200 and httpx.get(
                        f"{self.tls_url}/_sandbox/health", verify=self.tls_context(), timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"sandbox not ready after {timeout}s:\n{self.log()}")

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the sandbox's CA (only)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log(self) -> str:
        path = self.home / "sandbox.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- control API ---------------------------------------------------------------------------
    def state(self, service: str) -> dict[str, Any]:
        response = self.client.get(f"/_sandbox/state/{service}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def requests(self, service: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/_sandbox/requests/{service}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def reset(self, service: str | None = None) -> None:
        self.client.post("/_sandbox/reset", params={"service": service} if service else None).raise_for_status()

    def fault(self, service: str, **rule: Any) -> None:
        self.client.post("/_sandbox/faults", json={"service": service, **rule}).raise_for_status()

    def pending_faults(self) -> list[dict[str, Any]]:
        """The injected faults no request has met yet."""
        response = self.client.get("/_sandbox/faults")
        response.raise_for_status()
        return response.json()["pending"]  # type: ignore[no-any-return]

    # --- BambooHR's side: its employee API, as an HR admin changes the records ------------------------
    def bamboohr(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the sandbox's BambooHR API (``path`` below ``.../v1/``) with its API key."""
        conn = self.connections["officeflow_bamboohr"]
        response = self.client.request(method, f"{conn['host'].removeprefix(self.url)}/{path}",
                                       auth=(conn["login"], "x"), **kwargs)
        response.raise_for_status()
        return response

    def add_bamboohr_employee(self, **fields: Any) -> str:
        """Add an employee (BambooHR's ``POST employees/``); their new id."""
        location = self.bamboohr("POST", "employees/", json=fields).headers["Location"]
        return location.rstrip("/").rsplit("/", 1)[1]

    def update_bamboohr_employee(self, employee_id: str, **fields: Any) -> None:
        self.bamboohr("POST", f"employees/{employee_id}/", json=fields)

    def delete_bamboohr_employee(self, employee_id: str) -> None:
        """What an admin's Delete in BambooHR's UI does (the API has none): reads answer 404 from now on."""
        self.client.delete(f"/bamboohr/sandbox/employees/{employee_id}").raise_for_status()

    # --- Workday's side: the workers report (RaaS), as an HR admin changes the workers ------------------
    def workday(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the sandbox's Workday service (``path`` below ``/workday/``); raises on an error status."""
        response = self.client.request(method, f"/workday/{path.lstrip('/')}", **kwargs)
        response.raise_for_status()
        return response

    def workday_workers(self) -> list[dict[str, Any]]:
        """The workers report's entries (RaaS JSON) read as OfficeFlow's integration system user."""
        conn = self.connections["officeflow_workday"]
        response = self.client.get(conn["host"].removeprefix(self.url), params={"format": "json"},
                                   auth=(conn["login"], conn["password"]))
        response.raise_for_status()
        return response.json()["Report_Entry"]  # type: ignore[no-any-return]

    def put_workday_worker(self, worker_id: str, **columns: Any) -> dict[str, Any]:
        """What an HR admin's change in Workday's UI does: ``columns`` merged into the worker (created if new;
        ``None`` removes a column); the worker's entry as the report gives it."""
        return self.workday("PUT", f"sandbox/workers/{worker_id}", json=columns).json()  # type: ignore[no-any-return]

    def delete_workday_worker(self, worker_id: str) -> None:
        """The worker gone from the report."""
        self.workday("DELETE", f"sandbox/workers/{worker_id}")

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)
        shutil.rmtree(self.home, ignore_errors=True)
