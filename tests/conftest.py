"""Test harness: the environment of every run, and the services more than one tier uses.

Airflow reads its configuration when first imported, so the environment is set in ``pytest_configure``,
before any test module (and so Airflow) is imported. A PostgreSQL cluster is started there too, but only
when the run includes anything outside ``tests/unit`` (the paths given, or ``testpaths``); a run of
``tests/unit`` alone gets the same environment with SQLite files that nothing migrates, and starts no
service. The helpers live in ``tests/harness/``; fixtures only the integration tests use live in
``tests/integration/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.airflow_tools import run_airflow
from tests.harness.environment import base_environment, needs_services, unit_environment
from tests.harness.kafka import KafkaBroker
from tests.harness.postgres import PostgresCluster
from tests.harness.s3 import S3Server
from tests.harness.sandbox import SandboxServer
from tests.harness.settings import SettingsEnv

_cluster: PostgresCluster | None = None
_file_seconds: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--durations-per-file", type=int, default=0, metavar="N",
                     help="print the N test files that took longest (setup, call and teardown summed)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    _file_seconds[path] = _file_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    count = config.getoption("--durations-per-file")
    if not count or not _file_seconds:
        return
    terminalreporter.write_sep("=", f"slowest {count} test files (setup + call + teardown)")
    total = sum(_file_seconds.values())
    for path, seconds in sorted(_file_seconds.items(), key=lambda item: -item[1])[:count]:
        terminalreporter.write_line(f"{seconds:8.1f}s {100 * seconds / total:5.1f}%  {path}")
    tiers: dict[str, float] = {}
    for path, seconds in _file_seconds.items():
        tier = "/".join(path.split("/")[:2])
        tiers[tier] = tiers.get(tier, 0.0) + seconds
    terminalreporter.write_line("by tier: " + ", ".join(f"{tier} {seconds:.0f}s"
                                                         for tier, seconds in sorted(tiers.items())))


def pytest_configure(config: pytest.Config) -> None:
    global _cluster
    if hasattr(config, "workerinput"):
        return
    home = Path(tempfile.mkdtemp(prefix="officeflow-airflow-home-"))
    if not needs_services(config.args, config.invocation_params.dir):
        os.environ.update(unit_environment(home))
        return
    _cluster = PostgresCluster().start()
    _cluster.create_database("airflow")
    _cluster.create_database("officeflow")
    os.environ.update(base_environment(home, _cluster.url("airflow"), _cluster.url("officeflow")))


def pytest_unconfigure(config: pytest.Config) -> None:
    # Stop the background threads before the database they poll goes away.
    dispatcher_module = sys.modules.get("plugins.officeflow_gateway.dispatcher")
    if dispatcher_module is not None:
        dispatcher_module.dispatcher.stop()
    clicks_module = sys.modules.get("plugins.officeflow_gateway.approval_clicks")
    if clicks_module is not None:
        clicks_module.applier.stop()
    if _cluster is not None:
        _cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> PostgresCluster:
    if _cluster is None:
        pytest.fail("this test needs PostgreSQL: it belongs in tests/integration or tests/e2e (a run of "
                    "tests/unit alone starts no PostgreSQL)", pytrace=False)
    return _cluster


@pytest.fixture(scope="session")
def airflow_db(postgres: PostgresCluster) -> str:
    """Airflow's metadata DB migrated, with OfficeFlow's roles and a user per role (tests/harness/auth_users.py)
    and OfficeFlow's DAGs serialised; returns its URL.

    A pristine copy (``airflow_template``) is taken right after migration for the e2e tests.
    """
    run_airflow("db", "migrate")
    # In a process of its own: FAB's app keeps connections open, and the template below needs none to "airflow".
    subprocess.run([sys.executable, "-m", "tests.harness.auth_users"], check=True, capture_output=True)
    postgres.create_database("airflow_template", template="airflow")
    run_airflow("dags", "reserialize")
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def kafka_session_broker() -> Iterator[KafkaBroker]:
    """A real Apache Kafka 4.x broker (KRaft, tests/harness/kafka.py) for the session (integration and e2e);
    started by the first test that asks for it or :func:`kafka_broker`."""
    broker = KafkaBroker().start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_broker(kafka_session_broker: KafkaBroker) -> Iterator[KafkaBroker]:
    """The session's broker, running: a test that stopped it (``stop_broker()``) and failed before
    ``restart()`` leaves it running again for the next test."""
    if not kafka_session_broker.running:
        kafka_session_broker.restart()
    yield kafka_session_broker
    if not kafka_session_broker.running:
        kafka_session_broker.restart()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The integration sandbox (sandbox/) as a real server process for the session."""
    server = SandboxServer().start()
    yield server
    server.stop()


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


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsEnv]:
    """Change OFFICEFLOW_* variables for one test; the settings cache follows every change."""
    env = SettingsEnv(monkeypatch)
    env.settle()
    yield env
    env.undo()
