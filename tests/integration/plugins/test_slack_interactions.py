"""POST /officeflow/slack/interactions: Slack's signature and replay window, who may decide, how a
click that cannot be recorded is answered, and how a click is kept in the store and applied once it is safe
(plugins/officeflow_gateway/approval_clicks.py: early clicks, duplicates, a restart between the click and the
apply, a crash between Airflow's record and the store's). The approve/reject path against real Airflow
processes, with a hundred clicks as early as Slack can send them, is in tests/e2e/test_slack_approval.py."""

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
    assert response.json()["text"].startswith("Could not record your decision: this approval request is not known")
    assert clicks("manual__does-not-exist") == []


def test_other_interactions_are_acknowledged_and_garbage_is_400(client, secret):
    body = urlencode({"payload": json.dumps({"type": "view_submission"})}).encode()
    assert post(client, body, sign(body)).json() == {}
    body = b"payload=not-json"
    response = post(client, body, sign(body))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_payload"


def waiting_approval(state: str = "awaiting_input") -> str:
    """A run of officeflow_approval_smoke whose ``approval`` task is parked awaiting input (or in ``state``: running
    = still parking), with its HITL request stored (what the operator does), in the test's Airflow DB; returns the
    run id."""
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
        ti.state = TaskInstanceState(state)
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


def test_an_approver_click_is_recorded_once(client, secret, settings_env):
    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "0")  # parked long ago, by no scheduler
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
    assert [(c.status, c.option) for c in clicks(run_id)] == [("applied", "Approve")]
    assert len(responded(run_id)) == 1


# --- clicks kept in the store until they can be applied -------------------------------------------------------


@pytest.fixture
def applier():
    """No applier thread of this process in between (the test drives :func:`run_once`, as an api-server's
    applier would); stopped again afterwards."""
    from plugins.officeflow_gateway.approval_clicks import applier

    applier.stop()
    yield applier
    applier.stop()


def set_state(run_id: str, state: str) -> None:
    """Move the run's ``approval`` task instance to ``state`` (its ``updated_at`` is now: the park time)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(TaskInstance.run_id == run_id,
                                                       TaskInstance.task_id == "approval"))
        assert ti is not None
        ti.state = TaskInstanceState(state)


def clicks(run_id: str) -> list:
    from sqlalchemy import select

    from include.officeflow.store import session_scope
    from include.officeflow.store.models import ApprovalClick

    with session_scope() as session:
        found = list(session.scalars(select(ApprovalClick).where(ApprovalClick.run_id == run_id)))
        session.expunge_all()
        return found


def responded(run_id: str) -> list:
    from tests.harness.endpoints import audit_rows

    return [r for r in audit_rows("officeflow_approval_smoke")
            if r.action == "approval.responded" and r.details.get("run_id") == run_id]


def slack_updates(sandbox, ts: str) -> list[dict]:
    return [r["body"] for r in sandbox.state("slack").get("interaction_responses", []) if r["ts"] == ts]


def click(client, sandbox, run_id: str, action: str, user: str = APPROVER, ts: str = "1700000000.000100"):
    url = f"{sandbox.url}/slack/_sandbox/response_url/C0GENERAL0/{ts}"
    body, headers = signed_click({**message(run_id), "ts": ts}, "C0GENERAL0", action, user, response_url=url)
    return post(client, body, headers)


def test_an_early_click_is_kept_and_applied_once_after_a_restart(client, secret, settings_env, sandbox, applier):
    from plugins.officeflow_gateway.approval_clicks import run_once

    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "0")
    run_id = waiting_approval("running")  # the request is posted, the worker is still parking the task
    ts = f"1700000001.{run_id[-6:]}"
    early = click(client, sandbox, run_id, "officeflow_approve", ts=ts)
    assert early.status_code == 200, early.text
    assert early.json()["response_type"] == "ephemeral" and "approval is recorded" in early.json()["text"]
    assert hitl_state(run_id) == (None, None, "running")  # nothing recorded in Airflow yet: the task parks first
    [kept] = clicks(run_id)
    assert (kept.status, kept.option, kept.email, kept.username) == ("pending", "Approve", "admin@officeflow.test",
                                                                    "admin")

    # A second click (the other button, or a double click) is "already decided"; the first one stands.
    second = click(client, sandbox, run_id, "officeflow_reject", ts=ts)
    assert "already been decided" in second.json()["text"], second.text
    assert [(c.status, c.option) for c in clicks(run_id)] == [("pending", "Approve")]

    # The api-server restarts: its applier thread is gone; only the store knows the click. A new process's applier
    # leaves it alone while the task is still parking...
    applier.stop()
    run_once()
    assert [c.status for c in clicks(run_id)] == ["pending"] and hitl_state(run_id)[2] == "running"

    # ...and applies it once the task waits: Airflow's response, one audit record, the message updated once.
    set_state(run_id, "awaiting_input")
    run_once()
    responded_by, chosen, state = hitl_state(run_id)
    assert (responded_by or {}).get("id") == "admin@officeflow.test" and chosen == ["Approve"]
    assert state == "scheduled"
    assert [c.status for c in clicks(run_id)] == ["applied"] and clicks(run_id)[0].response_url is None
    assert len(responded(run_id)) == 1
    run_once()
    assert len(responded(run_id)) == 1
    updates = [u for u in slack_updates(sandbox, ts) if u.get("replace_original")]
    assert [u["text"] for u in updates] == [f"Approved by <@{APPROVER}> (admin@officeflow.test)"]


def test_a_click_waits_for_the_settle_time_after_the_park(client, secret, settings_env, sandbox, applier):
    from plugins.officeflow_gateway.approval_clicks import run_once

    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "3")
    run_id = waiting_approval()  # parked just now
    assert "approval is recorded" in click(client, sandbox, run_id, "officeflow_approve").json()["text"]
    applier.stop()
    run_once()
    assert hitl_state(run_id)[1] is None and [c.status for c in clicks(run_id)] == ["pending"]
    time.sleep(3)
    run_once()
    assert hitl_state(run_id)[1] == ["Approve"] and [c.status for c in clicks(run_id)] == ["applied"]


def test_a_click_for_a_finished_request_is_refused_and_nothing_is_stored(client, secret, sandbox):
    run_id = waiting_approval("success")
    response = click(client, sandbox, run_id, "officeflow_approve")
    assert response.json()["text"] == ("Could not record your decision: this request is no longer waiting "
                                       "(the task is success).")
    assert clicks(run_id) == [] and hitl_state(run_id)[:2] == (None, None)


def test_a_pending_click_whose_task_ended_is_not_applied_and_the_approver_is_told(client, secret, settings_env,
                                                                                  sandbox, applier):
    from plugins.officeflow_gateway.approval_clicks import run_once

    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "0")
    run_id = waiting_approval("running")
    ts = f"1700000002.{run_id[-6:]}"
    click(client, sandbox, run_id, "officeflow_reject", ts=ts)
    applier.stop()
    set_state(run_id, "failed")  # the parking try failed (it posted, then could not park)
    run_once()
    [kept] = clicks(run_id)
    assert (kept.status, kept.error) == ("expired", "the task is failed")
    assert hitl_state(run_id)[:2] == (None, None) and responded(run_id) == []
    assert any("no longer waiting" in u["text"] for u in slack_updates(sandbox, ts))


def parked_with_a_pending_click(client, sandbox, applier) -> tuple[str, dict]:
    """A run whose approval was clicked while parking (the click pending, no applier running), now parked; the
    run id and the button's target."""
    run_id = waiting_approval("running")
    click(client, sandbox, run_id, "officeflow_approve")
    applier.stop()
    set_state(run_id, "awaiting_input")
    return run_id, {"dag_id": "officeflow_approval_smoke", "run_id": run_id, "task_id": "approval", "map_index": -1}


def test_a_decision_made_elsewhere_first_supersedes_the_click(client, secret, settings_env, sandbox, applier):
    from plugins.officeflow_gateway.approval_clicks import SlackResponder, record_response, run_once

    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "0")
    run_id, target = parked_with_a_pending_click(client, sandbox, applier)
    assert record_response(target, "Reject", SlackResponder("ui-user", "UI user"))[0] == 200  # the Airflow UI
    run_once()
    assert [c.status for c in clicks(run_id)] == ["superseded"] and responded(run_id) == []
    assert hitl_state(run_id)[1] == ["Reject"]


def test_a_response_recorded_just_before_a_crash_is_marked_applied_and_audited_once(client, secret, settings_env,
                                                                                    sandbox, applier):
    from plugins.officeflow_gateway.approval_clicks import SlackResponder, record_response, run_once

    settings_env.setenv("OFFICEFLOW_APPROVAL_SETTLE_SECONDS", "0")
    run_id, target = parked_with_a_pending_click(client, sandbox, applier)
    # The applier recorded the response in Airflow, then its process died before the store's commit.
    responder = SlackResponder("admin@officeflow.test", "admin@officeflow.test")
    assert record_response(target, "Approve", responder)[0] == 200
    run_once()
    assert [c.status for c in clicks(run_id)] == ["applied"] and len(responded(run_id)) == 1
