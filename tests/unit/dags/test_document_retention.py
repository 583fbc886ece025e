"""document_retention: the DAG's shape and schedule as the scheduler reads them. Its task against storage and the
store: tests/integration/operators/test_document_retention.py."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from tests.harness.environment import REPO_ROOT


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "document_retention.py"))
    assert bag.import_errors == {}
    return bag.dags["document_retention"]


def test_one_task_purges_with_the_retention_core_and_retries(dag):
    from operators.documents import PurgeDeletedDocumentsOperator

    assert list(dag.task_dict) == ["purge_deleted_documents"]
    task = dag.task_dict["purge_deleted_documents"]
    assert isinstance(task, PurgeDeletedDocumentsOperator) and task.limit == 1000
    # A storage failure fails the task after the other documents: Airflow retries it, with backoff.
    assert task.retries == 3 and task.retry_exponential_backoff
    assert dag.params == {}  # nothing to fill: Trigger runs it at once


def test_it_runs_daily_one_run_at_a_time_and_skips_missed_days(dag):
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import DataInterval, TimeRestriction

    assert dag.schedule == "0 3 * * *"
    assert dag.max_active_runs == 1 and dag.catchup is False and dag.is_paused_upon_creation is False
    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable  # as the scheduler has it
    assert timetable.description == "At 03:00"
    every_day = TimeRestriction(earliest=pendulum.datetime(2026, 1, 1, tz="UTC"), latest=None, catchup=True)
    after = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(pendulum.datetime(2026, 5, 1, 3, tz="UTC")),
        restriction=every_day)
    assert after is not None and after.run_after == pendulum.datetime(2026, 5, 2, 3, tz="UTC")


def test_it_is_an_it_maintenance_workflow_explained_in_its_docs(dag):
    assert dag.owner == "it-team" and set(dag.tags) == {"officeflow", "documents", "it"}
    assert set(dag.access_control) == {"IT Operator"}  # from the "it" tag (OFFICEFLOW_WORKFLOW_ACCESS)
    assert dag.dag_display_name == "Document retention"
    assert "```text\npurge_deleted_documents" in dag.doc_md
    assert "python -m include.officeflow.documents.retention purge" in dag.doc_md  # the manual run
