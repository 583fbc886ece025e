"""The environment of every test run: paths, keys, and Airflow's and OfficeFlow's configuration.

Airflow reads its configuration when first imported, so ``tests/conftest.py`` sets this environment in
``pytest_configure``, before any test module (and so Airflow) is imported. The e2e platform and the
benchmarks pass the same environment to the Airflow processes they start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS = REPO_ROOT / "tests" / "unit"
BAMBOOHR_TEST_KEY = "test-bamboohr-private-key-0123456789abcdef"


def base_environment(airflow_home: Path, airflow_db: str, store_db: str) -> dict[str, str]:
    """Environment shared by in-process tests and the Airflow processes of the e2e tests."""
    return {
        "PYTHONPATH": str(REPO_ROOT),
        "OFFICEFLOW_ENV": "test",
        "OFFICEFLOW_ENV_FILE": os.devnull,  # a developer's .env must not leak into tests
        "OFFICEFLOW_HOME": str(airflow_home / "officeflow"),
        "OFFICEFLOW_DB_URL": store_db,
        "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY": BAMBOOHR_TEST_KEY,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-that-is-long-enough-for-hs512-0123456789abcdefghijklmnop",
        "AIRFLOW__CORE__FERNET_KEY": "Z3YbTGZ2Tq2zJ8pVJ3s0C9xkq6mUu2o2XqFz1pF1b3c=",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__AUTH_MANAGER": "plugins.officeflow_auth.manager.OfficeFlowFabAuthManager",
        "AIRFLOW__FAB__CONFIG_FILE": str(REPO_ROOT / "config" / "webserver_config.py"),
        "OFFICEFLOW_DISPATCH_POLL_SECONDS": "1",
    }


def unit_environment(airflow_home: Path) -> dict[str, str]:
    """:func:`base_environment` with SQLite files in ``airflow_home`` for Airflow's DB and the store.

    For runs of ``tests/unit`` only: nothing migrates them, so a unit test that touches a database fails
    (it belongs in tests/integration)."""
    return base_environment(airflow_home, f"sqlite:///{airflow_home / 'airflow.db'}",
                            f"sqlite:///{airflow_home / 'officeflow.db'}")


def needs_services(args: Iterable[str], invocation_dir: Path) -> bool:
    """Whether a run of these pytest ``args`` (the paths given, or ``testpaths``) includes anything outside
    ``tests/unit``: only then are PostgreSQL and the other services started.

    ``tests/unit``, ``tests/unit/include`` or ``tests/unit/include/test_hires.py::test_x`` need none;
    ``tests``, ``tests/integration`` or any other path do, and so does a run with no path at all."""
    paths = [arg.split("::", 1)[0] for arg in args]
    if not paths:
        return True
    for path in paths:
        resolved = (invocation_dir / path).resolve()
        if resolved != UNIT_TESTS and UNIT_TESTS not in resolved.parents:
            return True
    return False
