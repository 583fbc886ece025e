"""/api/v1/workflows in-process on the PostgreSQL store and Airflow metadata DB: CRUD and versions,
If-Match, every validation problem at once, authorization, read-only sources, deletion pausing the DAG,
and execution creating a real run of the DAG the factory (dags/declarative_workflows.py) built."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from include.officeflow.store import AuditLog, session_scope
from tests.harness.environment import REPO_ROOT
from tests.harness.gateway import gateway_client
from tests.harness.gateway_checks import assert_error, dag_runs, run_note
from tests.harness.store import truncate

API = "/api/v1/workflows"
FACTORY = REPO_ROOT / "dags" / "declarative_workflows.py"


@pytest.fixture
def store(clean_store: str) -> str:
    truncate(clean_store, "workflow_versions", "workflows", cascade=True)
    return clean_store


@pytest.fixture
def api(airflow_db, store):
    with gateway_client() as test_client:
        yield test_client


def definition(name: str | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name or f"wf_{uuid.uuid4().hex[:10]}",
        "description": "Welcome a contractor",
        "trigger": {"type": "manual"},
        "params": {"first_name": {"type": "string", "minLength": 1},
                   "email": {"type": "string", "format": "idn-email"},
                   "team": {"type": "string", "default": "Ops"}},
        "nodes": [
            {"id": "welcome", "type": "email",
             "config": {"template": "welcome", "to": "{{ params.email }}",
                        "variables": {"first_name": "{{ params.first_name }}"}}},
            {"id": "announce", "type": "slack_message", "depends_on": ["welcome"],
             "config": {"channel": "#general", "text": "Welcome {{ params.first_name }}"}},
        ],
    }
    body.update(changes)
    return body


def create(api, headers, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(API, json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == f'"{response.json()["version"]}"'
    return response.json()


def audit_actions(name: str) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.resource_id == name).order_by(AuditLog.id)))


def deploy_declarative_dags() -> None:
    """Parse the factory file and serialise its DAGs, as the dag-processor does on its next pass."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(FACTORY))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)


def test_create_get_list_and_versions(api, admin):
    body = definition()
    created = create(api, admin, body)
    name = body["name"]
    assert created["id"] == created["dag_id"] == name and created["source"] == "store"
    assert created["version"] == 1 and created["read_only"] is False and created["created_by"] == "user:admin"
    assert created["organization_id"] == "default" and created["params"]["team"]["default"] == "Ops"
    assert [(n["id"], n["depends_on"]) for n in created["nodes"]] == [("welcome", []), ("announce", ["welcome"])]

    fetched = api.get(f"{API}/{name}", headers=admin)
    assert fetched.status_code == 200 and fetched.json() == created and fetched.headers["ETag"] == '"1"'

    listing = api.get(API, headers=admin).json()
    by_name = {w["name"]: w for w in listing["workflows"]}
    assert listing["total_entries"] == len(listing["workflows"])
    assert by_name[name]["source"] == "store"
    assert by_name["new_contractor_welcome"]["source"] == "file" and by_name["new_contractor_welcome"]["read_only"]
    assert by_name["new_contractor_welcome"]["file"] == "include/workflows/new_contractor_welcome.yaml"
    onboarding = by_name["employee_onboarding"]
    assert onboarding["source"] == "python" and onboarding["read_only"] and onboarding["version"] is None
    assert "email" in onboarding["params"] and onboarding["nodes"], onboarding
    only_store = api.get(API, params={"source": "store"}, headers=admin).json()["workflows"]
    assert [w["name"] for w in only_store] == [name]

    versions = api.get(f"{API}/{name}/versions", headers=admin).json()
    assert versions["total_entries"] == 1 and versions["versions"][0]["definition"]["name"] == name
    assert audit_actions(name) == ["workflow.created"]


def test_put_adds_an_immutable_version_and_honours_if_match(api, admin):
    body = definition()
    name = body["name"]
    create(api, admin, body)
    edited = copy.deepcopy(body)
    edited["description"] = "Second draft"
    response = api.put(f"{API}/{name}", json=edited, headers={**admin, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.headers["ETag"] == '"2"'

    stale = api.put(f"{API}/{name}", json={**edited, "description": "lost update"}, headers={**admin, "If-Match": "1"})
    error = assert_error(stale, 412, "precondition_failed")
    assert "version 2" in error["message"]
    assert_error(api.put(f"{API}/{name}", json=edited, headers={**admin, "If-Match": "latest"}), 400,
                 "invalid_if_match")
    assert api.put(f"{API}/{name}", json=edited, headers=admin).json()["version"] == 3  # no If-Match: last wins

    versions = api.get(f"{API}/{name}/versions", headers=admin).json()["versions"]
    assert [(v["version"], v["definition"]["description"]) for v in versions] == [
        (3, "Second draft"), (2, "Second draft"), (1, "Welcome a contractor")]
    assert api.get(f"{API}/{name}", headers=admin).json()["description"] == "Second draft"

    renamed = api.put(f"{API}/{name}", json={**edited, "name": "another_name"}, headers=admin)
    assert renamed.status_code == 400 and renamed.json()["error"]["problems"][0]["path"] == "name"
    assert_error(api.put(f"{API}/no_such_workflow", json=definition("no_such_workflow"), headers=admin), 404,
                 "not_found")
    assert audit_actions(name) == ["workflow.created", "workflow.updated", "workflow.updated"]


def test_invalid_definition_lists_every_problem(api, admin):
    body = definition("Bad Name", trigger={"type": "schedule", "cron": "every day"})
    body["params"]["count"] = {"type": "integr"}
    body["nodes"] = [
        {"id": "a", "type": "email", "config": {"to": "{{ params.email }}", "colour": "red"}, "depends_on": ["c"]},
        {"id": "a", "type": "fax"},
        {"id": "c", "type": "slack_message", "config": {"channel": "#x", "text": "hi"}, "depends_on": ["d"]},
        {"id": "d", "type": "slack_message", "config": {"channel": "#x", "text": "hi"}, "depends_on": ["c", "zz"]},
    ]
    response = api.post(API, json=body, headers=admin)
    error = assert_error(response, 400, "invalid_workflow")
    problems = {(p["path"], p["message"].split(":")[0]) for p in error["problems"]}
    paths = [p["path"] for p in error["problems"]]
    assert {"name", "trigger.cron", "params.count.type", "nodes[0].config.colour", "nodes[0].config.template",
            "nodes[1].id", "nodes[1].type", "nodes[3].depends_on[1]", "nodes"} <= set(paths), problems
    messages = " | ".join(p["message"] for p in error["problems"])
    assert "unknown config key 'colour'" in messages and "dependency cycle: c -> d -> c" in messages
    assert error["message"] == f"the workflow definition has {len(paths)} problems"
    assert api.get(API, params={"source": "store"}, headers=admin).json()["total_entries"] == 0


def test_operator_refusing_its_config_is_a_problem_of_that_node(api, admin):
    body = definition()
    body["nodes"][1]["config"] = {"text": "hi"}  # neither channel nor user_email
    error = assert_error(api.post(API, json=body, headers=admin), 400, "invalid_workflow")
    assert error["problems"] == [{"path": "nodes[1].config", "message": "node 'announce': the slack_message operator "
                                  "refused its config: give exactly one of channel or user_email"}]


def test_names_of_bundled_workflows_are_refused(api, admin):
    python = assert_error(api.post(API, json=definition("employee_onboarding"), headers=admin), 400,
                          "invalid_workflow")
    assert python["problems"][0]["path"] == "name" and "bundled Python workflow" in python["problems"][0]["message"]
    file = assert_error(api.post(API, json=definition("new_contractor_welcome"), headers=admin), 409, "conflict")
    assert "include/workflows/new_contractor_welcome.yaml" in file["message"]
    body = definition()
    create(api, admin, body)
    again = assert_error(api.post(API, json=body, headers=admin), 409, "conflict")
    assert "PUT a new version" in again["message"]


def test_file_and_python_workflows_are_read_only(api, admin):
    yaml_put = api.put(f"{API}/new_contractor_welcome", json=definition("new_contractor_welcome"), headers=admin)
    assert "change that file" in assert_error(yaml_put, 409, "read_only")["message"]
    assert "bundled Python DAG" in assert_error(api.delete(f"{API}/employee_onboarding", headers=admin), 409,
                                                "read_only")["message"]
    assert_error(api.get(f"{API}/employee_onboarding/versions", headers=admin), 404, "not_found")
    described = api.get(f"{API}/new_contractor_welcome", headers=admin).json()
    assert described["source"] == "file" and described["version"] is None
    assert [n["type"] for n in described["nodes"]] == ["email", "slack_message"]
    assert_error(api.get(f"{API}/nothing_here", headers=admin), 404, "not_found")


def test_authorization(api, auth_headers):
    body = definition()
    assert_error(api.get(API), 401, "unauthorized")
    assert_error(api.post(API, json=body), 401, "unauthorized")
    # Workflows hold operator config (connection ids): only the OfficeFlow permissions open them; Airflow's
    # Viewer and Op roles hold none.
    for username in ("viewer", "op"):
        viewer = auth_headers(username)
        assert_error(api.get(API, headers=viewer), 403, "forbidden")
        assert_error(api.post(API, json=body, headers=viewer), 403, "forbidden")
        assert_error(api.post(f"{API}/new_contractor_welcome/execute", json={"conf": {}}, headers=viewer), 403,
                     "forbidden")
    viewer = auth_headers("viewer")
    operator = auth_headers("officeflow-admin")
    assert api.get(API, headers=operator).status_code == 200
    created = create(api, operator, body)
    assert created["created_by"] == "user:officeflow-admin"
    assert_error(api.delete(f"{API}/{body['name']}", headers=viewer), 403, "forbidden")
    assert_error(api.delete(f"{API}/{body['name']}", headers=auth_headers("op")), 403, "forbidden")
    assert api.delete(f"{API}/{body['name']}", headers=operator).status_code == 204


def test_execute_creates_a_run_of_the_generated_dag(api, admin):
    body = definition()
    name = body["name"]
    create(api, admin, body)
    conf = {"first_name": "Ada", "email": "ada@example.com"}

    not_parsed = api.post(f"{API}/{name}/execute", json={"conf": conf}, headers=admin)
    assert assert_error(not_parsed, 409, "not_available") and not_parsed.headers["Retry-After"] == "30"

    deploy_declarative_dags()
    response = api.post(f"{API}/{name}/execute", json={"conf": conf, "dag_run_id": f"run_{name}"},
                        headers={**admin, "X-Correlation-ID": f"exec-{name}"})
    assert response.status_code == 201, response.text
    assert response.json() == {"dag_id": name, "dag_run_id": f"run_{name}", "version": 1}
    assert response.headers["X-Correlation-ID"] == f"exec-{name}"
    # The run carries the workflow's organization and the request's correlation id (every task logs it).
    assert [(d, c) for d, _, c, _ in dag_runs(f"run_{name}")] == [
        (name, {**conf, "organization_id": "default", "correlation_id": f"exec-{name}"})]
    again = api.post(f"{API}/{name}/execute", json={"conf": conf, "dag_run_id": f"run_{name}"}, headers=admin)
    assert again.status_code == 201 and len(dag_runs(f"run_{name}")) == 1  # same run id: no second run

    fresh = api.post(f"{API}/{name}/execute", json={"conf": conf}, headers=admin).json()["dag_run_id"]
    assert fresh.startswith("officeflow_api__") and dag_runs(fresh)[0][0] == name
    assert audit_actions(name) == ["workflow.created", "workflow.executed", "workflow.executed",
                                   "workflow.executed", "workflow.executed"]


def test_execute_with_bad_conf_lists_every_problem_and_creates_no_run(api, admin):
    response = api.post(f"{API}/new_contractor_welcome/execute",
                        json={"conf": {"email": "not-an-address", "department": 7}, "dag_run_id": "bad_conf_run"},
                        headers=admin)
    error = assert_error(response, 400, "invalid_conf")
    assert {p["path"] for p in error["problems"]} == {"conf.first_name", "conf.email", "conf.department"}
    assert dag_runs("bad_conf_run") == []


def test_bundled_yaml_workflow_executes(api, admin):
    run_id = f"yaml_{uuid.uuid4().hex[:8]}"
    conf = {"first_name": "Grace", "email": "grace@example.com"}
    response = api.post(f"{API}/new_contractor_welcome/execute", json={"conf": conf, "dag_run_id": run_id},
                        headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["version"] is None
    cid = response.headers["X-Correlation-ID"]  # none sent: the gateway made one, and the run carries it
    assert [(d, c) for d, _, c, _ in dag_runs(run_id)] == [
        ("new_contractor_welcome", {**conf, "organization_id": "default", "correlation_id": cid})]
    # The run's note in the UI says whose run it is and who started it how.
    assert run_note(run_id).startswith("**Grace (grace@example.com)** · started by admin through the workflows "
                                       "API · correlation `")


def test_delete_is_soft_pauses_the_dag_and_a_recreate_continues_the_versions(api, admin):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    body = definition()
    name = body["name"]
    create(api, admin, body)
    deploy_declarative_dags()
    assert_error(api.delete(f"{API}/{name}", headers={**admin, "If-Match": "7"}), 412, "precondition_failed")
    assert api.delete(f"{API}/{name}", headers={**admin, "If-Match": "1"}).status_code == 204
    with create_session() as session:
        model = session.get(DagModel, name)
        assert model is not None and model.is_paused is True

    assert_error(api.get(f"{API}/{name}", headers=admin), 404, "not_found")
    assert_error(api.delete(f"{API}/{name}", headers=admin), 404, "not_found")
    assert_error(api.post(f"{API}/{name}/execute", json={"conf": {}}, headers=admin), 404, "not_found")
    assert name not in {w["name"] for w in api.get(API, headers=admin).json()["workflows"]}
    assert api.get(f"{API}/{name}/versions", headers=admin).json()["total_entries"] == 1  # kept

    from include.officeflow.workflow_store import latest_definitions

    assert name not in {d.name for d in latest_definitions()}  # the factory no longer builds it

    recreated = create(api, admin, body)
    assert recreated["version"] == 2
    with create_session() as session:
        model = session.get(DagModel, name)
        assert model is not None and model.is_paused is False
    assert audit_actions(name) == ["workflow.created", "workflow.deleted", "workflow.created"]


def test_node_types_reference(api, admin):
    types = {t["type"]: t for t in api.get(f"{API}/node-types", headers=admin).json()["node_types"]}
    assert types["email"]["operator"] == "operators.email.SendTemplatedEmailOperator"
    assert types["email"]["config"]["template"] == "required" and types["email"]["config"]["reply_to"] == "optional"
    assert "options" not in types["slack_approval"]["config"]


def test_a_webhook_trigger_routes_its_endpoint_to_the_workflow(api, admin):
    endpoint = api.post("/api/v1/webhook-endpoints", headers=admin, json={
        "name": "contractors", "adapter": "generic", "target_dag_id": "employee_onboarding"}).json()
    routed = definition(trigger={"type": "webhook", "endpoint_id": endpoint["id"], "event_type": "contractor.hired"})
    create(api, admin, routed)
    stored = api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=admin).json()
    assert stored["routes"] == {"contractor.hired": routed["name"]}
    assert stored["target_dag_id"] == "employee_onboarding"  # other event types still go where they went

    default = definition(trigger={"type": "webhook", "endpoint_id": endpoint["id"]})
    create(api, admin, default)
    stored = api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=admin).json()
    assert stored["target_dag_id"] == default["name"] and stored["routes"] == {"contractor.hired": routed["name"]}

    # An endpoint that does not exist (or belongs to another organization) is a problem; nothing is stored.
    missing = definition(trigger={"type": "webhook", "endpoint_id": "ep_doesnotexist0000"})
    response = api.post(API, json=missing, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["problems"] == [
        {"path": "trigger.endpoint_id",
         "message": "no webhook endpoint 'ep_doesnotexist0000' in organization 'default'"}]
    assert api.get(f"{API}/{missing['name']}", headers=admin).status_code == 404
    elsewhere = definition(organization_id="acme", trigger={"type": "webhook", "endpoint_id": endpoint["id"]})
    assert api.post(API, json=elsewhere, headers=admin).status_code == 400
