"""Fixtures shared by the gateway API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.harness.airflow_tools import api_token
from tests.harness.endpoints import Env
from tests.harness.gateway import gateway_client
from tests.integration.plugins import extra_users as extra


@pytest.fixture
def auth_headers() -> Callable[[str], dict[str, str]]:
    """``auth_headers("admin")`` -> a Bearer header for that role."""
    return lambda role: {"Authorization": f"Bearer {api_token(role)}"}


@pytest.fixture
def client(airflow_db, clean_store) -> Iterator[TestClient]:
    with gateway_client() as test_client:
        yield test_client


@pytest.fixture(params=["api-server", "edge"])
def sender(request, client) -> Iterator[TestClient]:
    """Where deliveries are posted, once per gateway mode: the app the api-server mounts (the ``client`` itself)
    and the standalone edge gateway's (plugins/officeflow_gateway/edge.py), paths relative to ``/officeflow``.
    Management calls stay on ``client``."""
    if request.param == "api-server":
        yield client
        return
    from plugins.officeflow_gateway.edge import create_delivery_app

    with TestClient(create_delivery_app(), raise_server_exceptions=False) as edge:
        yield edge


@pytest.fixture
def admin(auth_headers) -> dict[str, str]:
    return auth_headers("admin")


@pytest.fixture
def env(settings_env):
    """OFFICEFLOW_* overrides for one test (tests/harness/endpoints.py ``Env``), undone race-free."""
    overrides = Env(settings_env)
    yield overrides
    overrides.restore()


@pytest.fixture(scope="session")
def extra_users(airflow_db) -> None:
    """The roles, users and groups test modules declared with ``extra_users.needs`` exist (made once)."""
    extra.create_declared()
