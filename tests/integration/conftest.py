"""Fixtures of the integration tests: the services only they use (Redis, a clean SaaS sandbox), the OfficeFlow
store on PostgreSQL, and clean email and documents tables. The session's PostgreSQL cluster, Airflow metadata
DB, sandbox server and S3 server come from tests/conftest.py; the helpers from tests/harness/."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.documents import S3Target
from tests.harness.postgres import PostgresCluster
from tests.harness.redis import RedisServer
from tests.harness.s3 import PLAIN_BUCKET, VERSIONED_BUCKET
from tests.harness.sandbox import SandboxServer
from tests.harness.store import truncate


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
    truncate(store_url, "webhook_events", "audit_log", "webhook_endpoints", "outbox")
    yield store_url


# --- email (operators/test_email.py, plugins/test_email_events.py) ----------------------------------


@pytest.fixture
def email_store(store_url: str) -> Iterator[str]:
    """The migrated store with no email deliveries or suppressions, and an empty outbox."""
    truncate(store_url, "email_deliveries", "email_suppressions", "outbox")
    yield store_url


# --- identity (operators/test_identity_*.py): the accounts provisioning recorded, and their events --------------


@pytest.fixture
def identity_store(store_url: str) -> Iterator[str]:
    """The migrated store with no identity accounts and an empty outbox."""
    truncate(store_url, "identity_accounts", "outbox")
    yield store_url


# --- documents (include/test_documents.py, operators/test_documents.py, plugins/test_documents_api.py):
# S3 targets with a per-test prefix, a local folder, clean tables.


@pytest.fixture
def clean_documents(store_url: str) -> Iterator[str]:
    """Empty documents tables, audit log and outbox (clean_store does not know the documents tables)."""
    truncate(store_url, "documents", "document_versions", "document_readers", "audit_log", "outbox", cascade=True)
    yield store_url


@pytest.fixture
def s3_versioned(s3_server, settings_env, clean_documents) -> S3Target:
    target = S3Target(s3_server, VERSIONED_BUCKET, f"docs-{uuid.uuid4().hex[:12]}")
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_URL", f"s3://{target.bucket}/{target.prefix}")
    return target


@pytest.fixture
def s3_plain(s3_server, settings_env, clean_documents) -> S3Target:
    target = S3Target(s3_server, PLAIN_BUCKET, f"docs-{uuid.uuid4().hex[:12]}")
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_URL", f"s3://{target.bucket}/{target.prefix}")
    return target


@pytest.fixture
def local_folder(tmp_path, settings_env, clean_documents) -> Path:
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_URL", str(tmp_path / "documents"))
    return tmp_path / "documents"
