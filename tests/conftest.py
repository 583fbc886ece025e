"""Test harness: one real PostgreSQL cluster for the session, Airflow configured to use it.

Airflow reads its configuration when first imported, so the cluster is started and the
environment set in ``pytest_configure``, before any test module (and so Airflow) is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.postgres import PostgresCluster
from tests.harness.redis import RedisServer
from tests.harness.s3 import S3Server
from tests.harness.sandbox import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[1]
BAMBOOHR_TEST_KEY = "test-bamboohr-private-key-0123456789abcdef"
_cluster: PostgresCluster | None = None


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
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,operator:op,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "OFFICEFLOW_DISPATCH_POLL_SECONDS": "1",
    }


def pytest_configure(config: pytest.Config) -> None:
    global _cluster
    if hasattr(config, "workerinput"):
        return
    _cluster = PostgresCluster().start()
    _cluster.create_database("airflow")
    _cluster.create_database("officeflow")
    home = Path(tempfile.mkdtemp(prefix="officeflow-airflow-home-"))
    os.environ.update(base_environment(home, _cluster.url("airflow"), _cluster.url("officeflow")))


def pytest_unconfigure(config: pytest.Config) -> None:
    dispatcher_module = sys.modules.get("plugins.officeflow_gateway.dispatcher")
    if dispatcher_module is not None:  # stop its thread before the database it polls goes away
        dispatcher_module.dispatcher.stop()
    if _cluster is not None:
        _cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> PostgresCluster:
    assert _cluster is not None
    return _cluster


def run_airflow(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run an ``airflow`` CLI command in a subprocess; fail the test with its output on error."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), *args], env=env or dict(os.environ), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def airflow_db(postgres: PostgresCluster) -> str:
    """Airflow's metadata DB migrated, with OfficeFlow's DAGs serialised; returns its URL.

    A pristine copy (``airflow_template``) is taken right after migration for the e2e tests.
    """
    run_airflow("db", "migrate")
    postgres.create_database("airflow_template", template="airflow")
    run_airflow("dags", "reserialize")
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The integration sandbox (sandbox/) as a real server process for the session."""
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """A clean sandbox (state, request log and faults reset) and its Airflow connections in the env."""
    sandbox_server.reset()
    for name, value in sandbox_server.env().items():
        monkeypatch.setenv(name, value)
    return sandbox_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis on 127.0.0.1 (free port) for the session."""
    server = RedisServer().start()
    yield server
    server.stop()


def api_token(role: str) -> str:
    """An Airflow JWT for a Simple-auth-manager user with ``role`` (admin, op, viewer)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return create_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"test-{role}", role=role))


@pytest.fixture
def auth_headers() -> Callable[[str], dict[str, str]]:
    """``auth_headers("admin")`` -> a Bearer header for that role."""
    return lambda role: {"Authorization": f"Bearer {api_token(role)}"}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 server process (MinIO, tests/harness/s3.py) for the session:
    buckets ``officeflow-docs-versioned`` (versioning on) and ``officeflow-docs-plain``, and the Airflow
    ``aws`` connection ``officeflow_s3`` (AIRFLOW_CONN_OFFICEFLOW_S3, endpoint_url in its extra)."""
    server = S3Server().start()
    previous = {name: os.environ.get(name) for name in server.env()}
    os.environ.update(server.env())
    yield server
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture(scope="session")
def store_url(postgres: PostgresCluster) -> str:
    """The OfficeFlow store on PostgreSQL, migrated to head."""
    from include.officeflow.store import migrate

    url = os.environ["OFFICEFLOW_DB_URL"]
    migrate(url)
    return url


@pytest.fixture
def clean_store(store_url: str) -> Iterator[str]:
    """An empty store for one test."""
    from sqlalchemy import text

    from include.officeflow.store import get_engine

    with get_engine(store_url).begin() as conn:
        conn.execute(text("TRUNCATE webhook_events, audit_log, webhook_endpoints"))
    yield store_url


class SettingsEnv:
    """``monkeypatch`` for OFFICEFLOW_* variables that also refreshes the settings cache, race-free.

    The dispatcher thread calls ``get_settings()`` at any time; a load that read the environment
    before a change could land in the cache after a plain ``cache_clear()``, so each change is
    followed by clearing until the cached settings equal a fresh load.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    @staticmethod
    def settle() -> None:
        from include.officeflow.settings import ConfigurationError, get_settings, load_settings

        for _ in range(100):
            get_settings.cache_clear()
            try:
                if get_settings() == load_settings():
                    return
            except ConfigurationError:
                get_settings.cache_clear()
                return

    def setenv(self, name: str, value: str) -> None:
        self._monkeypatch.setenv(name, value)
        self.settle()

    def delenv(self, name: str, raising: bool = True) -> None:
        self._monkeypatch.delenv(name, raising=raising)
        self.settle()

    def undo(self) -> None:
        self._monkeypatch.undo()
        self.settle()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsEnv]:
    """Change OFFICEFLOW_* variables for one test; the settings cache follows every change."""
    env = SettingsEnv(monkeypatch)
    env.settle()
    yield env
    env.undo()
