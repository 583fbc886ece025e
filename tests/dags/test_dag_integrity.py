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
            if _retries_on_purpose_never(task):
                continue
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def _retries_on_purpose_never(task) -> bool:
    """Input validation (no retry fixes bad input) and approvals (a retry would ask again)."""
    from airflow.providers.standard.operators.hitl import HITLOperator

    return task.task_id == "plan" or isinstance(task, HITLOperator)


HR_DAGS = ("employee_onboarding", "employee_offboarding", "employee_role_change", "equipment_request")


def test_every_dag_alerts_slack_on_failure_and_logs_the_run_ids(dagbag):
    from include.officeflow.workflow_defaults import bind_log_context
    from operators.slack import OfficeFlowSlackNotifier

    for dag_id, dag in dagbag.dags.items():
        callbacks = dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]
        assert any(isinstance(c, OfficeFlowSlackNotifier) for c in callbacks), dag_id
        for task in dag.tasks:
            execute_callbacks = task.on_execute_callback or []
            assert bind_log_context in execute_callbacks, f"{dag_id}.{task.task_id}"


def test_hr_workflows_take_the_run_ids_as_params(dagbag):
    for dag_id in HR_DAGS:
        params = dagbag.dags[dag_id].params
        assert {"organization_id", "correlation_id"} <= set(params.keys()), dag_id
        assert params["organization_id"] == "default"


def test_onboarding_runs_independent_steps_in_parallel(dagbag):
    dag = dagbag.dags["employee_onboarding"]
    first = dag.task_dict["plan"].downstream_task_ids
    assert {"provision_account", "welcome_pack", "send_manager_heads_up", "send_first_day_logistics",
            "create_slack_channel", "equipment.prepare"} <= first
    assert dag.task_dict["provision_account"].downstream_task_ids >= {"schedule_manager_1on1", "schedule_it_setup"}
    assert "send_welcome_email" in dag.task_dict["welcome_pack"].downstream_task_ids
    assert "post_slack_intro" in dag.task_dict["create_slack_channel"].downstream_task_ids
    summary = dag.task_dict["summarise"]
    assert summary.trigger_rule == "none_failed"
    assert {"schedule_manager_1on1", "schedule_it_setup", "send_welcome_email", "post_slack_intro",
            "equipment.decision_email"} <= summary.upstream_task_ids
    assert {"first_name", "last_name", "email", "personal_email", "department", "job_title", "manager_email",
            "start_date", "time_zone", "identity_provider", "equipment"} <= set(dag.params.keys())


def test_equipment_approval_decides_either_way(dagbag):
    for dag_id in ("employee_onboarding", "equipment_request"):
        tasks = dagbag.dags[dag_id].task_dict
        # A Reject skips the receipt (direct downstream of the approval); the decision still runs.
        assert tasks["equipment.approval"].downstream_task_ids == {"equipment.receipt"}
        assert tasks["equipment.decision"].trigger_rule == "none_failed_min_one_success"
        assert "equipment.approval" not in tasks["equipment.decision"].upstream_task_ids
        assert tasks["equipment.approval"].retries == 0


def test_offboarding_order(dagbag):
    tasks = dagbag.dags["employee_offboarding"].task_dict
    assert tasks["approval"].ignore_downstream_trigger_rules is True  # a Reject stops everything
    assert tasks["approval"].downstream_task_ids == {"cancel_future_meetings"}
    assert tasks["cancel_future_meetings"].downstream_task_ids == {"disable_account"}
    assert tasks["disable_account"].downstream_task_ids == {"archive_documents", "archive_slack_channel",
                                                           "send_exit_email", "send_manager_checklist"}
    assert tasks["delete_after_retention"].upstream_task_ids >= tasks["disable_account"].downstream_task_ids

