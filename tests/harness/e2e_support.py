"""Helpers of the e2e tests: who the e2e platform's people are, waiting for a DAG, reading the store."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.harness.airflow_platform import AirflowPlatform

PEOPLE_TEAM = "people.manager@officeflow.test"
MANAGER = "admin@officeflow.test"  # in the sandbox's Google directory and Slack seeds


def wait_for_dag(platform: AirflowPlatform, dag_id: str, timeout: float = 120) -> None:
    platform.wait_for_dag(dag_id, timeout)


def store_rows(store: str, sql: str, **params: str) -> list:
    engine = create_engine(store)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()
