"""Identity operators with ``provider="okta"``: OktaHook (httpx, SSWS token) against the sandbox's Okta
emulation over real HTTP. Outcomes are asserted on the sandbox's state, not only on return values."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from include.officeflow.errors import InvalidInput, NotFound
from include.officeflow.identity import load_group_mapping
from operators.hooks.okta import OktaHook
from operators.identity import DeprovisionUserOperator, ProvisionUserOperator, UpdateUserOperator

pytestmark = pytest.mark.usefixtures("identity_store")  # provisioning records its accounts in the store

LOGIN = "ada.lovelace@officeflow.test"
HIRE = {"first_name": "Ada", "last_name": "Lovelace", "email": LOGIN, "department": "Engineering",
        "job_title": "Software Engineer", "employee_id": "E-1001", "personal_email": "ada@home.test"}
ENGINEER_GROUPS = {"Everyone at OfficeFlow", "Engineering", "Developers"}


def provision(person: dict | None = None, **kwargs) -> dict:
    op = ProvisionUserOperator(task_id="provision", provider="okta", person=person or HIRE,
                               password_delivery="none", **kwargs)
    return op.execute(context={})


def deprovision(login: str = LOGIN, **kwargs) -> dict:
    return DeprovisionUserOperator(task_id="deprovision", provider="okta", login=login, **kwargs).execute(context={})


def users(sandbox) -> dict[str, dict]:
    return sandbox.state("okta")["users"]


def user_by_login(sandbox, login: str = LOGIN) -> dict:
    [user] = [u for u in users(sandbox).values() if u["profile"]["login"].lower() == login.lower()]
    return user


def group_names_of(sandbox, user_id: str, *, everyone: bool = False) -> list[str]:
    """The user's group names; each membership listed once per occurrence (duplicates would show)."""
    state = sandbox.state("okta")
    names = []
    for gid, members in state["memberships"].items():
        group = state["groups"][gid]
        if group["type"] == "BUILT_IN" and not everyone:
            continue
        names += [group["profile"]["name"]] * members.count(user_id)
    return sorted(names)


def okta_api(sandbox) -> httpx.Client:
    conn = sandbox.connections["officeflow_okta"]
    return httpx.Client(base_url=conn["host"], headers={"Authorization": f"SSWS {conn['password']}"}, timeout=10)


def calls(sandbox, method: str, path_start: str) -> list[dict]:
    return [r for r in sandbox.requests("okta") if r["method"] == method and r["path"].startswith(path_start)]


# --- provisioning -----------------------------------------------------------------------------------

def test_provision_creates_an_active_account_with_the_mapped_groups(sandbox):
    result = provision()
    user = user_by_login(sandbox)
    assert result["created"] is True and result["account_id"] == user["id"] and result["login"] == LOGIN
    # The temporary password must be changed at first sign-in (nextLogin=changePassword).
    assert user["status"] == "PASSWORD_EXPIRED" and "password" in user["credentials"]
    assert user["profile"] == {"login": LOGIN, "email": LOGIN, "firstName": "Ada", "lastName": "Lovelace",
                               "displayName": "Ada Lovelace", "department": "Engineering",
                               "title": "Software Engineer", "employeeNumber": "E-1001",
                               "secondEmail": "ada@home.test"}
    expected = set(load_group_mapping().of("okta").for_person("Engineering", "Software Engineer"))
    assert expected == ENGINEER_GROUPS
    assert group_names_of(sandbox, user["id"]) == sorted(expected)
    assert set(result["added"]) == expected and result["removed"] == []
    assert result["password_variable"] is None
    assert not any("password" in key and key != "password_variable" for key in result)
    assert "value" not in user["credentials"]["password"]
    [create] = calls(sandbox, "POST", "/api/v1/users")
    assert "nextLogin=changePassword" in create["query"] and create["status"] == 200


def test_manager_is_linked_when_they_have_an_account(sandbox):
    provision({**HIRE, "email": "grace@officeflow.test", "first_name": "Grace", "last_name": "Hopper"})
    provision({**HIRE, "manager_email": "GRACE@officeflow.test"})
    manager = user_by_login(sandbox, "grace@officeflow.test")
    profile = user_by_login(sandbox)["profile"]
    assert profile["managerId"] == manager["id"] and profile["manager"] == "Grace Hopper"


def test_existing_account_is_adopted_not_duplicated(sandbox):
    with okta_api(sandbox) as api:
        existing = api.post("/api/v1/users", json={"profile": {
            "firstName": "Ada", "lastName": "Byron", "email": LOGIN.upper(), "login": LOGIN.upper()}}).json()
    result = provision()
    assert result["created"] is False and result["account_id"] == existing["id"]
    assert len(users(sandbox)) == 1
    adopted = users(sandbox)[existing["id"]]
    assert adopted["profile"]["lastName"] == "Lovelace" and adopted["profile"]["department"] == "Engineering"
    assert group_names_of(sandbox, existing["id"]) == sorted(ENGINEER_GROUPS)
    creates = [r for r in calls(sandbox, "POST", "/api/v1/users") if r["path"] == "/api/v1/users"]
    assert len(creates) == 1  # the test's own: the operator created nothing

    again = provision()  # a second run changes nothing
    assert again["created"] is False and again["added"] == []
    assert len(users(sandbox)) == 1 and group_names_of(sandbox, existing["id"]) == sorted(ENGINEER_GROUPS)


def test_a_deactivated_account_is_not_silently_reenabled(sandbox):
    provision()
    deprovision()
    with pytest.raises(AirflowFailException, match="exists but is DEPROVISIONED"):
        provision()
    assert user_by_login(sandbox)["status"] == "DEPROVISIONED"


def test_create_that_failed_after_being_applied_is_adopted_on_retry(sandbox):
    sandbox.fault("okta", status=500, method="POST", path="/api/v1/users", count=1, after=True)
    result = provision()
    assert len(users(sandbox)) == 1
    user = user_by_login(sandbox)
    assert result["account_id"] == user["id"] and result["created"] is False
    assert group_names_of(sandbox, user["id"]) == sorted(ENGINEER_GROUPS)
    creates = [r for r in calls(sandbox, "POST", "/api/v1/users") if r["path"] == "/api/v1/users"]
    assert [r["status"] for r in creates] == [500, 400]  # the retry met "login already exists"


def test_group_add_failure_then_rerun_gives_one_account_and_no_duplicate_memberships(sandbox):
    sandbox.fault("okta", status=400, method="PUT", path="/api/v1/groups/", count=1, message="boom")
    with pytest.raises(AirflowFailException, match="add to"):
        provision()
    user = user_by_login(sandbox)
    assert group_names_of(sandbox, user["id"]) == []
    # A membership that succeeded although the client saw an error, retried within the task:
    sandbox.fault("okta", status=500, method="PUT", path="/api/v1/groups/", count=1, after=True)
    result = provision()
    assert len(users(sandbox)) == 1 and result["account_id"] == user["id"]
    assert group_names_of(sandbox, user["id"]) == sorted(ENGINEER_GROUPS)  # each exactly once
    assert group_names_of(sandbox, user["id"], everyone=True).count("Everyone") == 1


def test_rate_limit_is_honoured(sandbox):
    sandbox.fault("okta", status=429, retry_after=1, method="POST", path="/api/v1/users", count=1)
    result = provision()
    assert result["created"] is True and len(users(sandbox)) == 1
    creates = [r for r in calls(sandbox, "POST", "/api/v1/users") if r["path"] == "/api/v1/users"]
    assert [r["status"] for r in creates] == [429, 200]
    assert creates[1]["at"] - creates[0]["at"] >= 0.9  # waited Retry-After


def test_bad_token_fails_the_task_with_a_clear_message(sandbox, monkeypatch):
    conn = {**sandbox.connections["officeflow_okta"], "password": "00not-the-right-token"}
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_OKTA", json.dumps(conn))
    with pytest.raises(AirflowFailException, match="check the connection 'officeflow_okta'") as info:
        provision()
    assert "Invalid token provided" in str(info.value) and "00not-the-right-token" not in str(info.value)
    assert users(sandbox) == {}


def test_missing_connection_fails_the_task(sandbox):
    with pytest.raises(AirflowFailException, match="'okta_nowhere' is not defined"):
        provision(conn_id="okta_nowhere")


@pytest.mark.parametrize("person, problem", [
    ({**HIRE, "last_name": ""}, "family name"),
    ({**HIRE, "email": "ada.lovelace@"}, "not a valid address"),
])
def test_invalid_input_fails_before_any_api_call(sandbox, person, problem):
    with pytest.raises(AirflowFailException, match=problem):
        provision(person)
    assert sandbox.requests("okta") == []


def test_okta_input_errors_are_not_retried(sandbox):
    long_name = {**HIRE, "first_name": "A" * 55}  # OfficeFlow allows 60, Okta's firstName 50
    with pytest.raises(AirflowFailException, match="firstName"):
        provision(long_name)
    creates = [r for r in calls(sandbox, "POST", "/api/v1/users") if r["path"] == "/api/v1/users"]
    assert [r["status"] for r in creates] == [400]


# --- update --------------------------------------------------------------------------------------

def test_update_moves_mapped_groups_and_keeps_unmapped_ones(sandbox):
    provision()
    user_id = user_by_login(sandbox)["id"]
    with okta_api(sandbox) as api:
        club = api.post("/api/v1/groups", json={"profile": {"name": "Book Club"}}).json()
        assert api.put(f"/api/v1/groups/{club['id']}/users/{user_id}").status_code == 204
    moved = {**HIRE, "department": "Sales", "job_title": "Engineering Manager"}
    result = UpdateUserOperator(task_id="update", provider="okta", person=moved).execute(context={})
    assert sorted(result["added"]) == ["Managers", "Sales"]
    assert sorted(result["removed"]) == ["Developers", "Engineering"]
    assert group_names_of(sandbox, user_id) == sorted(["Book Club", "Everyone at OfficeFlow", "Managers", "Sales"])
    profile = user_by_login(sandbox)["profile"]
    assert profile["department"] == "Sales" and profile["title"] == "Engineering Manager"
    assert profile["employeeNumber"] == "E-1001"  # partial update keeps the rest


def test_update_of_an_unknown_person_fails(sandbox):
    with pytest.raises(AirflowFailException, match="no account"):
        UpdateUserOperator(task_id="update", provider="okta", person=HIRE).execute(context={})


# --- deprovision ----------------------------------------------------------------------------------

def test_deprovision_deactivates_revokes_sessions_and_removes_groups(sandbox):
    provision()
    user_id = user_by_login(sandbox)["id"]
    result = deprovision(login=LOGIN.upper())
    user = users(sandbox)[user_id]
    assert user["status"] == "DEPROVISIONED"
    assert result["status"] == "DEPROVISIONED" and result["deleted"] is False
    assert sorted(result["removed"]) == sorted(ENGINEER_GROUPS)
    assert group_names_of(sandbox, user_id) == []
    assert group_names_of(sandbox, user_id, everyone=True) == ["Everyone"]  # Okta keeps everyone in Everyone
    revocations = sandbox.state("okta")["session_revocations"]
    assert [(r["userId"], r["oauthTokens"]) for r in revocations] == [(user_id, True)]
    deactivations = calls(sandbox, "POST", f"/api/v1/users/{user_id}/lifecycle/deactivate")
    assert [r["status"] for r in deactivations] == [200]

    again = deprovision()  # idempotent: no second deactivate (Okta would refuse it)
    assert again["status"] == "DEPROVISIONED" and again["removed"] == []
    assert len(calls(sandbox, "POST", f"/api/v1/users/{user_id}/lifecycle/deactivate")) == 1
    assert users(sandbox)[user_id]["status"] == "DEPROVISIONED"


def test_deprovision_of_an_absent_user(sandbox):
    assert deprovision("nobody@officeflow.test")["status"] == "absent"


def test_deprovision_with_immediate_delete(sandbox):
    provision()
    user_id = user_by_login(sandbox)["id"]
    result = deprovision(delete_after=timedelta(0))
    assert result["deleted"] is True and users(sandbox) == {}
    assert all(user_id not in members for members in sandbox.state("okta")["memberships"].values())
    assert deprovision(delete_after=timedelta(0))["status"] == "absent"


def test_deprovision_with_retention_defers_the_delete(sandbox):
    provision()
    with pytest.raises(TaskDeferred) as info:
        deprovision(delete_after=timedelta(days=30))
    assert info.value.method_name == "execute_delete"
    assert user_by_login(sandbox)["status"] == "DEPROVISIONED"  # suspended now, deleted later
    op = DeprovisionUserOperator(task_id="deprovision", provider="okta", login=LOGIN,
                                 delete_after=timedelta(days=30))
    assert info.value.kwargs is not None
    assert op.execute_delete({}, event=None, result=info.value.kwargs["result"])["deleted"] is True  # type: ignore[arg-type]
    assert users(sandbox) == {}


# --- the hook directly -----------------------------------------------------------------------------

def test_hook_lookups_groups_and_paging(sandbox):
    hook = OktaHook()
    with okta_api(sandbox) as api:
        for i in range(3):
            profile = {"firstName": "U", "lastName": f"{i}", "email": f"dup{i}@officeflow.test",
                       "login": f"u{i}@officeflow.test"}
            api.post("/api/v1/users", params={"activate": "false"}, json={"profile": profile})
    by_login, by_email = hook.find_user("U1@OfficeFlow.test"), hook.find_user("dup2@officeflow.test")
    assert by_login is not None and by_login.login == "u1@officeflow.test"
    assert by_email is not None and by_email.login == "u2@officeflow.test"  # by primary email
    assert hook.find_user("nobody@officeflow.test") is None
    ids = hook.group_ids(["Engineering", "Everyone at OfficeFlow"])
    assert set(ids) == {"Engineering", "Everyone at OfficeFlow"}
    with pytest.raises(NotFound, match="Nope, Nada"):
        hook.group_ids(["Engineering", "Nope", "Nada"])
    with pytest.raises(InvalidInput, match="BUILT_IN"):
        hook.group_ids(["Everyone"])
    account = hook.find_user("u0@officeflow.test")
    assert account is not None and account.enabled is False and account.status == "STAGED"
    assert hook.user_groups(account) == {}  # Everyone (BUILT_IN) is not OfficeFlow's to manage
    assert hook.add_member(account, ids["Engineering"]) is True
    assert hook.add_member(account, ids["Engineering"]) is False
    assert hook.user_groups(account) == {ids["Engineering"]: "Engineering"}
    assert hook.remove_member(account, ids["Engineering"]) is True
    assert hook.remove_member(account, ids["Engineering"]) is False
    # Paging: a small page size still sees every user.
    all_users = list(hook._pages("/api/v1/users", {"limit": 1}))
    assert len(all_users) == 3
    assert len([r for r in calls(sandbox, "GET", "/api/v1/users") if "limit=1" in r["query"]]) == 3


# --- domain events (docs/events.md) ---------------------------------------------------------------------------

ACCOUNT_KEYS = {"employee_id", "provider", "account_id", "organization_id", "state", "provider_status", "dag_id",
                "run_id", "task_id"}


def run_context(task_id: str, run_id: str = "manual__hire-1", **conf: str) -> dict:
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="employee_onboarding", run_id=run_id, task_id=task_id, map_index=-1)
    return {"ti": ti, "dag_run": SimpleNamespace(run_id=run_id, conf=conf)}


def test_provisioning_and_deprovisioning_record_the_account_with_one_event_each(sandbox, identity_store):
    from include.officeflow import identity_accounts
    from tests.harness.outbox import assert_no_personal_data, events

    op = ProvisionUserOperator(task_id="provision_account", provider="okta", person=HIRE, password_delivery="none")
    result = op.execute(run_context("provision_account", organization_id="acme", correlation_id="trace-hire-1"))
    [provisioned] = events(identity_store, "account")
    subject = f"okta:{result['account_id']}"
    assert (provisioned["type"], provisioned["subject"]) == ("com.officeflow.account.provisioned", subject)
    assert (provisioned["organizationid"], provisioned["correlationid"]) == ("acme", "trace-hire-1")
    assert provisioned["data"] == {
        "employee_id": "E-1001", "provider": "okta", "account_id": result["account_id"], "organization_id": "acme",
        "state": "provisioned", "provider_status": "PASSWORD_EXPIRED", "created": True,
        "dag_id": "employee_onboarding", "run_id": "manual__hire-1", "task_id": "provision_account"}
    assert_no_personal_data(provisioned, LOGIN, "ada@home.test", "Lovelace")
    record = identity_accounts.get(identity_store, "okta", result["account_id"])
    assert (record.state, record.employee_id, record.organization_id) == ("provisioned", "E-1001", "acme")

    op.execute(run_context("provision_account", organization_id="acme"))  # a retry adopts it: no change, no event
    assert len(events(identity_store, "account")) == 1

    # Offboarding knows the login and the run's ids: the employee id comes from the record.
    DeprovisionUserOperator(task_id="disable_account", provider="okta", login=LOGIN).execute(
        run_context("disable_account", run_id="manual__leaver-1", correlation_id="trace-leave-1"))
    _, deprovisioned = events(identity_store, "account")
    assert (deprovisioned["type"], deprovisioned["subject"]) == ("com.officeflow.account.deprovisioned", subject)
    assert set(deprovisioned["data"]) == ACCOUNT_KEYS and deprovisioned["correlationid"] == "trace-leave-1"
    assert {k: deprovisioned["data"][k] for k in ("employee_id", "organization_id", "state", "provider_status",
                                                  "run_id")} == {
        "employee_id": "E-1001", "organization_id": "acme", "state": "deprovisioned",
        "provider_status": "DEPROVISIONED", "run_id": "manual__leaver-1"}
    deprovision()  # again: already deprovisioned, no event
    assert len(events(identity_store, "account")) == 2

    deprovision(delete_after=timedelta(0))
    *_, deleted = events(identity_store, "account")
    assert (deleted["type"], deleted["data"]["state"], deleted["data"]["employee_id"]) == (
        "com.officeflow.account.deleted", "deleted", "E-1001")
    assert identity_accounts.get(identity_store, "okta", result["account_id"]).state == "deleted"


def test_a_provisioning_whose_record_fails_leaves_no_record_and_its_retry_records_once(sandbox, identity_store):
    from include.officeflow import identity_accounts
    from tests.harness.outbox import events, outbox_refusing

    with outbox_refusing(identity_store, "account"), pytest.raises(Exception, match="test_refuse_account"):
        provision()
    account_id = user_by_login(sandbox)["id"]  # the account exists at Okta; the store has neither row nor event
    assert identity_accounts.get(identity_store, "okta", account_id) is None and events(identity_store) == []
    result = provision()  # Airflow's retry adopts the account and records it
    assert result["account_id"] == account_id and result["created"] is False
    [event] = events(identity_store, "account")
    assert event["data"]["created"] is False and event["data"]["employee_id"] == "E-1001"
    assert event["organizationid"] == "default" and "correlationid" not in event


def test_deprovisioning_an_absent_account_writes_nothing(sandbox, identity_store):
    from tests.harness.outbox import events

    assert deprovision("nobody@officeflow.test")["status"] == "absent"
    assert events(identity_store) == []
