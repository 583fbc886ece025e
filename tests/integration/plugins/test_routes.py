"""Per-event-type routing: one HR webhook starts different workflows by event type."""

from __future__ import annotations

from plugins.officeflow_gateway.endpoints import EndpointConfig
from tests.harness.endpoints import create_endpoint, generic_body, generic_headers
from tests.harness.gateway import wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events


def config(**fields) -> EndpointConfig:
    base = dict(id="ep", organization_id="o", adapter="generic", target_dag_id="default_dag", event_types=(),
                routes={}, mapping={}, verification={}, rate_limit_per_minute=1, enabled=True, secrets=("s",))
    return EndpointConfig(**{**base, **fields})


def test_routes_win_then_the_filter_decides_the_default_target():
    endpoint = config(event_types=("hired",), routes={"left": "employee_offboarding"})
    assert endpoint.target_for("left") == "employee_offboarding"
    assert endpoint.target_for("hired") == "default_dag"
    assert endpoint.target_for("moved") is None
    assert config().target_for("anything") == "default_dag"  # no filter: every type


def test_one_endpoint_routes_event_types_to_their_workflows(client, admin):
    endpoint = create_endpoint(client, admin, event_types=["employee.created"],
                               routes={"employee.rehired": "employee_onboarding",
                                       "employee.terminated": "employee_offboarding"})
    assert endpoint["routes"]["employee.terminated"] == "employee_offboarding"
    path = endpoint["delivery_path"].removeprefix("/officeflow")

    def deliver(event_type: str):
        body = generic_body(event_type=event_type)
        return client.post(path, content=body, headers=generic_headers(endpoint["secret"], body))

    rehired = deliver("employee.rehired")
    assert rehired.status_code == 202
    wait_status(rehired.json()["event_id"], "triggered")
    assert [d for d, *_ in dag_runs(rehired.json()["dag_run_id"])] == ["employee_onboarding"]

    terminated = deliver("employee.terminated").json()  # its workflow is not deployed (yet): owed, not lost
    assert terminated["status"] == "pending"
    moved = deliver("employee.moved").json()
    assert moved["status"] == "ignored" and moved["dag_run_id"] is None
    by_id = {e.id: e for e in events()}
    assert by_id[terminated["event_id"]].dag_id == "employee_offboarding"


def test_invalid_routes_are_422(client, admin):
    response = client.post("/api/v1/webhook-endpoints", headers=admin,
                           json={"name": "x", "adapter": "generic", "target_dag_id": "employee_onboarding",
                                 "routes": {"employee.terminated": "not a dag id!"}})
    assert_error(response, 422, "validation_error")
