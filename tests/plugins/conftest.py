"""Fixtures shared by the gateway API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient


def gateway_client() -> TestClient:
    """The gateway app in a TestClient that hands a 500 back as a response (to fail an assertion on
    it) instead of re-raising the server's exception into the test."""
    from plugins.officeflow_gateway.app import create_app

    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.fixture
def client(airflow_db, clean_store) -> Iterator[TestClient]:
    with gateway_client() as test_client:
        yield test_client


@pytest.fixture
def admin(auth_headers) -> dict[str, str]:
    return auth_headers("admin")
