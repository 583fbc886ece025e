"""Shared e2e fixtures: one SMTP server, store, SaaS sandbox and Airflow platform for the e2e package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from include.officeflow.store import migrate
from include.sandbox.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.slack_interactions import SIGNING_SECRET


@pytest.fixture(scope="package")
def smtp(tmp_path_factory) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path_factory.mktemp("mailbox")) as sink:
        yield sink


@pytest.fixture(scope="package")
def store(postgres) -> str:
    url = postgres.create_database("officeflow_e2e")
    migrate(url)
    return url


@pytest.fixture(scope="package")
def platform(airflow_db, postgres, store, smtp, sandbox_server) -> Iterator[AirflowPlatform]:
    airflow_url = postgres.create_database("airflow_e2e", template="airflow_template")
    # Tasks reach the SaaS sandbox through the connections it generated (AIRFLOW_CONN_OFFICEFLOW_*).
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url, "OFFICEFLOW_DB_URL": store,
           "OFFICEFLOW_SLACK_SIGNING_SECRET": SIGNING_SECRET, **sandbox_server.env()}
    running = AirflowPlatform(env, smtp_port=smtp.port)
    try:
        yield running.start()
    finally:
        running.stop()
