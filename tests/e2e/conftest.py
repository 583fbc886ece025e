"""Shared e2e fixtures: one SMTP server, store, SaaS sandbox and Airflow platform for the e2e package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from include.officeflow.store import migrate
from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.browser import Screenshots, chromium
from tests.harness.e2e_support import MANAGER, PEOPLE_TEAM
from tests.harness.otlp_collector import OtlpCollector
from tests.harness.s3 import VERSIONED_BUCKET
from tests.harness.slack import SIGNING_SECRET


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
def otlp_collector() -> Iterator[OtlpCollector]:
    """Where the platform's processes export their spans (Airflow's tracing on, as in a traced deployment)."""
    with OtlpCollector() as collector:
        yield collector


@pytest.fixture(scope="package")
def platform(airflow_db, postgres, store, smtp, sandbox_server, s3_server,
             otlp_collector) -> Iterator[AirflowPlatform]:
    airflow_url = postgres.create_database("airflow_e2e", template="airflow_template")
    # Tasks reach the SaaS sandbox through the connections it generated (AIRFLOW_CONN_OFFICEFLOW_*),
    # and store documents in the real S3 server (versioned bucket).
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url, "OFFICEFLOW_DB_URL": store,
           "OFFICEFLOW_SLACK_SIGNING_SECRET": SIGNING_SECRET, **sandbox_server.env(), **s3_server.env(),
           "OFFICEFLOW_DOCUMENTS_URL": f"s3://{VERSIONED_BUCKET}/e2e",
           # The sandbox's seeded Slack user: approves when a run names no manager.
           "OFFICEFLOW_PEOPLE_TEAM_EMAIL": PEOPLE_TEAM,
           # Calendar organizers must be users of the Google domain: the sandbox's seeded admin.
           "OFFICEFLOW_IT_TEAM_EMAIL": MANAGER,
           # Offboarding deletes the disabled accounts at once instead of after 30 days.
           "OFFICEFLOW_OFFBOARDING_RETENTION_DAYS": "0",
           # Login throttling counts per client address too: the tests, all on 127.0.0.1, name the client they
           # play in X-Forwarded-For (a trusted proxy's header), so a throttling test locks only its own address.
           "OFFICEFLOW_AUTH_TRUSTED_PROXIES": '["127.0.0.1/32"]',
           "OFFICEFLOW_AUTH_LOGIN_WINDOW_SECONDS": "20",
           # GET /api/v2/config answers by permission (Admin) instead of 403 for everyone.
           "AIRFLOW__API__EXPOSE_CONFIG": "non-sensitive-only",
           **otlp_collector.env("officeflow-e2e")}
    running = AirflowPlatform(env, smtp_port=smtp.port)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (Playwright), one per test module."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots() -> Screenshots:
    """Saves the screenshots the README and docs show, under docs/screenshots/."""
    return Screenshots()
