"""/api/v1/events in-process: listing with filters and paging, detail, and replay of rejected, ignored
and dead events, on a real PostgreSQL store and Airflow metadata DB."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from include.officeflow.inbox import run_id_for
from tests.harness.endpoints import (
    API,
    DAG,
    GENERIC_MAPPING,
    audit_rows,
    create_endpoint,
    delivery_url,
    generic_body,
    generic_headers,
)
from tests.harness.gateway import wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events

EVENTS = "/api/v1/events"


def deliver(client, endpoint: dict[str, Any], body: bytes, msg_id: str | None = None, **extra: str):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return client.post(delivery_url(endpoint), content=body,
                       headers=generic_headers(endpoint["secret"], body, msg_id=msg_id, **extra))


def only_event() -> Any:
    [event] = events()
    return event


def listing(client, admin, **params: Any) -> dict[str, Any]:
    response = client.get(EVENTS, params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


# --- authorization ---------------------------------------------------------------------------------


@pytest.fixture
def rejected_event(client, admin) -> tuple[dict[str, Any], str]:
    """An endpoint whose mapping misses the email, and the event it rejected."""
    endpoint = create_endpoint(client, admin, mapping={**GENERIC_MAPPING, "email": "data.mail"})
    response = deliver(client, endpoint, generic_body(), msg_id="msg_rejected")
    assert_error(response, 422, "unmappable_event")
    return endpoint, only_event().id


ROUTES = [("GET", EVENTS), ("GET", EVENTS + "/{id}"), ("POST", EVENTS + "/{id}/replay"), ("POST", EVENTS + "/replay")]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=["list", "get", "replay", "bulk-replay"])
def test_event_routes_need_a_token(client, rejected_event, method, path):
    _, event_id = rejected_event
    assert_error(client.request(method, path.format(id=event_id)), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=["list", "get", "replay", "bulk-replay"])
@pytest.mark.parametrize("username", ["viewer", "op"])  # neither role holds an OfficeFlow permission
def test_viewer_is_forbidden(client, auth_headers, rejected_event, method, path, username):
    endpoint, event_id = rejected_event
    client.patch(f"{API}/{endpoint['id']}", json={"mapping": GENERIC_MAPPING}, headers=auth_headers("admin"))
    response = client.request(method, path.format(id=event_id), headers=auth_headers(username))
    assert_error(response, 403, "forbidden")
    event = only_event()
    assert (event.status, event.attempts, event.dag_run_id) == ("rejected", 0, None)
    assert "webhook_event.replayed" not in [a.action for a in audit_rows()]


def test_officeflow_admin_may_replay(client, auth_headers, rejected_event):
    endpoint, event_id = rejected_event
    officeflow_admin = auth_headers("officeflow-admin")
    assert client.patch(f"{API}/{endpoint['id']}", json={"mapping": GENERIC_MAPPING},
                        headers=officeflow_admin).status_code == 200
    assert client.post(f"{EVENTS}/{event_id}/replay", headers=officeflow_admin).status_code == 202
    [replayed] = [a for a in audit_rows(event_id) if a.action == "webhook_event.replayed"]
    assert (replayed.actor, replayed.organization_id, replayed.source_ip) == (
        "user:officeflow-admin", "default", "testclient")
    wait_status(event_id, "triggered")


# --- list ------------------------------------------------------------------------------------------


def test_list_filters_by_endpoint_and_status_and_pages(client, admin):
    hires = create_endpoint(client, admin, event_types=["employee.created"])
    broken = create_endpoint(client, admin, mapping={**GENERIC_MAPPING, "email": "data.mail"})
    delivered: list[str] = []  # event ids, oldest first
    for endpoint, event_type in [(hires, "employee.created"), (broken, "employee.created"),
                                 (hires, "employee.updated"), (hires, "employee.created"),
                                 (broken, "employee.created")]:
        response = deliver(client, endpoint, generic_body(event_type=event_type))
        assert response.status_code in (202, 422), response.text
        delivered.append(next(e.id for e in events() if e.id not in delivered))
    triggered = [delivered[0], delivered[3]]
    for event_id in triggered:
        wait_status(event_id, "triggered")

    everything = listing(client, admin)
    assert everything["total_entries"] == 5
    assert [e["id"] for e in everything["events"]] == delivered[::-1]  # newest first
    assert "conf" not in everything["events"][0] and "document" not in everything["events"][0]

    by_endpoint = listing(client, admin, endpoint=hires["id"])
    assert by_endpoint["total_entries"] == 3
    assert [e["id"] for e in by_endpoint["events"]] == [delivered[3], delivered[2], delivered[0]]
    assert {e["endpoint_id"] for e in by_endpoint["events"]} == {hires["id"]}

    rejected = listing(client, admin, status="rejected")
    assert rejected["total_entries"] == 2 and {e["id"] for e in rejected["events"]} == {delivered[1], delivered[4]}
    assert all(e["status"] == "rejected" and e["error"].startswith("email:") for e in rejected["events"])
    ignored = listing(client, admin, status="ignored")
    assert [(e["id"], e["event_type"]) for e in ignored["events"]] == [(delivered[2], "employee.updated")]
    both = listing(client, admin, endpoint=hires["id"], status="triggered")
    assert both["total_entries"] == 2 and {e["id"] for e in both["events"]} == set(triggered)
    assert listing(client, admin, endpoint=broken["id"], status="triggered") == {"events": [], "total_entries": 0}
    assert listing(client, admin, endpoint="ep_unknown") == {"events": [], "total_entries": 0}

    pages = [listing(client, admin, limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [p["total_entries"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["events"]) for p in pages] == [2, 2, 1, 0]
    assert [e["id"] for p in pages for e in p["events"]] == delivered[::-1]
    filtered_page = listing(client, admin, endpoint=hires["id"], limit=1, offset=1)
    assert filtered_page["total_entries"] == 3 and [e["id"] for e in filtered_page["events"]] == [delivered[2]]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"status": "lost"}, "status"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
     ({"offset": -1}, "offset"), ({"limit": "many"}, "limit")],
    ids=["unknown-status", "limit-0", "limit-501", "negative-offset", "limit-not-int"],
)
def test_invalid_list_parameters_are_422(client, admin, params, fragment):
    error = assert_error(client.get(EVENTS, params=params, headers=admin), 422, "validation_error")
    assert fragment in error["message"]


# --- get -------------------------------------------------------------------------------------------


def test_get_event_has_conf_document_and_run_id_with_personal_data_redacted(client, admin):
    endpoint = create_endpoint(client, admin)
    body = generic_body("E-77", email="grace@example.com")
    response = deliver(client, endpoint, body, msg_id="msg_detail", **{"X-Correlation-ID": "detail-1"})
    assert response.status_code == 202, response.text
    event_id = response.json()["event_id"]
    wait_status(event_id, "triggered")

    detail = client.get(f"{EVENTS}/{event_id}", headers=admin)
    assert detail.status_code == 200, detail.text
    data = detail.json()
    assert {k: data[k] for k in ("id", "endpoint_id", "provider_event_id", "event_type", "status", "dag_id",
                                 "dag_run_id", "correlation_id", "error", "attempts", "next_attempt_at")} == {
        "id": event_id, "endpoint_id": endpoint["id"], "provider_event_id": "msg_detail",
        "event_type": "employee.created", "status": "triggered", "dag_id": DAG,
        "dag_run_id": run_id_for(endpoint["id"], "msg_detail"), "correlation_id": "detail-1", "error": None,
        "attempts": 1, "next_attempt_at": None}
    assert data["dag_run_id"] == response.json()["dag_run_id"]
    assert data["organization_id"] == "default" and data["redacted"] is True
    # Ids, types and technical values stay; names and addresses do not leave the inbox through the API.
    assert data["conf"] == {"employee_id": "E-77", "first_name": "[redacted]", "last_name": "[redacted]",
                            "email": "[redacted]", "correlation_id": "detail-1", "source": "generic",
                            "organization_id": "default"}
    assert data["document"] == {"type": "employee.created", "data": {
        "id": "E-77", "first_name": "[redacted]", "last_name": "[redacted]", "email": "[redacted]"}}
    assert data["payload_keys"] == ["data.email", "data.first_name", "data.id", "data.last_name", "type"]
    for personal in ("grace@example.com", "Ada", "Lovelace"):
        assert personal not in detail.text
    stored = only_event()
    assert stored.payload["conf"] == {"employee_id": "E-77", "first_name": "Ada", "last_name": "Lovelace",
                                      "email": "grace@example.com", "correlation_id": "detail-1",
                                      "source": "generic", "organization_id": "default"}
    assert stored.payload["document"] == json.loads(body)  # the inbox keeps everything (for replays)
    [(_, _, run_conf, _)] = dag_runs(data["dag_run_id"])
    assert run_conf == stored.payload["conf"]


def test_get_unknown_event_is_404(client, admin):
    missing = str(uuid.uuid4())
    error = assert_error(client.get(f"{EVENTS}/{missing}", headers=admin), 404, "not_found")
    assert missing in error["message"]


# --- replay ----------------------------------------------------------------------------------------


def test_replay_of_an_unknown_event_is_404(client, admin):
    assert_error(client.post(f"{EVENTS}/{uuid.uuid4()}/replay", headers=admin), 404, "not_found")
    assert audit_rows() == []


def test_replay_of_a_triggered_event_is_409_and_starts_no_second_run(client, admin):
    endpoint = create_endpoint(client, admin)
    response = deliver(client, endpoint, generic_body())
    event = wait_status(response.json()["event_id"], "triggered")
    error = assert_error(client.post(f"{EVENTS}/{event.id}/replay", headers=admin), 409, "conflict")
    assert "triggered" in error["message"]
    again = only_event()
    assert (again.status, again.attempts, again.dag_run_id) == ("triggered", 1, event.dag_run_id)
    assert len(dag_runs(event.dag_run_id)) == 1
    assert "webhook_event.replayed" not in [a.action for a in audit_rows()]


def test_replay_of_a_pending_event_is_409(client, admin, env):
    env.set("OFFICEFLOW_DISPATCH_BASE_DELAY_SECONDS", "60")
    endpoint = create_endpoint(client, admin, target_dag_id="not_deployed_yet")
    response = deliver(client, endpoint, generic_body())
    assert response.status_code == 202 and response.json()["status"] == "pending"
    error = assert_error(client.post(f"{EVENTS}/{response.json()['event_id']}/replay", headers=admin),
                         409, "conflict")
    assert "pending" in error["message"]
    assert only_event().status == "pending"


def test_rejected_event_is_replayed_once_its_endpoint_mapping_is_fixed(client, admin, rejected_event):
    endpoint, event_id = rejected_event
    original = only_event()
    still_broken = client.post(f"{EVENTS}/{event_id}/replay", headers=admin)
    assert "email" in assert_error(still_broken, 422, "unmappable_event")["message"]
    assert (only_event().status, only_event().error) == ("rejected", original.error)

    patched = client.patch(f"{API}/{endpoint['id']}", json={"mapping": GENERIC_MAPPING}, headers=admin)
    assert patched.status_code == 200
    replay = client.post(f"{EVENTS}/{event_id}/replay", headers={**admin, "X-Correlation-ID": "replay-1"})
    assert replay.status_code == 202, replay.text
    data = replay.json()
    run_id = run_id_for(endpoint["id"], "msg_rejected")
    assert (data["id"], data["dag_id"], data["dag_run_id"], data["error"], data["attempts"]) == (
        event_id, DAG, run_id, None, 0)
    assert data["conf"]["email"] == "[redacted]" and "ada@example.com" not in replay.text
    assert data["conf"]["correlation_id"] == original.correlation_id  # the delivery's, not the replay's

    event = wait_status(event_id, "triggered")
    assert event.attempts == 1 and event.dag_run_id == run_id
    assert event.payload["conf"]["email"] == "ada@example.com"
    assert event.payload["conf"]["correlation_id"] == original.correlation_id
    assert set(event.payload["conf"]) == set(data["conf"])
    [(dag_id, _, conf, _)] = dag_runs(run_id)
    assert dag_id == DAG and conf == event.payload["conf"]
    assert len(events()) == 1  # replayed in place, no second inbox row
    assert_error(client.post(f"{EVENTS}/{event_id}/replay", headers=admin), 409, "conflict")
    assert len(dag_runs(run_id)) == 1
    [replayed] = [a for a in audit_rows(event_id) if a.action == "webhook_event.replayed"]
    assert (replayed.actor, replayed.outcome, replayed.correlation_id, replayed.resource_type) == (
        "user:admin", "success", "replay-1", "webhook_event")
    assert (replayed.organization_id, replayed.source_ip) == ("default", "testclient")


def test_ignored_event_is_replayed_after_its_type_is_listed(client, admin):
    endpoint = create_endpoint(client, admin, event_types=["employee.created"])
    response = deliver(client, endpoint, generic_body(event_type="employee.rehired"), msg_id="msg_rehire")
    assert response.json()["status"] == "ignored"
    event_id = response.json()["event_id"]
    assert client.patch(f"{API}/{endpoint['id']}", json={"event_types": ["employee.created", "employee.rehired"]},
                        headers=admin).status_code == 200
    replay = client.post(f"{EVENTS}/{event_id}/replay", headers=admin)
    assert replay.status_code == 202 and replay.json()["status"] == "pending"
    wait_status(event_id, "triggered")
    assert len(dag_runs(run_id_for(endpoint["id"], "msg_rehire"))) == 1


def test_dead_event_is_replayed_once_its_target_dag_is_fixed(client, admin, env):
    env.set("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "1")
    endpoint = create_endpoint(client, admin, target_dag_id="no_such_dag")
    response = deliver(client, endpoint, generic_body(), msg_id="msg_dead")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    run_id = run_id_for(endpoint["id"], "msg_dead")
    assert response.json()["dag_run_id"] == run_id

    dead = wait_status(response.json()["event_id"], "dead")
    assert dead.attempts == 1 and dead.next_attempt_at is None
    assert (dead.error or "").startswith("dead after 1 attempts") and "no_such_dag" in dead.error
    assert dag_runs(run_id) == []
    assert [e["id"] for e in listing(client, admin, status="dead")["events"]] == [dead.id]

    patched = client.patch(f"{API}/{endpoint['id']}", json={"target_dag_id": DAG}, headers=admin)
    assert patched.status_code == 200
    replay = client.post(f"{EVENTS}/{dead.id}/replay", headers=admin)
    assert replay.status_code == 202, replay.text
    assert (replay.json()["status"], replay.json()["dag_id"], replay.json()["error"]) == ("pending", DAG, None)
    event = wait_status(dead.id, "triggered")
    assert event.attempts == 1 and event.error is None
    [(dag_id, _, conf, _)] = dag_runs(run_id)
    assert dag_id == DAG and conf["email"] == "ada@example.com"


def test_replay_after_the_endpoint_was_deleted_is_409(client, admin, rejected_event):
    endpoint, event_id = rejected_event
    assert client.delete(f"{API}/{endpoint['id']}", headers=admin).status_code == 204
    error = assert_error(client.post(f"{EVENTS}/{event_id}/replay", headers=admin), 409, "conflict")
    assert endpoint["id"] in error["message"]
    assert only_event().status == "rejected"


# --- bulk replay of dead letters ---------------------------------------------------------------------------


def dead_events(client, admin, endpoint: dict[str, Any], count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = deliver(client, endpoint, generic_body())
        assert response.status_code == 202, response.text
        ids.append(response.json()["event_id"])
    for event_id in ids:
        wait_status(event_id, "dead")
    return ids


def bulk_replay(client, admin, **selection: Any) -> dict[str, Any]:
    response = client.post(f"{EVENTS}/replay", json=selection, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_dead_letters_are_replayed_in_bulk_by_filter_once_each(client, admin, env):
    env.set("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "1")
    broken = create_endpoint(client, admin, target_dag_id="no_such_dag", name="broken")
    other = create_endpoint(client, admin, target_dag_id="no_such_dag", name="other")
    mine, theirs = dead_events(client, admin, broken, 3), dead_events(client, admin, other, 1)

    preview = bulk_replay(client, admin, endpoint=broken["id"], dry_run=True)
    assert (preview["matched"], sorted(preview["replayed"]), preview["dry_run"]) == (3, sorted(mine), True)
    assert {e.status for e in events()} == {"dead"}
    assert "webhook_event.bulk_replayed" not in [a.action for a in audit_rows()]

    assert client.patch(f"{API}/{broken['id']}", json={"target_dag_id": DAG}, headers=admin).status_code == 200
    done = bulk_replay(client, admin, endpoint=broken["id"], reason="NO_SUCH_DAG")
    assert (done["matched"], sorted(done["replayed"]), done["not_replayed"]) == (3, sorted(mine), [])
    for event_id in mine:
        event = wait_status(event_id, "triggered")
        assert len(dag_runs(event.dag_run_id)) == 1
    assert {e.id: e.status for e in events()}[theirs[0]] == "dead"  # another endpoint's: not selected

    again = bulk_replay(client, admin, endpoint=broken["id"], status="dead")
    assert (again["matched"], again["replayed"]) == (0, [])
    runs = [len(dag_runs(e.dag_run_id)) for e in events() if e.id in mine]
    assert runs == [1, 1, 1]

    replays = [a for a in audit_rows() if a.action == "webhook_event.replayed"]
    assert sorted(a.resource_id for a in replays) == sorted(mine) and all(a.details == {"bulk": True} for a in replays)
    summaries = [a.details for a in audit_rows() if a.action == "webhook_event.bulk_replayed"]
    assert summaries[0] == {"filter": {"status": "dead", "endpoint": broken["id"], "reason": "NO_SUCH_DAG",
                                       "limit": 100},
                            "matched": 3, "replayed": 3, "not_replayed": 0}


def test_a_bulk_replay_lists_what_it_could_not_replay_and_leaves_it(client, admin, env):
    env.set("OFFICEFLOW_DISPATCH_MAX_ATTEMPTS", "1")
    kept = create_endpoint(client, admin, target_dag_id="no_such_dag", name="kept")
    gone = create_endpoint(client, admin, target_dag_id="no_such_dag", name="gone")
    [fixable], [orphan] = dead_events(client, admin, kept, 1), dead_events(client, admin, gone, 1)
    assert client.patch(f"{API}/{kept['id']}", json={"target_dag_id": DAG}, headers=admin).status_code == 200
    assert client.delete(f"{API}/{gone['id']}", headers=admin).status_code == 204

    result = bulk_replay(client, admin, limit=10)
    assert result["replayed"] == [fixable]
    [refused] = result["not_replayed"]
    assert (refused["id"], refused["code"]) == (orphan, "conflict") and gone["id"] in refused["message"]
    wait_status(fixable, "triggered")
    assert {e.id: e.status for e in events()}[orphan] == "dead"


@pytest.mark.parametrize(("selection", "fragment"), [
    ({"received_after": "2026-12-02T00:00:00Z", "received_before": "2026-12-01T00:00:00Z"}, "received_after"),
    ({"status": "triggered"}, "status"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
])
def test_a_bad_bulk_replay_filter_is_422_and_replays_nothing(client, admin, rejected_event, selection, fragment):
    error = assert_error(client.post(f"{EVENTS}/replay", json=selection, headers=admin), 422, "validation_error")
    assert fragment in error["message"]
    assert only_event().status == "rejected"
    assert not [a for a in audit_rows() if a.action.startswith("webhook_event.")]


def test_a_time_window_selects_by_reception(client, admin, rejected_event):
    endpoint, event_id = rejected_event
    assert client.patch(f"{API}/{endpoint['id']}", json={"mapping": GENERIC_MAPPING}, headers=admin).status_code == 200
    assert bulk_replay(client, admin, status="rejected", received_before="2000-01-01T00:00:00Z")["matched"] == 0
    assert bulk_replay(client, admin, status="rejected", received_after="2000-01-01T00:00:00Z",
                       dry_run=True)["replayed"] == [event_id]
