"""End to end: every audited action, done once through the real api-server by one user from one (made-up) client
address, is in the audit log with that actor, action, address and outcome, in ``/audit-log`` and its CSV export;
an organization's auditor sees its organization's entries only; and no route changes or deletes an entry.

Actions: failed and successful logins (``/auth/token``, the login form, OfficeFlow's ``/auth/login``), refresh,
logout, MFA enrolment, a webhook endpoint created, changed and its secret rotated, an ignored event replayed, a
workflow definition created, a manual trigger through Airflow's ``POST /api/v2/dags/{id}/dagRuns`` and the approval
its run waits for through ``PATCH …/hitlDetails`` (officeflow_approval_smoke).
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
import pytest

from plugins.officeflow_gateway.adapters import generic
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import PASSWORD, Browser, add_user, client_headers, made_up_address, refused, token_of
from tests.harness.workflows import welcome_email

pytestmark = pytest.mark.e2e

API = "/officeflow/api/v1"
SMOKE = "officeflow_approval_smoke"


@dataclass
class Trail:
    """The user, the address it played and what it did: (action, outcome, details that must match)."""

    user: str
    address: str
    token: str = ""
    done: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def call(self, platform: AirflowPlatform, method: str, path: str, token: str | None = None,
             **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{platform.base_url}{path}", timeout=30, **kwargs,
                             headers=client_headers(self.address, token if token is not None else self.token))

    def expect(self, action: str, outcome: str = "success", **details: Any) -> None:
        self.done.append((action, outcome, details))


def audit_log(platform: AirflowPlatform, token: str, **filters: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{platform.base_url}{API}/audit-log", params={"limit": 1000, **filters},
                         headers=client_headers(token=token), timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def signed_delivery(platform: AirflowPlatform, endpoint: dict[str, Any], document: dict[str, Any]) -> httpx.Response:
    body = json.dumps(document).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(now),
               "webhook-signature": generic.sign(endpoint["secret"], msg_id, now, body)}
    return httpx.post(platform.base_url + endpoint["delivery_path"], content=body, headers=headers, timeout=30)


def sign_ins(platform: AirflowPlatform, trail: Trail) -> None:
    token_url = f"{platform.base_url}/auth/token"
    wrong = httpx.post(token_url, json={"username": trail.user, "password": "Wrong-Passw0rd!"},
                       headers=client_headers(trail.address), timeout=30)
    assert wrong.status_code == 401
    trail.expect("auth.login_failed", "failure", route="/auth/token")
    right = httpx.post(token_url, json={"username": trail.user, "password": PASSWORD},
                       headers=client_headers(trail.address), timeout=30)
    assert right.status_code == 201, right.text
    trail.token = right.json()["access_token"]
    trail.expect("auth.token_issued", route="/auth/token")

    browser = Browser(platform.base_url, trail.address)
    try:
        assert not refused(browser.sign_in(trail.user))
    finally:
        browser.close()
    trail.expect("auth.login", route="/auth/login/")

    login = trail.call(platform, "POST", f"{API}/auth/login", token="",
                       json={"username": trail.user, "password": PASSWORD})
    assert login.status_code == 200, login.text
    trail.expect("auth.token_issued", route="/officeflow/api/v1/auth/login")
    refreshed = trail.call(platform, "POST", f"{API}/auth/refresh", token="",
                           json={"refresh_token": login.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    trail.expect("auth.token_refreshed")
    out = trail.call(platform, "POST", f"{API}/auth/logout", token=refreshed.json()["access_token"])
    assert out.status_code == 204, out.text
    trail.expect("auth.logout")


def endpoint_and_replay(platform: AirflowPlatform, trail: Trail) -> None:
    created = trail.call(platform, "POST", f"{API}/webhook-endpoints", json={
        "name": "audit e2e", "adapter": "generic", "target_dag_id": "new_contractor_welcome",
        "event_types": ["person.hired"], "mapping": {"first_name": "person.given_name", "email": "person.email"}})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    trail.expect("webhook_endpoint.created", resource_id=endpoint["id"], organization_id="default")
    rotated = trail.call(platform, "POST", f"{API}/webhook-endpoints/{endpoint['id']}/rotate-secret",
                         json={"overlap_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    trail.expect("webhook_endpoint.secret_rotated", resource_id=endpoint["id"])

    email = f"audit-{uuid.uuid4().hex[:8]}@example.com"
    delivered = signed_delivery(platform, endpoint, {"type": "person.rehired",
                                                     "person": {"given_name": "Ada", "email": email}})
    assert delivered.status_code == 202, delivered.text
    event_id = delivered.json()["event_id"]
    ignored = trail.call(platform, "GET", f"{API}/events/{event_id}")
    assert ignored.json()["status"] == "ignored", ignored.text
    changed = trail.call(platform, "PATCH", f"{API}/webhook-endpoints/{endpoint['id']}",
                         json={"event_types": ["person.hired", "person.rehired"]})
    assert changed.status_code == 200, changed.text
    trail.expect("webhook_endpoint.updated", resource_id=endpoint["id"])
    replayed = trail.call(platform, "POST", f"{API}/events/{event_id}/replay")
    assert replayed.status_code == 202, replayed.text
    trail.expect("webhook_event.replayed", resource_id=event_id)
    assert trail.call(platform, "DELETE", f"{API}/webhook-endpoints/{endpoint['id']}").status_code == 204
    trail.expect("webhook_endpoint.deleted", resource_id=endpoint["id"])


def workflow_definition(platform: AirflowPlatform, trail: Trail) -> None:
    name = f"audit_e2e_{uuid.uuid4().hex[:8]}"
    created = trail.call(platform, "POST", f"{API}/workflows", json=welcome_email(name, "audit e2e"))
    assert created.status_code == 201, created.text
    trail.expect("workflow.created", resource_id=name)
    assert trail.call(platform, "DELETE", f"{API}/workflows/{name}").status_code == 204
    trail.expect("workflow.deleted", resource_id=name)


def trigger_and_approve(platform: AirflowPlatform, trail: Trail) -> None:
    platform.wait_for_dag(SMOKE)
    run_id = f"audit-{uuid.uuid4().hex[:10]}"
    triggered = trail.call(platform, "POST", f"/api/v2/dags/{SMOKE}/dagRuns",
                           json={"dag_run_id": run_id, "logical_date": None, "conf": {}})
    assert triggered.status_code == 200, triggered.text
    trail.expect("workflow.triggered", resource_id=SMOKE, dag_run_id=run_id)
    assert poll(platform, f"/api/v2/dags/{SMOKE}/dagRuns/{run_id}/taskInstances/approval",
                {"awaiting_input", "failed", "upstream_failed"}) == "awaiting_input"
    # Answer as a person would, not within milliseconds of the park (see tests/e2e/test_slack_approval.py).
    time.sleep(8)
    answered = trail.call(platform, "PATCH", f"/api/v2/dags/{SMOKE}/dagRuns/{run_id}/taskInstances/approval/-1/"
                          "hitlDetails", json={"chosen_options": ["Approve"], "params_input": {}})
    assert answered.status_code == 200, answered.text
    trail.expect("approval.responded", resource_id=SMOKE, run_id=run_id, task_id="approval",
                 chosen_options=["Approve"])
    assert poll(platform, f"/api/v2/dags/{SMOKE}/dagRuns/{run_id}", {"success", "failed"}) == "success"


def poll(platform: AirflowPlatform, path: str, final: set[str], timeout: float = 300) -> str | None:
    """The ``state`` at ``path`` once it is one of ``final``. Under load the api-server has been seen not to
    answer for most of a minute while a task starts: a request that times out is asked again."""
    deadline, state = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            response = platform.api("GET", path)
        except httpx.TimeoutException:
            continue
        state = response.json().get("state") if response.status_code == 200 else None
        if state in final:
            return state
        time.sleep(1)
    raise AssertionError(f"{path}: still {state} after {timeout}s\n{platform.logs_tail()}")


def mfa_enrolment(platform: AirflowPlatform, trail: Trail) -> None:
    setup = trail.call(platform, "POST", f"{API}/auth/mfa/setup")
    assert setup.status_code == 200, setup.text
    trail.expect("auth.mfa_setup_started")
    wrong = trail.call(platform, "POST", f"{API}/auth/mfa/verify", json={"code": "000000"})
    code = pyotp.TOTP(setup.json()["secret"]).now()
    if code != "000000":
        assert wrong.status_code == 400
        trail.expect("auth.mfa_enrolment_failed", "failure")
    assert trail.call(platform, "POST", f"{API}/auth/mfa/verify", json={"code": code}).status_code == 200
    trail.expect("auth.mfa_enrolled")


@pytest.fixture(scope="module")
def trail(platform: AirflowPlatform) -> Iterator[Trail]:
    admin = token_of(platform.base_url, "admin")
    user = f"auditee-{uuid.uuid4().hex[:6]}"
    created = add_user(platform.base_url, admin, user, "OfficeFlow Admin")
    assert created.status_code == 200, created.text
    done = Trail(user, made_up_address())
    sign_ins(platform, done)
    # Before the replay: the dispatcher starting the replayed event's run while the approval task starts has
    # stalled the api-server (see poll()).
    trigger_and_approve(platform, done)
    endpoint_and_replay(platform, done)
    workflow_definition(platform, done)
    mfa_enrolment(platform, done)  # last: the user's logins want a code from here on
    done.entries = audit_log(platform, admin, actor=f"user:{user}")
    yield done


def test_every_audited_action_is_in_the_log_with_actor_address_and_outcome(trail):
    missing = []
    for action, outcome, details in trail.done:
        found = [e for e in trail.entries if e["action"] == action and e["outcome"] == outcome
                 and all(e.get(key, e["details"].get(key)) == value for key, value in details.items())]
        if not found:
            missing.append((action, outcome, details))
            continue
        for entry in found:
            assert entry["actor"] == f"user:{trail.user}"
            assert entry["source_ip"] == trail.address, (action, entry)
    assert not missing, f"not audited: {missing}\nlog: {[(e['action'], e['outcome']) for e in trail.entries]}"
    assert [e["id"] for e in trail.entries] == sorted((e["id"] for e in trail.entries), reverse=True)


def test_the_csv_export_holds_the_same_entries(platform, trail):
    admin = token_of(platform.base_url, "admin")
    response = httpx.get(f"{platform.base_url}{API}/audit-log.csv", params={"actor": f"user:{trail.user}"},
                         headers=client_headers(token=admin), timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["id"], r["action"], r["outcome"], r["source_ip"]) for r in rows} >= {
        (str(e["id"]), e["action"], e["outcome"], e["source_ip"]) for e in trail.entries}
    for row in rows:
        json.loads(row["details"])


def test_filters_and_an_organizations_auditor_sees_only_its_organization(platform, trail):
    admin = token_of(platform.base_url, "admin")
    failures = audit_log(platform, admin, actor=f"user:{trail.user}", outcome="failure")
    assert failures and {e["outcome"] for e in failures} == {"failure"}
    logins = audit_log(platform, admin, actor=f"user:{trail.user}", action="auth.token_issued")
    assert len(logins) == 2
    member = httpx.put(f"{platform.base_url}{API}/access/users/auditor/organizations",
                       json={"organizations": ["default"]}, headers=client_headers(token=admin), timeout=30)
    assert member.status_code == 200
    seen = audit_log(platform, token_of(platform.base_url, "auditor"), actor=f"user:{trail.user}")
    assert seen and {e["organization_id"] for e in seen} == {"default"}
    assert "webhook_endpoint.created" in {e["action"] for e in seen}
    assert not [e for e in seen if e["action"].startswith("auth.")]  # sign-ins belong to no organization


def test_no_route_changes_or_deletes_audit_entries(platform, trail):
    admin = token_of(platform.base_url, "admin")
    specs = {"officeflow": httpx.get(f"{platform.base_url}/officeflow/api-docs/openapi.json", timeout=30).json(),
             "airflow": httpx.get(f"{platform.base_url}/openapi.json", timeout=30).json()}
    audited_paths = {name: {path: set(operations) for path, operations in spec["paths"].items()
                            if "audit" in path.lower() or "eventlog" in path.lower()}
                     for name, spec in specs.items()}
    assert audited_paths["officeflow"], "the OfficeFlow spec lists no audit-log route"
    for name, paths in audited_paths.items():
        for path, methods in paths.items():
            assert methods <= {"get", "parameters"}, (name, path, methods)
    entry = trail.entries[0]["id"]
    for method, path in (("DELETE", f"{API}/audit-log/{entry}"), ("PATCH", f"{API}/audit-log/{entry}"),
                         ("PUT", f"{API}/audit-log/{entry}"), ("DELETE", f"{API}/audit-log"),
                         ("POST", f"{API}/audit-log")):
        response = httpx.request(method, f"{platform.base_url}{path}", headers=client_headers(token=admin),
                                 timeout=30)
        assert response.status_code in (404, 405), (method, path, response.status_code)
    again = {e["id"]: e for e in audit_log(platform, admin, actor=f"user:{trail.user}")}
    for e in trail.entries:
        assert again[e["id"]] == e
