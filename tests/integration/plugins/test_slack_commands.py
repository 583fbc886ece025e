"""The /officeflow slash command, the App Home tab and the equipment request modal
(plugins/officeflow_gateway/slack_commands.py, slack_home.py, slack_modals.py, slack_summary.py) against
Airflow's metadata DB, the OfficeFlow store and the Slack sandbox (users.info, views.*, chat.postMessage
through slack_sdk). The route tests post signed requests to the gateway in-process; the last ones serve
the gateway over HTTP and let the sandbox's user drive it, as Slack does, within Slack's 3 s."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.harness.endpoints import audit_rows
from tests.harness.gateway_checks import assert_error
from tests.harness.slack import (
    ServedGateway,
    act,
    command_body,
    configure_app,
    event_body,
    interaction_body,
    sign,
    wait_until,
)

ONBOARDING, SMOKE, EQUIPMENT = "employee_onboarding", "officeflow_approval_smoke", "equipment_request"


@pytest.fixture(autouse=True)
def core_api_loaded(airflow_db):
    """Airflow's core API and FAB's models loaded before the gateway starts, as in the api-server (see
    test_slack_interactions): a first import inside a request would eat Slack's 3 s."""
    import airflow.api_fastapi.core_api.routes.public.hitl
    import airflow.providers.fab.auth_manager.models  # noqa: F401


@pytest.fixture
def secret(settings_env):
    from tests.harness.slack import SIGNING_SECRET

    settings_env.setenv("OFFICEFLOW_SLACK_SIGNING_SECRET", SIGNING_SECRET)


@pytest.fixture
def person(sandbox) -> dict[str, Any]:
    """A Slack member with an e-mail of their own (the Airflow DB outlives each test: nothing else names it)."""
    email = f"pat.{uuid.uuid4().hex[:8]}@officeflow.test"
    response = sandbox.client.post("/slack/_sandbox/users", json={"email": email, "real_name": "Pat Example"})
    response.raise_for_status()
    return {"id": response.json()["id"], "email": email}


def response_url(sandbox, tag: str = "cmd") -> str:
    return f"{sandbox.url}/slack/_sandbox/response_url/C0GENERAL0/{tag}"


def answers(sandbox) -> list[dict[str, Any]]:
    return [r["body"] for r in sandbox.state("slack").get("interaction_responses", [])]


def trigger_id(sandbox, user_id: str) -> str:
    response = sandbox.client.post("/slack/_sandbox/trigger_ids", json={"user_id": user_id})
    response.raise_for_status()
    return response.json()["trigger_id"]


def command(client, sandbox, user_id: str, text: str = "", **kwargs: Any):
    body = command_body(user_id, text, response_url=response_url(sandbox), **kwargs)
    return client.post("/slack/commands", content=body, headers=sign(body))


def interact(client, payload: dict[str, Any]):
    body = interaction_body(payload)
    return client.post("/slack/interactions", content=body, headers=sign(body))


def run(dag_id: str, conf: dict[str, Any], *, running_task: str | None = None, hitl_assignee: str | None = None,
        hitl_task: str = "approval") -> str:
    """A run of ``dag_id`` in the test's Airflow DB (running), optionally with ``running_task`` running or
    ``hitl_task`` waiting for ``hitl_assignee``'s decision; returns the run id."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    with create_session() as session:
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        assert dag is not None
        dag_run = dag.create_dagrun(run_id=run_id, run_after=timezone.utcnow(), conf=conf,
                                    run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
                                    state=DagRunState.RUNNING, session=session)
        if running_task:
            ti = dag_run.get_task_instance(running_task, session=session)
            assert ti is not None
            ti.state = TaskInstanceState.RUNNING
        if hitl_assignee:
            ti = dag_run.get_task_instance(hitl_task, session=session)
            assert ti is not None
            ti.state = TaskInstanceState.AWAITING_INPUT
            session.add(HITLDetail(ti_id=ti.id, options=["Approve", "Reject"], subject=f"Decide {run_id}",
                                   multiple=False, params={}, params_input={},
                                   assignees=[{"id": hitl_assignee, "name": hitl_assignee}]))
    return run_id


def dag_run(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        assert found is not None
        return {"state": str(found.state), "conf": dict(found.conf or {}), "note": found.note or ""}


def runs_of(dag_id: str, requester: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [r.run_id for r in session.execute(select(DagRun.run_id, DagRun.conf).where(DagRun.dag_id == dag_id))
                if (r.conf or {}).get("requester_email") == requester]


# --- signatures ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/slack/commands", "/slack/events"])
@pytest.mark.parametrize("tamper", ["secret", "stale", "body", "missing"])
def test_forged_or_stale_requests_are_401(client, sandbox, secret, path, tamper):
    body = command_body("U0SEED0001", response_url=response_url(sandbox)) if path.endswith("commands") else \
        event_body({"type": "app_home_opened", "user": "U0SEED0001", "tab": "home"})
    headers = sign(body, "wrong-secret" if tamper == "secret" else "e2e-slack-signing-secret-0123456789abcdef",
                   int(time.time()) - 301 if tamper == "stale" else None)
    if tamper == "body":
        body = body.replace(b"U0SEED0001", b"U0SEED0002")
    if tamper == "missing":
        headers.pop("X-Slack-Signature")
    assert_error(client.post(path, content=body, headers=headers), 401, "invalid_signature")
    assert answers(sandbox) == [] and sandbox.state("slack").get("home", {}) == {}


def test_malformed_requests_are_400(client, sandbox, secret):
    body = b"text=help"  # no user_id / response_url
    assert_error(client.post("/slack/commands", content=body, headers=sign(body)), 400, "invalid_payload")
    body = b"not json"
    assert_error(client.post("/slack/events", content=body, headers=sign(body, content_type="application/json")),
                 400, "invalid_payload")


# --- /officeflow -----------------------------------------------------------------------------------

def test_summary_lists_my_pending_approvals_and_open_onboardings(client, sandbox, secret, person):
    mine = run(SMOKE, {}, hitl_assignee=person["email"])
    theirs = run(SMOKE, {}, hitl_assignee="someone.else@officeflow.test")
    managed = run(ONBOARDING, {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@officeflow.test",
                               "manager_email": person["email"].upper()}, running_task="plan")
    run(ONBOARDING, {"first_name": "Alan", "last_name": "Turing", "email": "alan@officeflow.test",
                     "manager_email": "other@officeflow.test"}, running_task="plan")

    response = command(client, sandbox, person["id"], "help")
    assert response.status_code == 200 and response.content == b""  # acknowledged; the answer follows
    [answer] = answers(sandbox)
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    text = json.dumps(answer["blocks"])
    assert f"Decide {mine}" in text and theirs not in text
    assert "Onboarding of Ada Lovelace" in text and "you are the manager" in text and "plan (running)" in text
    assert "Alan" not in text and f"/dags/{ONBOARDING}/runs/{managed}" in text
    assert answer["text"] == "OfficeFlow: 1 pending approvals, 1 open onboardings"


def test_the_hire_sees_their_onboarding_and_nothing_is_an_empty_list(client, sandbox, secret, person):
    command(client, sandbox, person["id"])
    empty = json.dumps(answers(sandbox)[-1]["blocks"])
    assert "Nothing waiting for your decision" in empty and "No onboarding in progress" in empty
    run(ONBOARDING, {"first_name": "Pat", "last_name": "Example", "email": person["email"]})
    command(client, sandbox, person["id"])
    assert "you are the hire" in json.dumps(answers(sandbox)[-1]["blocks"])


@pytest.mark.parametrize("who", ["unknown", "bot", "deactivated"])
def test_an_unknown_person_is_told_and_shown_nothing(client, sandbox, secret, who):
    user_id = {"unknown": "U0NOBODY00", "bot": "U0BOT00001"}.get(who)
    if user_id is None:
        user_id = sandbox.client.post("/slack/_sandbox/users", json={
            "email": "gone@officeflow.test", "real_name": "Gone", "deleted": True}).json()["id"]
    assert command(client, sandbox, user_id).status_code == 200
    [answer] = answers(sandbox)
    assert answer["response_type"] == "ephemeral" and "does not know you" in answer["text"]
    assert "blocks" not in answer


def test_an_unknown_subcommand_is_answered_at_once(client, sandbox, secret, person):
    response = command(client, sandbox, person["id"], "order pizza")
    assert response.status_code == 200
    reply = response.json()
    assert reply["response_type"] == "ephemeral" and "Unknown request `order pizza`" in reply["text"]


# --- the modal -------------------------------------------------------------------------------------

def open_modal(client, sandbox, person) -> dict[str, Any]:
    response = command(client, sandbox, person["id"], "request equipment", trigger_id=trigger_id(sandbox, person["id"]))
    assert response.status_code == 200 and response.content == b""
    [view] = [v for v in sandbox.state("slack")["views"].values() if v["user_id"] == person["id"]]
    return view


def submission(view: dict[str, Any], user_id: str, **values: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, value in values.items():
        state[name] = {name: {"type": "multi_static_select", "selected_options": [{"value": v} for v in value]}
                       if isinstance(value, list) else {"type": "plain_text_input", "value": value}}
    return {"type": "view_submission", "user": {"id": user_id}, "trigger_id": "1.2.3",
            "view": {**view, "state": {"values": state}}}


def test_request_equipment_opens_the_modal_for_the_person(client, sandbox, secret, person):
    view = open_modal(client, sandbox, person)
    assert view["callback_id"] == "officeflow_equipment_request" and view["title"]["text"] == "Request equipment"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "items", "reason", "for_email", "for_name", "approver_email"]
    assert json.loads(view["private_metadata"])["email"] == person["email"]
    assert answers(sandbox) == []


def test_an_expired_trigger_id_is_told_to_the_person(client, sandbox, secret, person):
    stale = trigger_id(sandbox, person["id"])
    time.sleep(3.2)  # Slack's trigger ids open a view within 3 s
    command(client, sandbox, person["id"], "request equipment", trigger_id=stale)
    [answer] = answers(sandbox)
    assert answer["response_type"] == "ephemeral" and "expired_trigger_id" in answer["text"]
    assert sandbox.state("slack").get("views", {}) == {}


@pytest.mark.parametrize("values, errors", [
    ({}, {"items": "Pick at least one item."}),
    ({"items": ["laptop"], "for_email": "not-an-email", "approver_email": "x@"},
     {"for_email": "'not-an-email' is not an e-mail address.", "approver_email": "'x@' is not an e-mail address."}),
    ({"items": ["laptop"], "reason": "x" * 501}, {"reason": "At most 500 characters."}),
    ({"items": ["laptop"]}, {"approver_email": "Name an approver: OfficeFlow has no people team to decide."}),
])
def test_invalid_input_is_shown_inline_and_starts_nothing(client, sandbox, secret, settings_env, person, values,
                                                          errors):
    settings_env.delenv("OFFICEFLOW_PEOPLE_TEAM_EMAIL", raising=False)  # the workflow's own rule: no approver
    view = open_modal(client, sandbox, person)
    response = interact(client, submission(view, person["id"], **values))
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": errors}
    assert runs_of(EQUIPMENT, person["email"]) == []
    assert [m for m in sandbox.state("slack")["messages"].values() for m in m if "equipment" in m.get("text", "")] == []


def test_a_form_of_someone_else_or_without_metadata_is_refused(client, sandbox, secret, person):
    view = open_modal(client, sandbox, person)
    other = interact(client, submission(view, "U0SEED0002", items=["laptop"]))
    assert other.json()["response_action"] == "errors" and "someone else" in other.json()["errors"]["items"]
    forged = interact(client, submission({**view, "private_metadata": ""}, person["id"], items=["laptop"]))
    assert forged.json()["response_action"] == "errors" and "out of date" in forged.json()["errors"]["items"]
    assert runs_of(EQUIPMENT, person["email"]) == []


def test_a_valid_request_starts_the_run_closes_the_modal_and_confirms_by_dm(client, sandbox, secret, person):
    view = open_modal(client, sandbox, person)
    payload = submission(view, person["id"], items=["laptop", "monitor"], reason="My screen died",
                         approver_email="admin@officeflow.test")
    response = interact(client, payload)
    assert response.status_code == 200 and response.json() == {"response_action": "clear"}
    [run_id] = runs_of(EQUIPMENT, person["email"])
    started = dag_run(EQUIPMENT, run_id)
    # The answer came back with the run only created: the work happens in the run, not in the request.
    assert started["state"] == "queued"
    conf = started["conf"]
    assert conf["items"] == ["laptop", "monitor"] and conf["reason"] == "My screen died"
    assert conf["requester_name"] == "Pat Example" and conf["source"] == "slack"
    assert conf["approver_email"] == "admin@officeflow.test" and conf["organization_id"] == "default"
    assert "Pat Example" in started["note"] and "in Slack" in started["note"]
    dm = next(m for msgs in sandbox.state("slack")["messages"].values() for m in msgs
              if "equipment request" in m.get("text", ""))
    assert f"/dags/{EQUIPMENT}/runs/{run_id}" in json.dumps(dm["blocks"])
    [entry] = [r for r in audit_rows(EQUIPMENT) if (r.details or {}).get("run_id") == run_id]
    assert entry.action == "workflow.triggered" and entry.outcome == "success"
    assert entry.actor == f"slack:{person['id']}"

    again = interact(client, payload)  # the same submission again (a retry): the same run, no second one
    assert again.json() == {"response_action": "clear"} and runs_of(EQUIPMENT, person["email"]) == [run_id]


def test_the_request_button_opens_the_modal(client, sandbox, secret, person):
    payload = {"type": "block_actions", "user": {"id": person["id"]}, "trigger_id": trigger_id(sandbox, person["id"]),
               "actions": [{"action_id": "officeflow_request_equipment", "type": "button"}]}
    assert interact(client, payload).json() == {}
    assert [v["callback_id"] for v in sandbox.state("slack")["views"].values()] == ["officeflow_equipment_request"]


# --- App Home --------------------------------------------------------------------------------------

def test_events_url_verification_and_app_home(client, sandbox, secret, person):
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    response = client.post("/slack/events", content=body, headers=sign(body, content_type="application/json"))
    assert response.json() == {"challenge": "abc123"}

    run(SMOKE, {}, hitl_assignee=person["email"])
    body = event_body({"type": "app_home_opened", "user": person["id"], "tab": "home"})
    response = client.post("/slack/events", content=body, headers=sign(body, content_type="application/json"))
    assert response.status_code == 200 and response.json() == {}
    state = sandbox.state("slack")
    home = state["views"][state["home"][person["id"]]]
    assert home["type"] == "home" and "Pending approvals* (1)" in json.dumps(home["blocks"])

    body = event_body({"type": "app_home_opened", "user": person["id"], "tab": "messages"})
    client.post("/slack/events", content=body, headers=sign(body, content_type="application/json"))
    assert sandbox.state("slack")["views"][home["id"]]["hash"] == home["hash"]  # the Messages tab: not republished


# --- driven by the sandbox's user over HTTP, within Slack's 3 s -----------------------------------

@pytest.fixture
def served(airflow_db, clean_store, sandbox, secret):
    with ServedGateway() as gateway:
        configure_app(sandbox, gateway.url)
        # A first request pays the gateway's start-up (its dispatcher, lazy imports) before the timed ones,
        # as a running api-server has.
        act(sandbox, "url_verification")
        yield gateway


def test_slow_slack_calls_happen_after_the_answer(sandbox, served, person):
    """users.info takes 4 s: the command and the event are still answered within Slack's 3 s (the sandbox
    drops a later answer as operation_timeout), and the summary and Home tab follow."""
    sandbox.fault("slack", path="/api/users.info", latency_ms=4000, count=2)
    answered = act(sandbox, "command", user_id=person["id"])
    assert answered["status"] == 200 and "error" not in answered, answered
    home = act(sandbox, "app_home_opened", user_id=person["id"])
    assert home["status"] == 200 and "error" not in home, home
    responses = wait_until(lambda: sandbox.state("slack")["command_responses"][answered["command_id"]], 20,
                           "the summary through response_url")
    assert "What is open for Pat Example" in json.dumps(responses[0]["blocks"])
    wait_until(lambda: person["id"] in sandbox.state("slack").get("home", {}), 20, "the Home tab")
    assert act(sandbox, "url_verification")["verified"] is True


def test_command_modal_submission_through_the_sandbox(sandbox, served, person):
    answered = act(sandbox, "command", user_id=person["id"], text="request equipment")
    assert answered["status"] == 200, answered
    view = wait_until(lambda: next((v for v in sandbox.state("slack").get("views", {}).values()
                                    if v["user_id"] == person["id"] and v["open"]), None), 10, "the modal")
    refused = act(sandbox, "view_submission", user_id=person["id"], view_id=view["id"],
                  values={"for_email": {"for_email": "nope"}})
    assert refused["view"]["open"] and set(refused["view"]["errors"]) == {"items", "for_email"}
    done = act(sandbox, "view_submission", user_id=person["id"], view_id=view["id"],
               values={"items": {"items": ["headset"]}, "approver_email": {"approver_email": "admin@officeflow.test"}})
    assert done["status"] == 200 and done["body"] == {"response_action": "clear"} and not done["view"]["open"], done
    [run_id] = runs_of(EQUIPMENT, person["email"])
    assert dag_run(EQUIPMENT, run_id)["conf"]["items"] == ["headset"]


def test_the_documented_sandbox_session(sandbox, served, settings_env, tmp_path):
    """docs/slack-and-calendar.md's commands, verbatim, against the sandbox and the served gateway."""
    import os
    import subprocess

    from tests.harness.docs import bash_block_with
    from tests.harness.slack import SIGNING_SECRET

    settings_env.setenv("OFFICEFLOW_PEOPLE_TEAM_EMAIL", "people.manager@officeflow.test")
    block = bash_block_with("docs/slack-and-calendar.md", "act/view_submission")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "SANDBOX": sandbox.url,
                                              "OFFICEFLOW_URL": served.url.removesuffix("/officeflow"),
                                              "OFFICEFLOW_SLACK_SIGNING_SECRET": SIGNING_SECRET})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'response_action': 'clear'}"
    confs = [dag_run(EQUIPMENT, r)["conf"] for r in runs_of(EQUIPMENT, "admin@officeflow.test")]
    assert any(c.get("reason") == "New starter" and c["items"] == ["laptop", "headset"] for c in confs), confs
