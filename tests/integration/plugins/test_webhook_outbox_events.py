"""The webhook gateway's domain events: an accepted or rejected delivery and a dead-lettered or rejected dispatch
each write one ``com.officeflow.webhook.*`` event in the transaction of the inbox change; a duplicate writes none;
the events hold ids, never the payload's personal data."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from include.officeflow.inbox import run_id_for, store
from include.officeflow.store import EventStatus, OutboxEvent, session_scope
from plugins.officeflow_gateway import dispatcher as dispatch
from tests.harness.gateway import URL, hire_body, signed


@pytest.fixture
def client(airflow_db, clean_store):
    from plugins.officeflow_gateway.app import create_app

    dispatch.dispatcher.stop()  # these tests look at the events the delivery wrote, not at runs
    with TestClient(create_app()) as test_client:
        yield test_client


def outbox() -> list[OutboxEvent]:
    with session_scope() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))


def test_an_accepted_delivery_writes_one_accepted_event_with_ids_only(client, monkeypatch):
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)
    employee = str(uuid.uuid4().int % 10**9)
    body = hire_body(employee, "grace@example.com")
    response = client.post(URL, content=body, headers=signed(body, **{"X-Correlation-ID": "trace-7"}))
    assert response.status_code == 202, response.text
    accepted = response.json()
    [row] = outbox()
    event = row.event
    assert event["type"] == "com.officeflow.webhook.accepted" and event["subject"] == accepted["event_id"]
    assert event["source"] == "/officeflow/webhooks/bamboohr"
    assert (event["organizationid"], event["correlationid"]) == ("default", "trace-7")
    assert event["data"]["status"] == "pending" and event["data"]["dag_run_id"] == accepted["dag_run_id"]
    assert "grace@example.com" not in json.dumps(event) and "Ada" not in json.dumps(event)

    again = client.post(URL, content=body, headers=signed(body))  # a redelivery changes nothing
    assert again.json()["event_id"] == accepted["event_id"] and len(outbox()) == 1


def test_a_rejected_delivery_writes_a_rejected_event(client, monkeypatch):
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)
    body = json.dumps({"employees": [{"action": "Created", "id": "77",
                                      "fields": {"firstName": "No", "lastName": "Email"}}]}).encode()
    assert client.post(URL, content=body, headers=signed(body)).status_code == 422
    [row] = outbox()
    assert row.type == "com.officeflow.webhook.rejected" and row.event["data"]["status"] == "rejected"
    assert "error" not in row.event["data"]  # the reason may quote the payload: it stays in the inbox


def test_a_sender_made_id_that_event_data_may_not_hold_is_carried_as_a_digest(airflow_db, clean_store):
    for provider_id in ("ada.lovelace@example.com", "Bearer abc.def"):
        outcome = store(endpoint_id="test", provider_event_id=provider_id, event_type="employee.created",
                        document={}, conf={}, status=EventStatus.PENDING, dag_id="d",
                        dag_run_id=run_id_for("test", provider_id), correlation_id="cid-3", error=None)
        assert not outcome.duplicate  # stored: the delivery does not fail over its own id
    events = [row.event for row in outbox()]
    assert len(events) == 2 and all(e["data"]["provider_event_id"].startswith("sha256:") for e in events)
    assert "ada.lovelace" not in json.dumps(events) and "Bearer" not in json.dumps(events)


def _pending(dag_id: str, conf: dict) -> str:
    provider_id = f"evt-{uuid.uuid4().hex}"
    return store(endpoint_id="test", provider_event_id=provider_id, event_type="employee.created", document={},
                 conf=conf, status=EventStatus.PENDING, dag_id=dag_id, dag_run_id=run_id_for("test", provider_id),
                 correlation_id="cid-9", error=None, organization_id="acme").event_id


def test_dead_lettering_writes_a_dead_lettered_event_with_the_attempts(airflow_db, clean_store, settings_env,
                                                                        monkeypatch):
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)
    settings_env.setenv("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "2")
    event_id = _pending("never_deployed_dag", {"organization_id": "acme"})
    dispatch.dispatch_one(event_id)
    assert [r.type for r in outbox()] == ["com.officeflow.webhook.accepted"]  # a retry is no event
    assert dispatch.dispatch_one(event_id) == "dead"
    accepted, dead = outbox()
    assert dead.type == "com.officeflow.webhook.dead_lettered" and dead.subject == event_id == accepted.subject
    assert dead.event["data"]["attempts"] == 2 and dead.event["organizationid"] == "acme"
    assert dead.event["correlationid"] == "cid-9"


def test_a_conf_refused_at_dispatch_writes_a_rejected_event(airflow_db, clean_store, monkeypatch):
    monkeypatch.setattr(dispatch.dispatcher, "ensure_started", lambda: None)
    event_id = _pending("employee_onboarding", {"first_name": "Ada", "last_name": "L", "organization_id": "acme"})
    assert dispatch.dispatch_one(event_id) == "rejected"
    assert [r.type for r in outbox()] == ["com.officeflow.webhook.accepted", "com.officeflow.webhook.rejected"]
