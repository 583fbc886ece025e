"""/api/v1/webhook-endpoints in-process: CRUD, authorization, secrets, audit, and deliveries through
created endpoints (all three adapters) on a real PostgreSQL store and Airflow metadata DB.

The signing helpers shared with the other gateway API tests are in tests/harness/endpoints.py.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from include.officeflow.inbox import run_id_for
from include.officeflow.store import WebhookEndpoint, session_scope
from plugins.officeflow_gateway.adapters import generic
from tests.harness.endpoints import (
    API,
    BAMBOOHR_SECRET,
    DAG,
    GENERIC_MAPPING,
    WORKDAY_USER,
    audit_rows,
    bamboohr_headers,
    create_endpoint,
    delivery_url,
    generic_body,
    generic_headers,
    new_id,
    workday_headers,
)
from tests.harness.gateway import hire_body, wait_status
from tests.harness.gateway_checks import assert_error, dag_runs, events


def workday_body(event_id: str | None = None, *, email: str = "ada@example.com") -> bytes:
    return json.dumps({
        "eventId": event_id or f"WD-{new_id()}", "eventType": "Hire",
        "worker": {"id": "21001", "firstName": "Ada", "lastName": "Lovelace", "workEmail": email,
                   "department": "Engineering", "jobTitle": "Engineer", "hireDate": "2026-03-02"},
    }).encode()


def signed_delivery(adapter: str, secret: str, **extra: str) -> tuple[bytes, dict[str, str]]:
    """A fresh, valid hire delivery for ``adapter`` authenticated with ``secret``."""
    if adapter == "generic":
        body = generic_body()
        return body, generic_headers(secret, body, **extra)
    if adapter == "bamboohr":
        body = hire_body(new_id())
        return body, bamboohr_headers(secret, body, **extra)
    body = workday_body()
    return body, workday_headers(secret, **extra)


def endpoint_row(endpoint_id: str) -> WebhookEndpoint | None:
    with session_scope() as session:
        return session.get(WebhookEndpoint, endpoint_id)


def stored_conf(event_id: str) -> dict[str, Any]:
    [event] = [e for e in events() if e.id == event_id]
    return event.payload["conf"]


# --- authorization ---------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", API, None),
    ("POST", API, {"name": "x", "adapter": "generic", "target_dag_id": DAG, "mapping": GENERIC_MAPPING}),
    ("GET", API + "/{id}", None),
    ("PATCH", API + "/{id}", {"rate_limit_per_minute": 1}),
    ("POST", API + "/{id}/disable", None),
    ("POST", API + "/{id}/rotate-secret", {"overlap_seconds": 0}),
    ("DELETE", API + "/{id}", None),
]
ROUTE_IDS = [f"{method} {path.removeprefix(API) or '/'}" for method, path, _ in ROUTES]


@pytest.mark.parametrize(("method", "path", "payload"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        pytest.param(None, 401, "unauthorized", id="no-token"),
        # Airflow's token check (GetUserDep) answers an undecodable JWT with 403 "Invalid JWT token".
        pytest.param("not-a-jwt", 403, "forbidden", id="garbage-token"),
    ],
)
def test_every_route_needs_a_valid_token(client, admin, method, path, payload, token, status, code):
    endpoint = create_endpoint(client, admin)
    before = endpoint_row(endpoint["id"])
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.request(method, path.format(id=endpoint["id"]), json=payload, headers=headers)
    assert_error(response, status, code)
    after = endpoint_row(endpoint["id"])
    assert (after.updated_at, after.enabled, after.secret_encrypted) == (
        before.updated_at, before.enabled, before.secret_encrypted)
    assert len(client.get(API, headers=admin).json()["endpoints"]) == 1
    assert [a.action for a in audit_rows()] == ["webhook_endpoint.created"]


@pytest.mark.parametrize(("method", "path", "payload"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("username", ["viewer", "op"])  # neither role holds an OfficeFlow permission
def test_viewer_is_forbidden_on_every_route(client, admin, auth_headers, method, path, payload, username):
    endpoint = create_endpoint(client, admin)
    before = endpoint_row(endpoint["id"])
    response = client.request(method, path.format(id=endpoint["id"]), json=payload,
                              headers=auth_headers(username))
    error = assert_error(response, 403, "forbidden")
    assert "not allowed" in error["message"]
    after = endpoint_row(endpoint["id"])
    assert (after.updated_at, after.enabled, after.secret_encrypted) == (
        before.updated_at, before.enabled, before.secret_encrypted)
    assert len(client.get(API, headers=admin).json()["endpoints"]) == 1
    assert [a.action for a in audit_rows()] == ["webhook_endpoint.created"]


def test_officeflow_admin_may_manage_endpoints_and_is_the_audited_actor(client, auth_headers):
    officeflow_admin = auth_headers("officeflow-admin")
    endpoint = create_endpoint(client, officeflow_admin)
    assert client.get(f"{API}/{endpoint['id']}", headers=officeflow_admin).status_code == 200
    assert client.patch(f"{API}/{endpoint['id']}", json={"name": "renamed"},
                        headers=officeflow_admin).status_code == 200
    assert client.delete(f"{API}/{endpoint['id']}", headers=officeflow_admin).status_code == 204
    assert [(a.action, a.actor, a.organization_id, a.source_ip) for a in audit_rows(endpoint["id"])] == [
        ("webhook_endpoint.created", "user:officeflow-admin", "default", "testclient"),
        ("webhook_endpoint.updated", "user:officeflow-admin", "default", "testclient"),
        ("webhook_endpoint.deleted", "user:officeflow-admin", "default", "testclient"),
    ]


# --- create ----------------------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_it_encrypted(client, admin):
    response = client.post(API, headers={**admin, "X-Correlation-ID": "create-1"}, json={
        "name": "Acme HR", "organization_id": "acme", "adapter": "generic", "target_dag_id": DAG,
        "event_types": ["employee.created"], "mapping": GENERIC_MAPPING, "rate_limit_per_minute": 120,
    })
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["id"].startswith("ep_")
    assert {k: created[k] for k in ("name", "organization_id", "adapter", "target_dag_id", "event_types",
                                    "mapping", "rate_limit_per_minute", "enabled")} == {
        "name": "Acme HR", "organization_id": "acme", "adapter": "generic", "target_dag_id": DAG,
        "event_types": ["employee.created"], "mapping": GENERIC_MAPPING, "rate_limit_per_minute": 120,
        "enabled": True}
    assert created["delivery_path"] == f"/officeflow/webhooks/{created['id']}"
    assert created["previous_secret_expires_at"] is None

    fetched = client.get(f"{API}/{created['id']}", headers=admin)
    assert fetched.status_code == 200
    assert "secret" not in fetched.json() and secret not in fetched.text
    assert fetched.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = client.get(API, headers=admin)
    assert [e["id"] for e in listed.json()["endpoints"]] == [created["id"]]
    assert "secret" not in listed.json()["endpoints"][0] and secret not in listed.text

    row = endpoint_row(created["id"])
    assert secret not in row.secret_encrypted
    assert secret.removeprefix("whsec_") not in row.secret_encrypted
    from plugins.officeflow_gateway import secret_box

    assert secret_box.decrypt(row.secret_encrypted) == secret  # Fernet with Airflow's key, not a hash
    assert row.previous_secret_encrypted is None

    [entry] = audit_rows(created["id"])
    assert (entry.action, entry.actor, entry.outcome, entry.correlation_id, entry.organization_id) == (
        "webhook_endpoint.created", "user:admin", "success", "create-1", "acme")
    assert entry.details == {"adapter": "generic"}
    assert secret not in json.dumps(entry.details)


def test_each_created_endpoint_gets_its_own_secret(client, admin):
    first, second = create_endpoint(client, admin), create_endpoint(client, admin)
    workday = create_endpoint(client, admin, adapter="workday")
    assert len({first["id"], second["id"], workday["id"]}) == 3
    assert len({first["secret"], second["secret"], workday["secret"]}) == 3
    assert not workday["secret"].startswith("whsec_") and len(workday["secret"]) >= 32


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"adapter": "sap"}, "adapter", id="unknown-adapter"),
        pytest.param({"mapping": {"first_name": "data.first_name", "manager": "data.[?"}}, "manager",
                     id="bad-jmespath-names-the-field"),
        pytest.param({"mapping": {"first_name": "data.first_name", "email": "   "}}, "email",
                     id="blank-expression-names-the-field"),
        pytest.param({"adapter": "workday", "verification": {}}, "username", id="workday-without-username"),
        pytest.param({"adapter": "workday", "verification": {"allowed_cidrs": ["10.0.0.0/8"]}}, "username",
                     id="workday-cidrs-but-no-username"),
        pytest.param({"secret": "generic-secret-supplied-0123456789"}, "whsec_", id="generic-secret-without-prefix"),
        pytest.param({"secret": "whsec_not*base64*at*all*!!"}, "base64", id="generic-secret-not-base64"),
        pytest.param({"secret": "whsec_" + base64.b64encode(b"k" * 16).decode()}, "16 bytes",
                     id="generic-secret-too-short"),
        pytest.param({"secret": "whsec_" + base64.b64encode(b"k" * 65).decode()}, "65 bytes",
                     id="generic-secret-too-long"),
        pytest.param({"adapter": "workday", "secret": "workday-password-supplied-0123"}, "secret",
                     id="secret-for-workday"),
        pytest.param({"adapter": "bamboohr", "secret": "too-short"}, "secret", id="short-bamboohr-secret"),
        pytest.param({"adapter": "workday", "verification": {"username": "u", "allowed_cidrs": ["10.0.0.0/33"]}},
                     "10.0.0.0/33", id="bad-cidr"),
        pytest.param({"verification": {"allowed_cidrs": ["not-a-network"]}}, "not-a-network", id="garbage-cidr"),
        pytest.param({"target_dag_id": "no spaces/allowed"}, "target_dag_id", id="bad-dag-id"),
        pytest.param({"rate_limit_per_minute": 0}, "rate_limit_per_minute", id="zero-rate-limit"),
        pytest.param({"organization_id": "acme corp"}, "organization_id", id="bad-organization"),
    ],
)
def test_invalid_definitions_are_422_and_create_nothing(client, admin, changes, fragment):
    body = {"name": "bad", "adapter": "generic", "target_dag_id": DAG, "mapping": GENERIC_MAPPING, **changes}
    if body["adapter"] != "generic" and "mapping" not in changes:
        body.pop("mapping")
    error = assert_error(client.post(API, json=body, headers=admin), 422, "validation_error")
    assert fragment in error["message"]
    assert client.get(API, headers=admin).json() == {"endpoints": [], "total_entries": 0}
    assert audit_rows() == []


def test_a_standard_webhooks_senders_secret_is_kept_and_verifies_its_deliveries(client, admin):
    """Svix and other Standard Webhooks senders make the whsec_ secret and show it to the receiver."""
    made_by_sender = "whsec_" + base64.b64encode(b"svix-made-key-0123456789abcdef").decode()
    endpoint = create_endpoint(client, admin, secret=made_by_sender)
    assert endpoint["secret"] == made_by_sender
    assert made_by_sender not in endpoint_row(endpoint["id"]).secret_encrypted  # stored encrypted
    body = generic_body()
    response = client.post(delivery_url(endpoint), content=body, headers=generic_headers(made_by_sender, body))
    assert response.status_code == 202, response.text
    [entry] = [a for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.created"]
    assert made_by_sender not in json.dumps(entry.details)


def test_a_sender_made_secret_replaces_the_old_one_with_an_overlap(client, admin):
    endpoint = create_endpoint(client, admin)
    old, url = endpoint["secret"], delivery_url(endpoint)
    rotated_by_sender = "whsec_" + base64.b64encode(b"the-senders-new-key-after-rotation").decode()
    response = client.post(f"{API}/{endpoint['id']}/rotate-secret", headers=admin,
                           json={"overlap_seconds": 3600, "secret": rotated_by_sender})
    assert response.status_code == 200, response.text
    assert response.json()["secret"] == rotated_by_sender and response.json()["previous_secret_expires_at"]
    for secret in (old, rotated_by_sender):
        body = generic_body()
        delivered = client.post(url, content=body, headers=generic_headers(secret, body))
        assert delivered.status_code == 202, delivered.text


@pytest.mark.parametrize(("adapter", "secret", "fragment"), [
    ("generic", "not-a-standard-webhooks-secret", "whsec_"),
    ("generic", "whsec_" + base64.b64encode(b"short-key-12").decode(), "12 bytes"),
    ("workday", "a-password-i-chose-myself-0123", "generated"),
    ("bamboohr", " padded-private-key-0123456789 ", "blanks"),
])
def test_an_unusable_sender_made_secret_is_422_and_keeps_the_current_one(client, admin, adapter, secret, fragment):
    endpoint = create_endpoint(client, admin, adapter=adapter)
    before = endpoint_row(endpoint["id"])
    response = client.post(f"{API}/{endpoint['id']}/rotate-secret", headers=admin, json={"secret": secret})
    error = assert_error(response, 422, "invalid_secret")
    assert fragment in error["message"] and secret.strip() not in error["message"]
    after = endpoint_row(endpoint["id"])
    assert (after.secret_encrypted, after.previous_secret_encrypted) == (
        before.secret_encrypted, before.previous_secret_encrypted)
    body, headers = signed_delivery(adapter, endpoint["secret"])
    assert client.post(delivery_url(endpoint), content=body, headers=headers).status_code == 202
    assert [a.action for a in audit_rows(endpoint["id"])] == ["webhook_endpoint.created"]


def test_supplied_bamboohr_secret_is_kept_and_the_generated_ones_are_not_reused(client, admin):
    endpoint = create_endpoint(client, admin, adapter="bamboohr", secret=BAMBOOHR_SECRET)
    assert endpoint["secret"] == BAMBOOHR_SECRET
    assert BAMBOOHR_SECRET not in endpoint_row(endpoint["id"]).secret_encrypted
    assert endpoint["mapping"] == {}  # empty: the adapter's default mapping applies at delivery time


# --- list and get ----------------------------------------------------------------------------------


def test_list_is_filtered_by_organization(client, admin):
    acme = [create_endpoint(client, admin, organization_id="acme", name=f"acme-{i}")["id"] for i in range(2)]
    globex = create_endpoint(client, admin, organization_id="globex")["id"]
    everything = client.get(API, headers=admin).json()
    assert everything["total_entries"] == 3
    assert [e["id"] for e in everything["endpoints"]] == [*acme, globex]  # oldest first
    only_acme = client.get(API, params={"organization_id": "acme"}, headers=admin).json()
    assert only_acme["total_entries"] == 2 and [e["id"] for e in only_acme["endpoints"]] == acme
    assert {e["organization_id"] for e in only_acme["endpoints"]} == {"acme"}
    only_globex = client.get(API, params={"organization_id": "globex"}, headers=admin).json()
    assert [e["id"] for e in only_globex["endpoints"]] == [globex]
    assert client.get(API, params={"organization_id": "initech"}, headers=admin).json() == {
        "endpoints": [], "total_entries": 0}


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [("GET", "", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None), ("POST", "/disable", None),
     ("POST", "/rotate-secret", None)],
    ids=["get", "patch", "delete", "disable", "rotate"],
)
def test_unknown_endpoint_is_404_in_the_error_shape(client, admin, method, suffix, payload):
    response = client.request(method, f"{API}/ep_doesnotexist{suffix}", json=payload, headers=admin)
    error = assert_error(response, 404, "not_found")
    assert "ep_doesnotexist" in error["message"]
    assert audit_rows() == []


# --- update ----------------------------------------------------------------------------------------


def test_patched_mapping_applies_to_the_next_delivery(client, admin):
    endpoint = create_endpoint(client, admin)
    url, secret = delivery_url(endpoint), endpoint["secret"]
    body = generic_body(email="ada@example.com", work_email="ada@corp.example.com")
    before = client.post(url, content=body, headers=generic_headers(secret, body))
    assert before.status_code == 202, before.text
    assert stored_conf(before.json()["event_id"])["email"] == "ada@example.com"

    mapping = {**GENERIC_MAPPING, "email": "data.work_email", "department": "data.dept"}
    patched = client.patch(f"{API}/{endpoint['id']}", json={"mapping": mapping},
                           headers={**admin, "X-Correlation-ID": "patch-1"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["mapping"] == mapping and "secret" not in patched.json()
    assert client.get(f"{API}/{endpoint['id']}", headers=admin).json()["mapping"] == mapping

    body = generic_body(email="grace@example.com", work_email="grace@corp.example.com", dept="R&D")
    after = client.post(url, content=body, headers=generic_headers(secret, body))
    assert after.status_code == 202, after.text
    conf = stored_conf(after.json()["event_id"])
    assert conf["email"] == "grace@corp.example.com" and conf["department"] == "R&D"
    event = wait_status(after.json()["event_id"], "triggered")
    [(_, _, run_conf, _)] = dag_runs(event.dag_run_id)
    assert run_conf["email"] == "grace@corp.example.com" and run_conf["department"] == "R&D"

    updates = [a for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.updated"]
    assert [(a.actor, a.outcome, a.correlation_id, a.details) for a in updates] == [
        ("user:admin", "success", "patch-1", {"fields": ["mapping"]})]


def test_patched_event_types_apply_to_the_next_delivery(client, admin):
    endpoint = create_endpoint(client, admin, event_types=["employee.created"])
    url, secret = delivery_url(endpoint), endpoint["secret"]
    body = generic_body(event_type="employee.updated")
    before = client.post(url, content=body, headers=generic_headers(secret, body))
    assert before.status_code == 202 and before.json()["status"] == "ignored"

    patched = client.patch(f"{API}/{endpoint['id']}", json={"event_types": ["employee.updated"]}, headers=admin)
    assert patched.status_code == 200 and patched.json()["event_types"] == ["employee.updated"]

    body = generic_body(event_type="employee.updated")
    after = client.post(url, content=body, headers=generic_headers(secret, body))
    assert after.status_code == 202 and after.json()["status"] == "pending"
    wait_status(after.json()["event_id"], "triggered")
    body = generic_body(event_type="employee.created")  # no longer listed
    created = client.post(url, content=body, headers=generic_headers(secret, body))
    assert created.status_code == 202 and created.json()["status"] == "ignored"
    assert [a.details for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.updated"] == [
        {"fields": ["event_types"]}]


def test_patched_rate_limit_applies_to_the_next_delivery(client, admin):
    endpoint = create_endpoint(client, admin)
    url, secret = delivery_url(endpoint), endpoint["secret"]
    for _ in range(3):
        body = generic_body()
        assert client.post(url, content=body, headers=generic_headers(secret, body)).status_code == 202

    patched = client.patch(f"{API}/{endpoint['id']}", json={"rate_limit_per_minute": 1}, headers=admin)
    assert patched.status_code == 200 and patched.json()["rate_limit_per_minute"] == 1

    body = generic_body()
    assert client.post(url, content=body, headers=generic_headers(secret, body)).status_code == 202
    body = generic_body()
    limited = client.post(url, content=body, headers=generic_headers(secret, body))
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert len(events()) == 4  # the limited delivery stored nothing


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"mapping": {"email": "data.email", "first_name": "data.[?"}}, "first_name", id="bad-jmespath"),
        pytest.param({"verification": {"allowed_cidrs": ["300.1.1.1/8"]}}, "300.1.1.1/8", id="bad-cidr"),
        pytest.param({"rate_limit_per_minute": -5}, "rate_limit_per_minute", id="negative-rate-limit"),
        pytest.param({"verification": {"allowed_cidrs": []}}, "username", id="workday-username-removed"),
    ],
)
def test_invalid_updates_are_422_and_change_nothing(client, admin, changes, fragment):
    endpoint = create_endpoint(client, admin, adapter="workday")
    response = client.patch(f"{API}/{endpoint['id']}", json=changes, headers=admin)
    error = assert_error(response, 422, "validation_error")
    assert fragment in error["message"]
    unchanged = client.get(f"{API}/{endpoint['id']}", headers=admin).json()
    assert unchanged == {k: v for k, v in endpoint.items() if k != "secret"}
    assert [a.action for a in audit_rows(endpoint["id"])] == ["webhook_endpoint.created"]


@pytest.mark.parametrize("field", ["name", "event_types", "mapping", "enabled", "rate_limit_per_minute",
                                   "target_dag_id"])
def test_null_for_a_required_field_is_a_422(client, admin, field):
    endpoint = create_endpoint(client, admin)
    response = client.patch(f"{API}/{endpoint['id']}", json={field: None}, headers=admin)
    assert_error(response, 422, "validation_error")
    assert client.get(f"{API}/{endpoint['id']}", headers=admin).json()[field] == endpoint[field]


def test_workday_endpoint_cannot_lose_its_username_through_a_null_verification(client, admin):
    endpoint = create_endpoint(client, admin, adapter="workday")
    response = client.patch(f"{API}/{endpoint['id']}", json={"verification": None}, headers=admin)
    assert_error(response, 422, "validation_error")
    assert endpoint_row(endpoint["id"]).verification.get("username") == WORKDAY_USER
    body, headers = signed_delivery("workday", endpoint["secret"])
    assert client.post(delivery_url(endpoint), content=body, headers=headers).status_code == 202


# --- disable and delete ----------------------------------------------------------------------------


def without_cid(response) -> tuple[int, dict[str, Any]]:
    error = dict(response.json()["error"])
    assert error.pop("correlationId") == response.headers["X-Correlation-ID"]
    return response.status_code, error


def test_disabled_endpoint_answers_exactly_like_an_unknown_one(client, admin):
    endpoint = create_endpoint(client, admin)
    url, secret = delivery_url(endpoint), endpoint["secret"]
    body = generic_body()
    assert client.post(url, content=body, headers=generic_headers(secret, body)).status_code == 202

    disabled = client.post(f"{API}/{endpoint['id']}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    body = generic_body()
    refused = client.post(url, content=body, headers=generic_headers(secret, body))
    unknown = client.post("/webhooks/ep_neverexisted0000", content=body, headers=generic_headers(secret, body))
    assert_error(refused, 404, "not_found")
    assert without_cid(refused) == without_cid(unknown)
    assert set(refused.headers) == set(unknown.headers)
    assert len(events()) == 1

    assert client.patch(f"{API}/{endpoint['id']}", json={"enabled": True}, headers=admin).status_code == 200
    body = generic_body()
    assert client.post(url, content=body, headers=generic_headers(secret, body)).status_code == 202
    assert [a.details for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.updated"] == [
        {"fields": ["enabled"]}, {"fields": ["enabled"]}]


def test_delete_is_204_then_the_endpoint_is_gone(client, admin):
    endpoint = create_endpoint(client, admin)
    url, secret = delivery_url(endpoint), endpoint["secret"]
    body = generic_body()
    assert client.post(url, content=body, headers=generic_headers(secret, body)).status_code == 202

    deleted = client.delete(f"{API}/{endpoint['id']}", headers={**admin, "X-Correlation-ID": "delete-1"})
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.get(f"{API}/{endpoint['id']}", headers=admin), 404, "not_found")
    assert_error(client.delete(f"{API}/{endpoint['id']}", headers=admin), 404, "not_found")
    assert client.get(API, headers=admin).json()["total_entries"] == 0
    assert endpoint_row(endpoint["id"]) is None
    body = generic_body()
    assert_error(client.post(url, content=body, headers=generic_headers(secret, body)), 404, "not_found")
    assert len(events()) == 1  # the inbox keeps what was received before
    assert [a.action for a in audit_rows(endpoint["id"])] == ["webhook_endpoint.created", "webhook_endpoint.deleted"]
    assert audit_rows(endpoint["id"])[-1].correlation_id == "delete-1"


# --- secret rotation -------------------------------------------------------------------------------

ADAPTERS = ["generic", "bamboohr", "workday"]


def rotate(client: TestClient, admin: dict[str, str], endpoint_id: str, overlap: int | None) -> dict[str, Any]:
    response = client.post(f"{API}/{endpoint_id}/rotate-secret",
                           json=None if overlap is None else {"overlap_seconds": overlap}, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rotation_with_overlap_accepts_the_old_and_the_new_secret(client, admin, adapter):
    endpoint = create_endpoint(client, admin, adapter=adapter)
    url, old = delivery_url(endpoint), endpoint["secret"]
    started = datetime.now(UTC)
    rotated = rotate(client, admin, endpoint["id"], 3600)
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_") == (adapter == "generic")
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert started + timedelta(seconds=3590) < expires < datetime.now(UTC) + timedelta(seconds=3610)
    assert "secret" not in client.get(f"{API}/{endpoint['id']}", headers=admin).json()

    for secret in (old, new):
        body, headers = signed_delivery(adapter, secret)
        response = client.post(url, content=body, headers=headers)
        assert response.status_code == 202, response.text
    body, headers = signed_delivery(adapter, "some-other-secret-never-issued-" if adapter != "generic"
                                    else generic.generate_secret())
    assert_error(client.post(url, content=body, headers=headers), 401, "invalid_signature")

    from plugins.officeflow_gateway import secret_box

    row = endpoint_row(endpoint["id"])
    assert old not in row.previous_secret_encrypted and new not in row.secret_encrypted
    assert (secret_box.decrypt(row.secret_encrypted), secret_box.decrypt(row.previous_secret_encrypted)) == (new, old)
    [entry] = [a for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.secret_rotated"]
    assert entry.details == {"overlap_seconds": 3600} and entry.actor == "user:admin"
    assert old not in json.dumps(entry.details) and new not in json.dumps(entry.details)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rotation_without_overlap_rejects_the_old_secret(client, admin, adapter):
    endpoint = create_endpoint(client, admin, adapter=adapter)
    url, old = delivery_url(endpoint), endpoint["secret"]
    body, headers = signed_delivery(adapter, old)
    assert client.post(url, content=body, headers=headers).status_code == 202

    rotated = rotate(client, admin, endpoint["id"], 0)
    assert rotated["previous_secret_expires_at"] is None
    body, headers = signed_delivery(adapter, old)
    assert_error(client.post(url, content=body, headers=headers), 401, "invalid_signature")
    body, headers = signed_delivery(adapter, rotated["secret"])
    assert client.post(url, content=body, headers=headers).status_code == 202
    assert endpoint_row(endpoint["id"]).previous_secret_encrypted is None
    assert len(events()) == 2
    assert [a.action for a in audit_rows(endpoint["id"])] == [
        "webhook_endpoint.created", "webhook_endpoint.secret_rotated", "webhook.rejected"]


def test_rotation_overlap_defaults_to_the_setting(client, admin, env):
    env.set("OFFICEFLOW_WEBHOOK_SECRET_OVERLAP_SECONDS", "120")
    endpoint = create_endpoint(client, admin)
    rotated = rotate(client, admin, endpoint["id"], None)
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(seconds=100) < expires - datetime.now(UTC) < timedelta(seconds=121)
    [entry] = [a for a in audit_rows(endpoint["id"]) if a.action == "webhook_endpoint.secret_rotated"]
    assert entry.details == {"overlap_seconds": 120}


def test_expired_overlap_no_longer_accepts_the_old_secret(client, admin):
    endpoint = create_endpoint(client, admin)
    url, old = delivery_url(endpoint), endpoint["secret"]
    rotated = rotate(client, admin, endpoint["id"], 1)
    time.sleep(2.2)  # past the overlap, and past the endpoint cache's 2 s TTL
    body, headers = signed_delivery("generic", old)
    assert_error(client.post(url, content=body, headers=headers), 401, "invalid_signature")
    body, headers = signed_delivery("generic", rotated["secret"])
    assert client.post(url, content=body, headers=headers).status_code == 202


# --- deliveries through created endpoints ----------------------------------------------------------


def test_bamboohr_delivery_through_a_created_endpoint_starts_the_mapped_run(client, admin):
    endpoint = create_endpoint(client, admin, adapter="bamboohr", secret=BAMBOOHR_SECRET)
    employee = new_id()
    body = hire_body(employee, "grace@example.com")
    response = client.post(delivery_url(endpoint), content=body,
                           headers=bamboohr_headers(BAMBOOHR_SECRET, body, **{"X-Correlation-ID": "bhr-1"}))
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["status"] == "pending" and data["correlationId"] == "bhr-1"
    event = wait_status(data["event_id"], "triggered")
    assert event.endpoint_id == endpoint["id"] and event.dag_run_id == data["dag_run_id"]
    [(dag_id, run_id, conf, run_type)] = dag_runs(data["dag_run_id"])
    assert dag_id == DAG and str(run_type).endswith("manual")
    assert run_id == run_id_for(endpoint["id"], event.provider_event_id)
    assert conf == {"employee_id": employee, "first_name": "Ada", "last_name": "Lovelace",
                    "email": "grace@example.com", "department": "Engineering", "job_title": "Software Engineer",
                    "start_date": "2026-12-07", "correlation_id": "bhr-1", "source": "bamboohr",
                    "event_type": "employee.created", "organization_id": "default", "location": "London",
                    "manager": "Workspace Admin", "manager_email": "admin@officeflow.test",
                    "personal_email": f"ada.{employee}@home.example"}
    # The built-in endpoint's key does not open a created endpoint.
    from tests.harness.environment import BAMBOOHR_TEST_KEY

    body = hire_body(new_id())
    forged = client.post(delivery_url(endpoint), content=body, headers=bamboohr_headers(BAMBOOHR_TEST_KEY, body))
    assert_error(forged, 401, "invalid_signature")


def test_workday_delivery_through_a_created_endpoint_starts_the_mapped_run(client, admin):
    endpoint = create_endpoint(client, admin, adapter="workday")
    event_id = f"WD-{new_id()}"
    body = workday_body(event_id, email="grace@example.com")
    response = client.post(delivery_url(endpoint), content=body,
                           headers=workday_headers(endpoint["secret"], **{"X-Correlation-ID": "wd-1"}))
    assert response.status_code == 202, response.text
    data = response.json()
    event = wait_status(data["event_id"], "triggered")
    assert event.provider_event_id == event_id and event.event_type == "employee.created"
    [(dag_id, run_id, conf, _)] = dag_runs(data["dag_run_id"])
    assert dag_id == DAG and run_id == run_id_for(endpoint["id"], event_id)
    assert conf == {"employee_id": "21001", "first_name": "Ada", "last_name": "Lovelace",
                    "email": "grace@example.com", "department": "Engineering", "job_title": "Engineer",
                    "start_date": "2026-03-02", "correlation_id": "wd-1", "source": "workday",
                    "organization_id": "default"}
    wrong_user = client.post(delivery_url(endpoint), content=workday_body(),
                             headers=workday_headers(endpoint["secret"], username="someone-else"))
    assert_error(wrong_user, 401, "invalid_signature")


def test_generic_delivery_through_a_created_endpoint_starts_the_mapped_run(client, admin):
    endpoint = create_endpoint(client, admin)
    employee = new_id()
    body = generic_body(employee, email="grace@example.com")
    response = client.post(delivery_url(endpoint), content=body,
                           headers=generic_headers(endpoint["secret"], body, msg_id="msg_e2e_1",
                                                   **{"X-Correlation-ID": "gen-1"}))
    assert response.status_code == 202, response.text
    data = response.json()
    event = wait_status(data["event_id"], "triggered")
    assert event.provider_event_id == "msg_e2e_1" and event.event_type == "employee.created"
    [(dag_id, run_id, conf, _)] = dag_runs(data["dag_run_id"])
    assert dag_id == DAG and run_id == run_id_for(endpoint["id"], "msg_e2e_1")
    assert conf == {"employee_id": employee, "first_name": "Ada", "last_name": "Lovelace",
                    "email": "grace@example.com", "correlation_id": "gen-1", "source": "generic",
                    "organization_id": "default"}
    # A redelivery of the same message (new timestamp, same webhook-id) names the same run.
    again = client.post(delivery_url(endpoint), content=body,
                        headers=generic_headers(endpoint["secret"], body, msg_id="msg_e2e_1"))
    assert again.status_code == 202 and again.json()["events"][0]["duplicate"] is True
    assert again.json()["dag_run_id"] == data["dag_run_id"] and len(dag_runs(data["dag_run_id"])) == 1


def test_event_types_filter_stores_other_types_as_ignored_without_a_run(client, admin):
    endpoint = create_endpoint(client, admin, event_types=["employee.created"])
    url, secret = delivery_url(endpoint), endpoint["secret"]
    body = generic_body(event_type="employee.terminated")
    ignored = client.post(url, content=body, headers=generic_headers(secret, body, msg_id="msg_ignored"))
    assert ignored.status_code == 202, ignored.text
    assert ignored.json()["status"] == "ignored" and ignored.json()["dag_run_id"] is None
    body = generic_body(event_type="employee.created")
    listed = client.post(url, content=body, headers=generic_headers(secret, body))
    assert listed.json()["status"] == "pending"
    wait_status(listed.json()["event_id"], "triggered")  # the dispatcher has had its pass

    [stored] = [e for e in events() if e.id == ignored.json()["event_id"]]
    assert (stored.status, stored.event_type, stored.dag_run_id, stored.attempts) == (
        "ignored", "employee.terminated", None, 0)
    assert stored.payload["conf"] is None
    assert dag_runs(run_id_for(endpoint["id"], "msg_ignored")) == []


def test_mapping_that_yields_no_email_is_422_and_stored_rejected(client, admin):
    endpoint = create_endpoint(client, admin, mapping={**GENERIC_MAPPING, "email": "data.mail"})
    body = generic_body(email="ada@example.com")  # the payload says "email"; the mapping reads "mail"
    response = client.post(delivery_url(endpoint), content=body,
                           headers=generic_headers(endpoint["secret"], body, msg_id="msg_no_email"))
    error = assert_error(response, 422, "unmappable_event")
    assert "email" in error["message"]
    [event] = events()
    assert (event.status, event.dag_run_id, event.dag_id) == ("rejected", None, None)
    assert (event.error or "").startswith("email:")
    assert "email" not in (event.payload["conf"] or {})
    assert event.payload["document"]["data"]["email"] == "ada@example.com"  # kept for a replay
    assert dag_runs(run_id_for(endpoint["id"], "msg_no_email")) == []
