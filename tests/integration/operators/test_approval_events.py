"""The approval's domain events (operators/slack/approvals.py): ``approval.requested`` when the Slack request is
about to be posted, ``approval.decided`` when the task resumes with the answer, in the store's outbox; ids only
(Slack user ids, Airflow user ids), never the approvers' e-mail addresses. Against the sandbox's Slack and the
PostgreSQL store; the whole path through real Airflow processes (a click in Slack) is in
tests/e2e/test_slack_approval.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.standard.exceptions import HITLTimeoutError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from include.officeflow.errors import NotFound
from include.officeflow.store import OutboxEvent, session_scope
from operators.slack import SlackApprovalOperator
from operators.slack.approvals import _SlackApprovalRequest

APPROVER = "admin@officeflow.test"  # the sandbox's seeded Slack user U0SEED0001
APPROVER_SLACK_ID = "U0SEED0001"
CHANNEL = "C0GENERAL0"


@pytest.fixture
def approvals(sandbox, clean_store, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.officeflow.test")
    return sandbox


def outbox(store_url: str | None = None) -> list[dict[str, Any]]:
    with session_scope(store_url) as session:
        return [row.event for row in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]


def context(conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the task runner hands the operator: its task instance (its id is the HITL request's key) and run."""
    ti = SimpleNamespace(id=uuid.uuid4(), dag_id="equipment_request", run_id=f"manual__{uuid.uuid4().hex[:8]}",
                         task_id="equipment.approval", map_index=-1, try_number=1)
    conf = {"organization_id": "acme", "correlation_id": "cid-7"} if conf is None else conf
    return {"ti": ti, "task_instance": ti, "dag_run": SimpleNamespace(conf=conf), "run_id": ti.run_id}


def operator(approvers: list[str] | None = None) -> SlackApprovalOperator:
    return SlackApprovalOperator(task_id="approval", subject="Laptop for Ada", channel="#general",
                                 approvers=approvers or [APPROVER])


def answer(option: str, responder: str) -> dict[str, Any]:
    """The event the task resumes with (Airflow's HITL response)."""
    return {"chosen_options": [option], "params_input": {}, "responded_at": datetime(2026, 12, 2, 12, tzinfo=UTC),
            "responded_by_user": {"id": responder, "name": responder}}


def test_a_request_then_a_slack_approval_write_requested_then_decided(approvals):
    op, ctx = operator(), context()
    _SlackApprovalRequest(op).notify(ctx)
    assert any(ctx["run_id"] in str(m["blocks"]) for m in approvals.state("slack")["messages"][CHANNEL])
    result = op.execute_complete(ctx, answer("Approve", APPROVER))  # as the gateway records a Slack click
    assert result["chosen_options"] == ["Approve"]

    requested, decided = outbox()
    approval_id = str(ctx["ti"].id)
    assert (requested["type"], decided["type"]) == ("com.officeflow.approval.requested",
                                                    "com.officeflow.approval.decided")
    assert requested["subject"] == decided["subject"] == approval_id
    assert (decided["organizationid"], decided["correlationid"]) == ("acme", "cid-7")
    assert requested["data"] == {"approval_id": approval_id, "dag_id": "equipment_request", "run_id": ctx["run_id"],
                                 "task_id": "equipment.approval", "map_index": -1, "try_number": 1,
                                 "approver_slack_user_ids": [APPROVER_SLACK_ID]}
    assert {k: decided["data"][k] for k in ("decision", "chosen_options", "approver_user_id",
                                            "approver_slack_user_id", "responded_at")} == {
        "decision": "approved", "chosen_options": ["Approve"], "approver_user_id": None,
        "approver_slack_user_id": APPROVER_SLACK_ID, "responded_at": "2026-12-02T12:00:00+00:00"}
    assert APPROVER not in json.dumps([requested, decided])

    op.execute_complete(ctx, answer("Approve", APPROVER))  # the task resumed twice with one answer
    assert len(outbox()) == 2


def test_a_rejection_in_the_airflow_ui_names_the_airflow_user_id(approvals):
    op, ctx = operator(), context(conf={})
    _SlackApprovalRequest(op).notify(ctx)
    op.execute_complete(ctx, answer("Reject", "7"))
    [_, decided] = outbox()
    assert (decided["data"]["decision"], decided["data"]["approver_user_id"]) == ("rejected", "7")
    assert decided["data"]["approver_slack_user_id"] is None
    assert "organizationid" not in decided


def test_a_timeout_is_decided_as_timed_out_and_fails_the_task(approvals):
    op, ctx = operator(), context()
    with pytest.raises(HITLTimeoutError):
        op.execute_complete(ctx, {"error": "timed out", "error_type": "timeout"})
    [decided] = outbox()
    assert decided["data"]["decision"] == "timed_out" and decided["data"]["approver_user_id"] is None


def test_an_unknown_approver_asks_nobody_and_writes_nothing(approvals):
    with pytest.raises(NotFound):
        _SlackApprovalRequest(operator(["nobody@officeflow.test"]))._post(context())
    assert outbox() == [] and not approvals.state("slack")["messages"].get(CHANNEL)


def test_a_store_that_is_down_fails_the_request_before_anyone_is_asked(approvals, store_url, settings_env):
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql+psycopg2://nobody:nothing@127.0.0.1:9/officeflow")
    with pytest.raises(OperationalError):
        _SlackApprovalRequest(operator()).notify(context())
    assert not approvals.state("slack")["messages"].get(CHANNEL)
    assert outbox(store_url) == []


def test_a_retried_approval_request_whose_answer_was_lost_is_posted_once(approvals):
    """The post reached Slack but its answer did not; the next try finds it rather than asking twice."""
    op, ctx = operator(), context()
    approvals.fault("slack", status=503, path="/api/chat.postMessage", after=True)
    _SlackApprovalRequest(op).notify(ctx)  # found in the channel's history: the try goes on
    ctx["ti"].try_number = 2
    _SlackApprovalRequest(op).notify(ctx)
    requests = [m for m in approvals.state("slack")["messages"][CHANNEL] if ctx["run_id"] in str(m.get("blocks"))]
    assert len(requests) == 1
    posts = [r["status"] for r in approvals.requests("slack") if r["path"] == "/api/chat.postMessage"]
    assert posts == [503]
