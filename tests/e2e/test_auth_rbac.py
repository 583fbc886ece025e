"""End to end against the real api-server: what each role may do, through Airflow's REST API and OfficeFlow's API.

One user per role (tests/harness/auth_users.py) signs in with ``POST /auth/token``; the non-admins are members of
organization ``default``. Every action is tried as every user: the allowed ones succeed, all others are 403.
Nothing here starts a workflow: runs are triggered with ``run_after`` tomorrow (queued, the scheduler leaves them)
and deleted afterwards, clears are dry runs, created endpoints and workflow definitions are removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import USERS, client_headers, made_up_address, sign_in
from tests.harness.workflows import welcome_email

pytestmark = pytest.mark.e2e

API = "/officeflow/api/v1"
HR_WORKFLOWS = {"employee_onboarding", "employee_offboarding", "employee_role_change", "manager_heads_up",
                "new_contractor_welcome", "team_membership"}
IT_WORKFLOWS = {"identity_provisioning", "equipment_request", "officeflow_approval_smoke", "officeflow_approval_burst",
                "calendar_maintenance", "document_retention", "hr_events_from_kafka", "workflow_insights",
                "workday_reconciliation"}
HR_DAG, IT_DAG = "employee_onboarding", "identity_provisioning"
CONF = {HR_DAG: {"first_name": "Ada", "last_name": "Lovelace", "email": "ada.rbac@officeflow.test"},
        IT_DAG: {"first_name": "Ada", "last_name": "Lovelace", "email": "ada.rbac@officeflow.test"}}

ADMINS = {"admin", "officeflow-admin"}
#: What each user may see of the workflows (list DAGs): Admin, OfficeFlow Admin, Auditor and Airflow's
#: Viewer and Op every one; HR and IT those their role's tags grant (OFFICEFLOW_WORKFLOW_ACCESS).
SEES = {"admin": HR_WORKFLOWS | IT_WORKFLOWS, "officeflow-admin": HR_WORKFLOWS | IT_WORKFLOWS,
        "hr": HR_WORKFLOWS, "it": IT_WORKFLOWS, "auditor": HR_WORKFLOWS | IT_WORKFLOWS,
        "viewer": HR_WORKFLOWS | IT_WORKFLOWS, "op": HR_WORKFLOWS | IT_WORKFLOWS}

#: action -> the users it succeeds for; every other user gets 403.
ALLOWED: dict[str, set[str]] = {
    # Airflow's REST API
    "trigger an HR workflow": ADMINS | {"hr", "op"},
    "trigger an IT workflow": ADMINS | {"it", "op"},
    "clear task instances of an IT run": ADMINS | {"it", "op"},
    "clear task instances of an HR run": ADMINS | {"op"},  # HR triggers and follows, IT repairs
    "read connections": {"admin", "op"},
    "read variables": {"admin", "op"},
    "read the configuration": {"admin", "op"},  # [api] expose_config = non-sensitive-only on the e2e platform
    # OfficeFlow's API
    "list webhook endpoints": ADMINS | {"auditor"},
    "create a webhook endpoint": ADMINS,
    "list events": ADMINS | {"hr", "it", "auditor"},
    "read the audit log": ADMINS | {"auditor"},
    "read access": ADMINS | {"auditor"},
    "edit access": ADMINS,
    "create a workflow definition": ADMINS,
    "list documents": ADMINS | {"hr", "auditor"},
    "read email stats": ADMINS | {"hr", "auditor"},
}


@dataclass
class Rbac:
    platform: AirflowPlatform
    address: str
    tokens: dict[str, str]
    token_status: dict[str, int]  # user -> the status of its POST /auth/token
    runs: dict[str, str] = field(default_factory=dict)  # dag id -> a queued run to clear (dry run)
    created_runs: list[tuple[str, str]] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**client_headers(self.address, self.tokens[user]), **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.platform.base_url}{path}", timeout=30, headers=headers, **kwargs)


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


def queued_run(rbac: Rbac, user: str, dag_id: str) -> httpx.Response:
    """Trigger ``dag_id`` as ``user`` with a run that starts only tomorrow (the test deletes it)."""
    run_id = f"rbac-{user}-{uuid.uuid4().hex[:8]}"
    response = rbac.call(user, "POST", f"/api/v2/dags/{dag_id}/dagRuns",
                         json={"dag_run_id": run_id, "logical_date": None, "run_after": tomorrow(),
                               "conf": CONF[dag_id]})
    if response.status_code == 200:
        rbac.created_runs.append((dag_id, run_id))
    return response


def clear(rbac: Rbac, user: str, dag_id: str) -> httpx.Response:
    return rbac.call(user, "POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                     json={"dry_run": True, "only_failed": False, "dag_run_id": rbac.runs[dag_id]})


def create_endpoint(rbac: Rbac, user: str) -> httpx.Response:
    response = rbac.call(user, "POST", f"{API}/webhook-endpoints",
                         json={"name": f"rbac {user}", "adapter": "generic", "target_dag_id": "new_contractor_welcome"})
    if response.status_code == 201:
        rbac.endpoints.append(response.json()["id"])
    return response


def create_workflow(rbac: Rbac, user: str) -> httpx.Response:
    name = f"rbac_{user.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
    response = rbac.call(user, "POST", f"{API}/workflows", json=welcome_email(name, "e2e RBAC check"))
    if response.status_code == 201:
        rbac.workflows.append(name)
    return response


ACTIONS: dict[str, Callable[[Rbac, str], httpx.Response]] = {
    "trigger an HR workflow": lambda rbac, user: queued_run(rbac, user, HR_DAG),
    "trigger an IT workflow": lambda rbac, user: queued_run(rbac, user, IT_DAG),
    "clear task instances of an IT run": lambda rbac, user: clear(rbac, user, IT_DAG),
    "clear task instances of an HR run": lambda rbac, user: clear(rbac, user, HR_DAG),
    "read connections": lambda rbac, user: rbac.call(user, "GET", "/api/v2/connections"),
    "read variables": lambda rbac, user: rbac.call(user, "GET", "/api/v2/variables"),
    "read the configuration": lambda rbac, user: rbac.call(user, "GET", "/api/v2/config",
                                                           headers={"Accept": "application/json"}),
    "list webhook endpoints": lambda rbac, user: rbac.call(user, "GET", f"{API}/webhook-endpoints"),
    "create a webhook endpoint": create_endpoint,
    "list events": lambda rbac, user: rbac.call(user, "GET", f"{API}/events"),
    "read the audit log": lambda rbac, user: rbac.call(user, "GET", f"{API}/audit-log", params={"limit": 5}),
    "read access": lambda rbac, user: rbac.call(user, "GET", f"{API}/access/users"),
    "edit access": lambda rbac, user: rbac.call(user, "PUT", f"{API}/access/users/viewer/organizations",
                                                json={"organizations": ["default"]}),
    "create a workflow definition": create_workflow,
    "list documents": lambda rbac, user: rbac.call(user, "GET", f"{API}/documents"),
    "read email stats": lambda rbac, user: rbac.call(user, "GET", f"{API}/email/stats"),
}
assert set(ACTIONS) == set(ALLOWED)


@pytest.fixture(scope="module")
def rbac(platform: AirflowPlatform) -> Iterator[Rbac]:
    for dag_id in sorted(HR_WORKFLOWS | IT_WORKFLOWS):
        platform.wait_for_dag(dag_id)
    address = made_up_address()
    responses = {user: sign_in(platform.base_url, user, address=address) for user in USERS}
    state = Rbac(platform, address, tokens={user: r.json().get("access_token", "") for user, r in responses.items()},
                 token_status={user: r.status_code for user, r in responses.items()})
    for user in USERS:
        if user != "admin":
            member = state.call("admin", "PUT", f"{API}/access/users/{user}/organizations",
                                json={"organizations": ["default"]})
            assert member.status_code == 200, member.text
    for dag_id in (HR_DAG, IT_DAG):
        response = queued_run(state, "admin", dag_id)
        assert response.status_code == 200, response.text
        state.runs[dag_id] = response.json()["dag_run_id"]
    yield state
    for dag_id, run_id in state.created_runs:
        state.call("admin", "DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    for endpoint_id in state.endpoints:
        state.call("admin", "DELETE", f"{API}/webhook-endpoints/{endpoint_id}")
    for name in state.workflows:
        state.call("admin", "DELETE", f"{API}/workflows/{name}")


def test_every_user_gets_an_airflow_token(rbac):
    assert rbac.token_status == dict.fromkeys(USERS, 201)


@pytest.mark.parametrize("user", list(USERS))
def test_each_user_lists_the_workflows_it_may_see(rbac, user):
    response = rbac.call(user, "GET", "/api/v2/dags", params={"limit": 200})
    assert response.status_code == 200, response.text
    seen = {dag["dag_id"] for dag in response.json()["dags"]}
    # Other tests add declarative workflows (no tags: nobody's but the all-seeing roles'); compare OfficeFlow's own.
    assert seen & (HR_WORKFLOWS | IT_WORKFLOWS) == SEES[user]
    if user in ("hr", "it"):
        assert seen == SEES[user]


@pytest.mark.parametrize(("action", "user"), [(action, user) for action in ALLOWED for user in USERS],
                         ids=[f"{action.replace(' ', '_')}-{user}" for action in ALLOWED for user in USERS])
def test_roles_may_do_what_they_hold_and_nothing_else(rbac, action, user):
    response = ACTIONS[action](rbac, user)
    if user in ALLOWED[action]:
        assert 200 <= response.status_code < 300, f"{user} may {action}: {response.status_code} {response.text}"
    else:
        assert response.status_code == 403, f"{user} may not {action}: {response.status_code} {response.text}"


def test_a_workflow_the_user_does_not_see_is_neither_readable_nor_triggerable(rbac):
    """HR does not reach IT's workflows at all (and the reverse), whatever the sub-object."""
    for user, foreign in (("hr", IT_DAG), ("it", HR_DAG)):
        assert rbac.call(user, "GET", f"/api/v2/dags/{foreign}").status_code == 403
        assert rbac.call(user, "GET", f"/api/v2/dags/{foreign}/dagRuns").status_code == 403
        assert rbac.call(user, "PATCH", f"/api/v2/dags/{foreign}", json={"is_paused": True}).status_code == 403
    own = rbac.call("hr", "GET", f"/api/v2/dags/{HR_DAG}/dagRuns/{rbac.runs[HR_DAG]}")
    assert own.status_code == 200, own.text


def test_what_the_auth_api_says_each_user_may_do_matches(rbac):
    """``/auth/me`` lists the OfficeFlow permissions the routes above enforce."""
    me = {user: rbac.call(user, "GET", f"{API}/auth/me").json() for user in USERS}
    assert me["hr"]["permissions"] == {"OfficeFlow Events": ["GET"], "OfficeFlow Workflows": ["GET"],
                                       "OfficeFlow Documents": ["GET", "POST", "PUT"],
                                       "OfficeFlow Email": ["GET", "PUT"],
                                       "OfficeFlow Organizations": ["GET"], "OfficeFlow Teams": ["GET"],
                                       "OfficeFlow Team Members": ["GET", "POST", "DELETE"],
                                       "OfficeFlow Dashboard": ["GET"]}
    assert me["hr"]["organizations"] == ["default"] and me["officeflow-admin"]["organizations"] is None
    assert me["viewer"]["permissions"] == {} and me["op"]["permissions"] == {}
    assert me["auditor"]["permissions"] == {resource: ["GET"] for resource in (
        "OfficeFlow Webhook Endpoints", "OfficeFlow Events", "OfficeFlow Audit Log", "OfficeFlow Workflows",
        "OfficeFlow Documents", "OfficeFlow Email", "OfficeFlow Access", "OfficeFlow Organizations",
        "OfficeFlow Teams", "OfficeFlow Team Members", "OfficeFlow Dashboard")}
