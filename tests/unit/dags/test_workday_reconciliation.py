"""workday_reconciliation: the DAG's shape and schedule as the scheduler reads them, the schedule setting. What its
task records and starts: tests/integration/plugins/test_workday_reconciliation.py and tests/e2e (the DAG run)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.environment import REPO_ROOT


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from include.officeflow.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "workday_reconciliation.py"))
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    return bag.dags["workday_reconciliation"]


def test_it_finds_the_missed_changes_then_starts_one_run_each(monkeypatch):
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    dag = load(monkeypatch)
    assert list(dag.task_dict) == ["find_missed_changes", "start_workflow"]
    assert dag.task_dict["find_missed_changes"].downstream_task_ids == {"start_workflow"}
    start = dag.task_dict["start_workflow"]
    assert start.operator_class is TriggerDagRunOperator
    assert start.partial_kwargs["skip_when_already_exists"] is True
    assert dag.params == {}  # nothing to fill: Trigger runs it at once
    assert {"officeflow", "events", "it"} <= set(dag.tags)  # the IT Operator's workflows (docs/auth.md)


def test_it_runs_hourly_one_pass_at_a_time_unless_set_otherwise(monkeypatch):
    dag = load(monkeypatch)
    assert dag.schedule == "@hourly"
    assert dag.max_active_runs == 1 and dag.catchup is False and dag.is_paused_upon_creation is False
    assert load(monkeypatch, OFFICEFLOW_WORKDAY_RECONCILE_SCHEDULE="*/30 * * * *").schedule == "*/30 * * * *"
    for unset in ("", "none", " None "):
        assert load(monkeypatch, OFFICEFLOW_WORKDAY_RECONCILE_SCHEDULE=unset).schedule is None, unset
