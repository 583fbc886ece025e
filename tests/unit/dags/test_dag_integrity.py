"""Every DAG in dags/ imports cleanly and follows OfficeFlow's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.environment import REPO_ROOT

DAGS_DIR = REPO_ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "employee_onboarding" in dagbag.dags


def test_every_dag_file_is_discovered(dagbag):
    """Airflow's safe mode (``core.dag_discovery_safe_mode``) silently skips a file of dags/ that does not mention
    both "airflow" and "dag": such a DAG would never be scheduled, and no import error would say so."""
    helpers = {"__init__.py", "workflow_parts.py"}
    files = {path.name for path in DAGS_DIR.glob("*.py")} - helpers
    assert {Path(dag.fileloc).name for dag in dagbag.dags.values()} == files


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
    from include.officeflow.log_context import bind_log_context
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
        # A Reject skips the receipt and the access grant (direct downstreams of the approval); the decision
        # still runs.
        granted = {"equipment.grant_access"} if dag_id == "employee_onboarding" else set()
        assert tasks["equipment.approval"].downstream_task_ids == {"equipment.receipt", *granted}
        assert tasks["equipment.decision"].trigger_rule == "none_failed_min_one_success"
        assert "equipment.approval" not in tasks["equipment.decision"].upstream_task_ids
        assert tasks["equipment.approval"].retries == 0


def test_ai_steps_only_advise_and_feed_the_steps_after_them(dagbag):
    onboarding = dagbag.dags["employee_onboarding"].task_dict
    # The recommendation comes before the request is prepared; what it recommends is granted only after the
    # approval and the account.
    assert onboarding["equipment.recommend"].downstream_task_ids == {"equipment.prepare"}
    assert onboarding["equipment.grant_access"].upstream_task_ids == {"equipment.approval", "provision_account",
                                                                      "equipment.prepare"}
    assert onboarding["personalise"].downstream_task_ids == {"personal_texts"}
    assert onboarding["personal_texts"].downstream_task_ids == {"welcome_pack", "send_welcome_email",
                                                                "post_slack_intro", "summarise"}
    request = dagbag.dags["equipment_request"].task_dict
    assert request["read_details"].downstream_task_ids == {"plan"}
    assert request["plan"].trigger_rule == "none_failed"  # empty details skip the reading, not the request


def test_offboarding_order(dagbag):
    tasks = dagbag.dags["employee_offboarding"].task_dict
    assert tasks["approval"].ignore_downstream_trigger_rules is True  # a Reject stops everything
    assert tasks["approval"].downstream_task_ids == {"cancel_future_meetings"}
    assert tasks["cancel_future_meetings"].downstream_task_ids == {"disable_account"}
    assert tasks["disable_account"].downstream_task_ids == {"archive_documents", "archive_slack_channel",
                                                           "send_exit_email", "send_manager_checklist"}
    assert tasks["delete_after_retention"].upstream_task_ids >= tasks["disable_account"].downstream_task_ids



def form_params(dag) -> dict[str, dict]:
    """The DAG's params as the trigger form gets them: ``{name: {"value", "schema", "description"}}``."""
    return {name: param.dump() for name, param in dag.params.items()}


#: What a person must fill in each workflow's trigger form; everything else may be left as the form opens.
MUST_FILL = {
    "employee_onboarding": {"first_name", "last_name", "email"},
    "employee_offboarding": {"email"},
    "employee_role_change": {"first_name", "last_name", "email"},
    "equipment_request": {"requester_email"},
    "identity_provisioning": {"first_name", "last_name", "email"},
    "officeflow_approval_smoke": set(),
    "officeflow_approval_burst": set(),
    "calendar_maintenance": set(),
    "document_retention": set(),
    "workflow_insights": set(),
    "workday_reconciliation": set(),
    "manager_heads_up": {"manager_name", "manager_email", "first_name", "start_date"},
    "new_contractor_welcome": {"first_name", "email"},
}


def test_every_trigger_form_opens_ready_for_what_a_person_must_fill(dagbag):
    """Airflow's form rule: an empty field whose type excludes null blocks Trigger. Only the fields a
    person must fill may do that; every field has a title and a description."""
    from include.officeflow.workflow_params import form_problems

    assert set(MUST_FILL) <= set(dagbag.dags), "a workflow of MUST_FILL is missing"
    for dag_id, must_fill in MUST_FILL.items():
        assert form_problems(form_params(dagbag.dags[dag_id]), must_fill) == [], dag_id


def test_the_form_rule_catches_the_fields_that_blocked_trigger():
    from airflow.sdk import Param

    from include.officeflow.workflow_params import form_problems, optional_text

    blocked = {"personal_email": Param("", type="string", title="Personal email", description="optional")}
    assert form_problems(blocked, set()) == [
        "personal_email: optional, but an empty 'string' field blocks Trigger (make it nullable or give it a default)"]
    unmarked = {"email": optional_text("Work email", "the account")}
    assert form_problems(unmarked, {"email"}) == [
        "email: a person must fill it, but the form does not mark it required"]
    assert form_problems({"x": Param(None, type=["null", "string"])}, set()) == ["x: no title", "x: no description"]


def test_the_run_details_are_out_of_a_persons_way(dagbag):
    from include.officeflow.workflow_params import RUN_DETAILS

    for dag_id in HR_DAGS:
        params = form_params(dagbag.dags[dag_id])
        for name in ("organization_id", "source", "correlation_id"):
            assert params[name]["schema"]["section"] == RUN_DETAILS, (dag_id, name)
        assert params["correlation_id"]["value"] is None


def test_dates_pick_dates_and_choices_are_selects(dagbag):
    params = form_params(dagbag.dags["employee_onboarding"])
    assert params["start_date"]["schema"]["format"] == "date"
    assert "Europe/Berlin" in params["time_zone"]["schema"]["enum"]
    assert params["time_zone"]["value"] == "UTC"
    assert params["identity_provider"]["schema"]["values_display"]["microsoft"] == "Microsoft Entra ID"
    assert "monitor" in params["equipment"]["schema"]["examples"]
    assert form_params(dagbag.dags["employee_offboarding"])["termination_date"]["schema"]["format"] == "date"


def test_every_workflow_explains_itself(dagbag):
    owners = {"employee_onboarding": "people-team", "employee_offboarding": "people-team",
              "employee_role_change": "people-team", "equipment_request": "it-team",
              "identity_provisioning": "it-team", "officeflow_approval_smoke": "it-team",
              "officeflow_approval_burst": "it-team",
              "calendar_maintenance": "it-team", "document_retention": "it-team", "workflow_insights": "it-team",
              "workday_reconciliation": "it-team", "new_contractor_welcome": "people-team",
              "manager_heads_up": "people-team"}
    for dag_id, owner in owners.items():
        dag = dagbag.dags[dag_id]
        assert dag.owner == owner, dag_id
        assert dag.dag_display_name != dag_id and dag.dag_display_name[0].isupper(), dag_id
        assert dag.description and len(dag.description) > 40, dag_id
        assert len(dag.tags) >= 2, dag_id
    for dag_id in (*HR_DAGS, "identity_provisioning", "officeflow_approval_smoke", "officeflow_approval_burst",
                   "calendar_maintenance", "document_retention", "workflow_insights", "workday_reconciliation"):
        doc = dagbag.dags[dag_id].doc_md
        assert doc.startswith("# ") and "```text" in doc, f"{dag_id}: doc_md needs a title and the picture"


def test_onboarding_summary_is_the_runs_result(dagbag):
    assert dagbag.dags["employee_onboarding"].task_dict["summarise"].returns_dag_result is True


def test_every_xcom_field_read_is_pushed(dagbag):
    """``task.output["field"]`` reads the XCom *key* "field": the producing task must push its result's
    fields as keys (``multiple_outputs=True``), or the consumer fails with XComNotFound at run time."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    def xcom_args(value):
        if isinstance(value, PlainXComArg):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from xcom_args(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from xcom_args(item)

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            for field in task.template_fields:
                for arg in xcom_args(getattr(task, field, None)):
                    if arg.key != "return_value":
                        assert arg.operator.multiple_outputs, (
                            f"{dag_id}.{task.task_id}.{field} reads {arg.operator.task_id}[{arg.key!r}], which "
                            "does not push its result's fields (multiple_outputs=True)")


def test_workflow_insights_reads_like_its_picture(dagbag):
    dag = dagbag.dags["workflow_insights"]
    tasks = dag.task_dict
    assert not dag.get_task("compute_stats").upstream_task_ids  # reads the history and reduces it: no raw XCom
    assert tasks["compute_stats"].downstream_task_ids == {"suggest", "report"}
    assert tasks["suggest"].downstream_task_ids == {"report"}
    assert tasks["report"].downstream_task_ids == {"store_report", "post_report"}
    assert tasks["suggest"].prompt == "workflow_insights"
    assert dag.params["days"] == 30 and dag.params["workflows"] is None and dag.max_active_runs == 1
    assert dag.schedule == "0 6 * * 1"  # weekly, Monday 06:00 UTC
