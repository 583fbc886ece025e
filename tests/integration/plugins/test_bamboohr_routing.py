"""BambooHR lifecycle events routed to their workflows, in-process on real PostgreSQL and Airflow DBs.

The built-in endpoint routes ``employee.created`` -> onboarding, ``employee.terminated`` and
``employee.deleted`` -> offboarding, ``employee.job_changed`` -> role change; a stored BambooHR endpoint
does the same through its own ``routes``. One payload mapping serves every route, because a run's conf is
only validated against the params its own DAG declares. Events without field values (Deleted entries, event-based
payloads) are read from BambooHR's API first: test_bamboohr_fieldless.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from include.officeflow.inbox import run_id_for
from include.officeflow.mapping import MappingError, ParamsValidator, apply_mapping
from plugins.officeflow_gateway.adapters import Delivery
from plugins.officeflow_gateway.adapters.bamboohr import BambooHRAdapter
from sandbox.bamboohr.samples import (
    sample_deletion,
    sample_hire,
    sample_job_change,
    sample_termination,
)
from tests.harness.endpoints import BAMBOOHR_SECRET, bamboohr_headers, create_endpoint, delivery_url
from tests.harness.gateway import URL, signed, wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events, run_note

ONBOARDING, OFFBOARDING, ROLE_CHANGE = "employee_onboarding", "employee_offboarding", "employee_role_change"
ROUTES = {"employee.terminated": OFFBOARDING, "employee.deleted": OFFBOARDING, "employee.job_changed": ROLE_CHANGE}
TIMESTAMP = "2026-11-02T09:00:00+0000"  # fixed, so a redelivery is byte-identical


def new_employee() -> str:
    return str(uuid.uuid4().int % 10**9)


def body_of(payload: dict[str, Any]) -> bytes:
    if "employees" in payload:
        payload["employees"][0]["timestamp"] = TIMESTAMP
    else:
        payload["timestamp"] = TIMESTAMP
    return json.dumps(payload).encode()


def deletion_with_fields(employee_id: str) -> dict[str, Any]:
    """A ``Deleted`` entry whose webhook posts the work email (offboarding needs it)."""
    payload = sample_deletion(employee_id)
    payload["employees"][0]["fields"] = {"workEmail": f"ada.{employee_id}@example.com"}
    return payload


LIFECYCLE: list[Any] = [
    pytest.param(sample_hire, "employee.created", ONBOARDING, id="hire"),
    pytest.param(sample_termination, "employee.terminated", OFFBOARDING, id="termination"),
    pytest.param(deletion_with_fields, "employee.deleted", OFFBOARDING, id="deletion"),
    pytest.param(sample_job_change, "employee.job_changed", ROLE_CHANGE, id="job-change"),
]


def stored(event_id: str):
    [event] = [e for e in events() if e.id == event_id]
    return event


@pytest.mark.parametrize(("make", "event_type", "dag_id"), LIFECYCLE)
def test_builtin_endpoint_starts_the_workflow_of_each_lifecycle_event(
        client, make: Callable[[str], dict], event_type: str, dag_id: str):
    employee = new_employee()
    body = body_of(make(employee))
    response = client.post(URL, content=body, headers={**signed(body), "X-Correlation-ID": f"route-{employee}"})
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["status"] == "pending" and data["correlationId"] == f"route-{employee}"
    event = stored(data["event_id"])
    assert (event.event_type, event.dag_id, event.endpoint_id) == (event_type, dag_id, "bamboohr")
    conf = event.payload["conf"]
    assert conf["employee_id"] == employee and conf["event_type"] == event_type
    assert (conf["organization_id"], conf["correlation_id"], conf["source"]) == (
        "default", f"route-{employee}", "bamboohr")

    triggered = wait_status(data["event_id"], "triggered")
    [(run_dag, run_id, run_conf, _)] = dag_runs(data["dag_run_id"])
    assert (run_dag, run_id) == (dag_id, run_id_for("bamboohr", triggered.provider_event_id))
    assert run_conf == conf
    # The run's note names the event it came from (and the person, when the payload names them).
    note = run_note(run_id)
    assert f"started by BambooHR event {event_type} ({triggered.provider_event_id})" in note, note
    assert note.endswith(f"correlation `route-{employee}`"), note


def test_redelivered_termination_is_one_event_and_one_offboarding_run(client):
    body = body_of(sample_termination(new_employee()))
    first = client.post(URL, content=body, headers=signed(body)).json()
    wait_status(first["event_id"], "triggered")
    again = client.post(URL, content=body, headers=signed(body))
    assert again.status_code == 202
    assert again.json()["events"][0]["duplicate"] is True
    assert (again.json()["event_id"], again.json()["dag_run_id"]) == (first["event_id"], first["dag_run_id"])
    assert len(events()) == 1
    assert [d for d, *_ in dag_runs(first["dag_run_id"])] == [OFFBOARDING]


def test_a_job_change_and_a_termination_of_one_employee_start_both_workflows(client):
    employee = new_employee()
    started = []
    for payload in (sample_job_change(employee), sample_termination(employee)):
        body = body_of(payload)
        response = client.post(URL, content=body, headers=signed(body))
        assert response.status_code == 202 and response.json()["events"][0]["duplicate"] is False
        started.append(wait_status(response.json()["event_id"], "triggered"))
    assert [e.dag_id for e in started] == [ROLE_CHANGE, OFFBOARDING]
    assert started[0].dag_run_id != started[1].dag_run_id


@pytest.mark.parametrize("payload", [
    pytest.param({"employees": [{"action": "Updated", "id": "1", "timestamp": TIMESTAMP,
                                 "changedFields": ["firstName", "homeEmail"], "fields": {"firstName": "Ada"}}]},
                 id="field-based-personal-fields"),
    pytest.param({"employees": [{"action": "Updated", "id": "1", "timestamp": TIMESTAMP,
                                 "changedFields": ["status"], "fields": {"status": "Active"}}]},
                 id="field-based-reactivation"),
    pytest.param({"type": "employee.updated", "timestamp": TIMESTAMP,
                  "data": {"employeeId": "1", "changedFields": ["homePhone", "firstName"]}},
                 id="event-based-personal-fields"),
])
def test_other_updates_are_stored_as_ignored_without_a_run(client, payload):
    body = json.dumps(payload).encode()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["dag_run_id"]) == ("ignored", None)
    [event] = events()
    assert (event.status, event.event_type, event.dag_id, event.dag_run_id) == (
        "ignored", "employee.updated", None, None)
    assert event.payload["conf"] is None


@pytest.mark.parametrize("payload", [
    pytest.param({"employees": [{"action": "Updated", "id": "1", "changedFields": {"0": "jobTitle"}}]},
                 id="changed-fields-not-a-list"),
    pytest.param({"employees": [
        {"action": "Updated", "id": "1", "changedFields": ["terminationDate"], "fields": {"terminationDate": "x"}},
        {"action": "Updated", "id": "2", "changedFields": ["jobTitle"], "fields": ["not", "an", "object"]},
    ]}, id="one-bad-entry-rejects-the-whole-delivery"),
    pytest.param({"type": "employee.updated", "data": {"changedFields": ["terminationDate"]}}, id="no-employee-id"),
])
def test_malformed_lifecycle_payload_is_400_and_stores_nothing(client, payload):
    body = json.dumps(payload).encode()
    assert_error(client.post(URL, content=body, headers=signed(body)), 400, "invalid_payload")
    assert events() == []


def test_builtin_routes_follow_the_settings(client, settings_env):
    """The workflows are settings: a renamed (not yet deployed) DAG keeps the event pending for it."""
    settings_env.setenv("OFFICEFLOW_OFFBOARDING_DAG_ID", "custom_offboarding")
    settings_env.setenv("OFFICEFLOW_ROLE_CHANGE_DAG_ID", "custom_role_change")
    settings_env.setenv("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "60")
    outcomes = {}
    for payload in (sample_termination(new_employee()), sample_deletion(new_employee()),
                    sample_job_change(new_employee())):
        body = body_of(payload)
        response = client.post(URL, content=body, headers=signed(body))
        assert response.status_code == 202 and response.json()["status"] == "pending", response.text
        event = stored(response.json()["event_id"])
        outcomes[event.event_type] = event.dag_id
    assert outcomes == {"employee.terminated": "custom_offboarding", "employee.deleted": "custom_offboarding",
                        "employee.job_changed": "custom_role_change"}


def test_stored_bamboohr_endpoint_routes_with_its_own_routes_and_organization(client, admin):
    endpoint = create_endpoint(client, admin, adapter="bamboohr", secret=BAMBOOHR_SECRET, organization_id="acme",
                               target_dag_id=ONBOARDING, event_types=["employee.created"], routes=ROUTES)
    assert endpoint["routes"] == ROUTES
    started = {}
    for payload in (sample_hire(new_employee()), sample_termination(new_employee()),
                    deletion_with_fields(new_employee()), sample_job_change(new_employee())):
        body = body_of(payload)
        response = client.post(delivery_url(endpoint), content=body, headers=bamboohr_headers(BAMBOOHR_SECRET, body))
        assert response.status_code == 202, response.text
        event = wait_status(response.json()["event_id"], "triggered")
        [(dag_id, _, conf, _)] = dag_runs(event.dag_run_id)
        assert dag_id == event.dag_id and conf["organization_id"] == "acme" and conf["source"] == "bamboohr"
        started[event.event_type] = dag_id
    assert started == {"employee.created": ONBOARDING, **ROUTES}
    # The built-in endpoint's key does not open it.
    body = body_of(sample_termination(new_employee()))
    assert_error(client.post(delivery_url(endpoint), content=body, headers=signed(body)), 401, "invalid_signature")


def test_the_endpoint_organization_wins_over_a_mapped_one(client, admin):
    mapping = {**BambooHRAdapter.default_mapping, "organization_id": "fields.company"}
    endpoint = create_endpoint(client, admin, adapter="bamboohr", secret=BAMBOOHR_SECRET, organization_id="acme",
                               event_types=["employee.created"], routes=ROUTES, mapping=mapping)
    payload = sample_job_change(new_employee())
    payload["employees"][0]["fields"]["company"] = "globex"
    body = body_of(payload)
    response = client.post(delivery_url(endpoint), content=body, headers=bamboohr_headers(BAMBOOHR_SECRET, body))
    assert response.status_code == 202, response.text
    assert stored(response.json()["event_id"]).payload["conf"]["organization_id"] == "acme"


# --- one mapping, three DAGs: only each DAG's declared params are checked ------------------------------


def mapped_conf(payload: dict[str, Any]) -> dict[str, Any]:
    """The conf the gateway builds for ``payload`` with the default BambooHR mapping."""
    delivery = Delivery(body=json.dumps(payload).encode(), headers={}, content_type="application/json",
                        client_ip=None, received_at=0.0)
    [event] = BambooHRAdapter().parse(delivery)
    conf = apply_mapping(BambooHRAdapter.default_mapping, event.document)
    return {**conf, "organization_id": "acme", "correlation_id": "cid-1", "source": "bamboohr"}


def declared_params(dag_id: str) -> dict[str, Any]:
    """The params of the DAG's latest serialised version, as the gateway's validator reads them."""
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
    assert dag is not None, f"{dag_id} is not serialised (is dags/{dag_id}.py there?)"
    return dict(dag.params.items())


class CountingReads(ParamsValidator):
    """Counts the deserialisations of a DAG (the costly read) on Airflow's real metadata DB."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=0)
        self.reads = 0

    def _read_params(self, dag_id: str, session: Any) -> Any:
        self.reads += 1
        return super()._read_params(dag_id, session)


def test_params_are_read_again_only_from_a_new_version_of_the_dag(airflow_db):
    """Re-reading a workflow's params every ``ttl`` seconds asks for its latest version's hash; the DAG is
    deserialised again only when that changed (a new version parsed), and a DAG no longer serialised is unknown."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    from include.officeflow.mapping import latest_dag_hash

    validator = CountingReads()
    conf = mapped_conf(sample_hire(new_employee()))
    for _ in range(3):
        validator._cache_params(ONBOARDING)
        assert validator.validate(ONBOARDING, conf) is True
    assert validator.reads == 1

    with create_session() as session:
        original = latest_dag_hash(ONBOARDING, session)
        latest = session.scalars(select(SerializedDagModel).where(SerializedDagModel.dag_id == ONBOARDING)
                                 .where(SerializedDagModel.dag_hash == original)).one()
        latest.dag_hash = "a-new-version"
    try:
        validator._cache_params(ONBOARDING)
        validator._cache_params(ONBOARDING)
        assert validator.reads == 2
        with pytest.raises(MappingError) as refused:
            validator.validate(ONBOARDING, {**conf, "email": "not an address"})
        assert refused.value.field == "email"
    finally:
        with create_session() as session:
            session.execute(update(SerializedDagModel).where(SerializedDagModel.dag_hash == "a-new-version")
                            .values(dag_hash=original))
    assert validator._cache_params("not_a_dag") is None
    assert validator.validate("not_a_dag", conf) is False


@pytest.mark.parametrize(("make", "dag_id"), [
    pytest.param(sample_hire, ONBOARDING, id="onboarding"),
    pytest.param(sample_termination, OFFBOARDING, id="offboarding"),
    pytest.param(sample_job_change, ROLE_CHANGE, id="role-change"),
])
def test_one_mapping_serves_every_routed_dag(airflow_db, make, dag_id):
    from airflow.serialization.definitions.notset import is_arg_set

    validator = ParamsValidator()
    conf = mapped_conf(make(new_employee()))
    declared = declared_params(dag_id)
    # Keys the DAG does not declare (the other workflows' params, or anything else) are not checked ...
    extra = {**conf, "not_a_param_of_any_dag": {"x": 1}}
    assert set(extra) - set(declared)
    assert validator.validate(dag_id, extra) is True
    # ... while each of its own required params still is.
    required = [name for name, param in declared.items() if not is_arg_set(param.value)]
    for name in required:
        assert name in conf, f"the default mapping does not give {dag_id} its required {name!r}"
        with pytest.raises(MappingError) as missing:
            validator.validate(dag_id, {k: v for k, v in conf.items() if k != name})
        assert missing.value.field == name
