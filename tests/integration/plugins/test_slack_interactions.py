"""POST /officeflow/slack/interactions: Slack's signature and replay window, who may decide, and how a
click that cannot be recorded is answered (the approve/reject/idempotence path against real Airflow
processes is in tests/e2e/test_slack_approval.py)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from tests.harness.slack import SIGNING_SECRET, sign, signed_click

URL = "/slack/interactions"
APPROVER, OTHER = "U0APPROVER", "U0SOMEBODY"


def message(run_id: str = "manual__missing") -> dict:
    value = json.dumps({"dag_id": "officeflow_approval_smoke", "run_id": run_id, "task_id": "approval",
                        "map_index": -1, "approvers": {APPROVER: "admin@officeflow.test"}})
    return {"ts": "1700000000.000100", "text": "Approval needed", "blocks": [
        {"type": "actions", "block_id": "officeflow_approval", "elements": [
            {"type": "button", "action_id": "officeflow_approve", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "officeflow_reject", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}}]}]}


@pytest.fixture(autouse=True)
def core_api_loaded(airflow_db):
    """Airflow's core API loaded before the gateway (and its dispatcher thread) starts, as in the
    api-server: the route's first import of it must not race the dispatcher's mapper configuration."""
    import airflow.api_fastapi.core_api.routes.public.hitl  # noqa: F401


@pytest.fixture
def secret(settings_env):
    settings_env.setenv("OFFICEFLOW_SLACK_SIGNING_SECRET", SIGNING_SECRET)


def post(client, body: bytes, headers: dict[str, str]):
    return client.post(URL, content=body, headers=headers)


def test_unlisted_user_gets_an_ephemeral_not_allowed(client, secret):
    body, headers = signed_click(message(), "C0GENERAL0", "officeflow_approve", OTHER)
    response = post(client, body, headers)
    assert response.status_code == 200, response.text
    assert response.json()["response_type"] == "ephemeral" and "not allowed" in response.json()["text"]
    assert response.json()["replace_original"] is False


@pytest.mark.parametrize("tamper", ["secret", "body", "stale", "future", "missing"])
def test_forged_or_stale_signatures_are_401(client, secret, tamper):
    body, headers = signed_click(message(), "C0GENERAL0", "officeflow_approve", APPROVER,
                                 secret="wrong" if tamper == "secret" else SIGNING_SECRET,
                                 timestamp={"stale": int(time.time()) - 301,
                                            "future": int(time.time()) + 400}.get(tamper))
    if tamper == "body":
        body = body.replace(b"officeflow_approve", b"officeflow_reject")
    if tamper == "missing":
        headers.pop("X-Slack-Signature")
    response = post(client, body, headers)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_signature" and error["correlationId"]


def test_without_a_signing_secret_everything_is_refused(client, settings_env):
    settings_env.delenv("OFFICEFLOW_SLACK_SIGNING_SECRET", raising=False)
    body, headers = signed_click(message(), "C0GENERAL0", "officeflow_approve", APPROVER)
    response = post(client, body, headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_allowed_click_on_an_unknown_task_is_answered_not_recorded(client, secret):
    body, headers = signed_click(message("manual__does-not-exist"), "C0GENERAL0", "officeflow_approve", APPROVER)
    response = post(client, body, headers)
    assert response.status_code == 200, response.text
    assert response.json()["response_type"] == "ephemeral"
    assert response.json()["text"].startswith("Could not record your decision")


def test_other_interactions_are_acknowledged_and_garbage_is_400(client, secret):
    body = urlencode({"payload": json.dumps({"type": "view_submission"})}).encode()
    assert post(client, body, sign(body)).json() == {}
    body = b"payload=not-json"
    response = post(client, body, sign(body))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_payload"


def waiting_approval() -> str:
    """A run of officeflow_approval_smoke whose ``approval`` task is parked awaiting input, with its HITL
    request stored (what the operator does), in the test's Airflow DB; returns the run id."""
    import uuid

    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    with create_session() as session:
        dag = SerializedDagModel.get_dag("officeflow_approval_smoke", session=session)
        assert dag is not None
        run = dag.create_dagrun(run_id=run_id, run_after=timezone.utcnow(), conf={}, run_type=DagRunType.MANUAL,
                                triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING,
                                session=session)
        ti = run.get_task_instance("approval", session=session)
        assert ti is not None
        ti.state = TaskInstanceState.AWAITING_INPUT
        session.add(HITLDetail(ti_id=ti.id, options=["Approve", "Reject"], subject="Smoke", multiple=False,
                               params={}, params_input={}))
    return run_id


def hitl_state(run_id: str) -> tuple[dict | None, list[str] | None, str | None]:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(TaskInstance.run_id == run_id,
                                                       TaskInstance.task_id == "approval"))
        assert ti is not None
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        assert detail is not None
        return detail.responded_by, detail.chosen_options, ti.state


def test_an_approver_click_is_recorded_once(client, secret):
    run_id = waiting_approval()
    body, headers = signed_click(message(run_id), "C0GENERAL0", "officeflow_approve", OTHER)
    assert "not allowed" in post(client, body, headers).json()["text"]
    assert hitl_state(run_id) == (None, None, "awaiting_input")

    body, headers = signed_click(message(run_id), "C0GENERAL0", "officeflow_approve", APPROVER)
    first = post(client, body, headers)
    assert first.status_code == 200 and first.json()["text"] == f"Approved by <@{APPROVER}> (admin@officeflow.test)"
    assert first.json()["replace_original"] is True
    responded_by, chosen, state = hitl_state(run_id)
    # The approver's e-mail, and the Airflow (FAB) user with that e-mail: the test user "admin".
    assert responded_by == {"id": "admin@officeflow.test", "name": "admin@officeflow.test"}
    assert chosen == ["Approve"] and state == "scheduled"  # resumed: the scheduler runs execute_complete

    body, headers = signed_click(message(run_id), "C0GENERAL0", "officeflow_reject", APPROVER)
    second = post(client, body, headers)
    assert second.status_code == 200 and "already been decided" in second.json()["text"], second.text
    assert hitl_state(run_id)[1] == ["Approve"]
