"""Every DAG in dags/ imports cleanly and follows OfficeFlow's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "employee_onboarding" in dagbag.dags


def test_every_dag_has_tags_retries_and_no_schedule_catchup(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert "officeflow" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_onboarding_shape_and_params(dagbag):
    dag = dagbag.dags["employee_onboarding"]
    assert dag.task_dict["validate_hire"].downstream_task_ids == {"send_welcome_email"}
    assert {"first_name", "email", "correlation_id"} <= set(dag.params.keys())

