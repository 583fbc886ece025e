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


def api_token(username: str) -> str:
    """An Airflow JWT for the test user ``username`` (tests/harness/auth_users.py)."""
    from tests.harness.auth_users import api_token as token

    return token(username)
