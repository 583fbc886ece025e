"""The unit tier uses no service: a unit test that asks for one fails before the service starts, in any run
(a run of tests/unit alone starts none; see tests/conftest.py). It belongs in tests/integration or tests/e2e."""

from __future__ import annotations

import pytest

# The fixtures of tests/conftest.py that start a service (the integration tier's own are not visible here).
SERVICE_FIXTURES = frozenset({"postgres", "airflow_db", "sandbox_server", "s3_server"})


def pytest_runtest_setup(item: pytest.Item) -> None:
    used = sorted(SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if used:
        pytest.fail(f"{item.nodeid} uses {', '.join(used)}: a unit test uses no service; it belongs in "
                    "tests/integration or tests/e2e", pytrace=False)
