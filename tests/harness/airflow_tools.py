"""In-process Airflow helpers: the ``airflow`` CLI in a subprocess, and JWTs for the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_airflow(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run an ``airflow`` CLI command in a subprocess; fail the test with its output on error."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), *args], env=env or dict(os.environ), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def api_token(role: str) -> str:
    """An Airflow JWT for a Simple-auth-manager user with ``role`` (admin, op, viewer)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return create_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"test-{role}", role=role))
