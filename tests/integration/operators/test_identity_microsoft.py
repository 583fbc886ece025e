"""Identity operators with ``provider="microsoft"``: MicrosoftGraphIdentityHook (the microsoft-azure
provider's KiotaRequestAdapterHook: azure-identity for the token, kiota/httpx for Graph; real requests)
against the sandbox process's TLS listener, asserting on the sandbox's state."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from include.officeflow.errors import AuthError, RateLimited, ServiceError
from include.officeflow.identity import Person
from operators.hooks.msgraph_identity import MicrosoftGraphIdentityHook
from operators.identity import DeprovisionUserOperator, ProvisionUserOperator, UpdateUserOperator
from sandbox.microsoft.directory import group_id_for

pytestmark = pytest.mark.usefixtures("identity_store")  # provisioning records its accounts in the store

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@officeflow.test", "department": "Engineering",
       "job_title": "Software Engineer", "employee_id": "E-1001"}
ADA_GROUPS = {"All Staff", "Engineering", "Developers"}


def provision(person: dict | None = None) -> dict:
    op = ProvisionUserOperator(task_id="provision", provider="microsoft", person=person or ADA,
                               password_delivery="none")
    return op.execute(context={})  # type: ignore[arg-type]


def users_named(sandbox, upn: str) -> list[dict]:
    return [u for u in sandbox.state("microsoft")["users"].values() if u["userPrincipalName"].lower() == upn.lower()]


def the_user(sandbox, upn: str = "ada@officeflow.test") -> dict:
    [user] = users_named(sandbox, upn)
    return user


def groups_of(sandbox, user_id: str) -> list[str]:
    """Group names of the user, one entry per membership (a duplicate would show twice)."""
    return sorted(g["displayName"] for g in sandbox.state("microsoft")["groups"].values()
                  for member in g["members"] if member == user_id)


def user_creations(sandbox) -> list[dict]:
    return [r for r in sandbox.requests("microsoft") if r["method"] == "POST" and r["path"] == "/v1.0/users"]


def graph_calls(sandbox) -> list[dict]:
    return [r for r in sandbox.requests("microsoft") if r["path"].startswith("/v1.0/")]


# --- provision -----------------------------------------------------------------------------------------

def test_provision_creates_the_account_with_the_mapped_groups(sandbox):
    result = provision()
    user = the_user(sandbox)
    assert user["accountEnabled"] is True
    assert (user["givenName"], user["surname"], user["displayName"]) == ("Ada", "Lovelace", "Ada Lovelace")
    assert (user["department"], user["jobTitle"], user["employeeId"]) == ("Engineering", "Software Engineer", "E-1001")
    assert user["mailNickname"] == "ada" and user["passwordProfile"] == {"forceChangePasswordNextSignIn": True}
    assert groups_of(sandbox, user["id"]) == sorted(ADA_GROUPS)
    assert result["account_id"] == user["id"] and result["login"] == "ada@officeflow.test"
    assert result["created"] is True and result["password_variable"] is None
    assert set(result["added"]) == ADA_GROUPS and result["removed"] == []
    assert "password" not in {k for k in result if k != "password_variable"}
    assert "Passw" not in json.dumps(result)


def test_existing_account_is_adopted_not_duplicated(sandbox):
    with MicrosoftGraphIdentityHook("officeflow_microsoft") as hook:
        existing = hook.create_user(Person.from_mapping({**ADA, "department": None, "job_title": None}),
                                    "Earlier-Passw0rd!")
        hook.add_member(existing, group_id_for("All Staff"))
    result = provision()
    assert result["created"] is False and result["account_id"] == existing.id
    user = the_user(sandbox)
    assert user["department"] == "Engineering" and user["jobTitle"] == "Software Engineer"  # updated on adoption
    assert groups_of(sandbox, existing.id) == sorted(ADA_GROUPS)
    assert set(result["added"]) == {"Engineering", "Developers"}
    assert len(user_creations(sandbox)) == 1  # the hook's own, before the operator ran


def test_create_answered_with_an_error_after_it_happened_is_adopted(sandbox):
    # The user is created but the client sees a 500: the in-task retry hits the existing UPN and adopts.
    sandbox.fault("microsoft", status=500, after=True, method="POST", path="/v1.0/users")
    result = provision()
    user = the_user(sandbox)
    assert result["account_id"] == user["id"] and result["created"] is False
    assert groups_of(sandbox, user["id"]) == sorted(ADA_GROUPS)
    assert [r["status"] for r in user_creations(sandbox)] == [500, 400]


def test_rerun_after_a_failed_group_add_completes_without_duplicates(sandbox):
    # The first membership is made but answered with 403: the task fails; the Airflow retry finishes the job.
    sandbox.fault("microsoft", status=403, after=True, method="POST", path="/members/$ref")
    with pytest.raises(AirflowFailException, match="check that the app registration"):
        provision()
    first = the_user(sandbox)
    assert len(groups_of(sandbox, first["id"])) == 1
    result = provision()
    assert result["created"] is False and result["account_id"] == first["id"]
    assert len(users_named(sandbox, "ada@officeflow.test")) == 1
    assert groups_of(sandbox, first["id"]) == sorted(ADA_GROUPS)  # each exactly once
    assert len(result["added"]) == 2


def test_429_is_waited_out_and_retried(sandbox):
    sandbox.fault("microsoft", status=429, retry_after=1, method="POST", path="/v1.0/users")
    result = provision()
    assert result["created"] is True and the_user(sandbox)["accountEnabled"] is True
    creates = user_creations(sandbox)
    assert [r["status"] for r in creates] == [429, 201]
    assert creates[1]["at"] - creates[0]["at"] >= 0.9


def test_bad_client_secret_fails_with_a_clear_message(sandbox, monkeypatch):
    conn = {**sandbox.connections["officeflow_microsoft"], "password": "not-the-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_MICROSOFT", json.dumps(conn))
    with pytest.raises(AirflowFailException, match=r"AADSTS7000215.*check the connection"):
        provision()
    assert graph_calls(sandbox) == []
    assert [r["status"] for r in sandbox.requests("microsoft")] == [401]  # the token request, not retried


def test_wrong_tenant_fails_with_a_clear_message(sandbox, monkeypatch):
    conn = sandbox.connections["officeflow_microsoft"]
    conn = {**conn, "extra": {**conn["extra"], "tenant_id": "another-tenant"}}
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_MICROSOFT", json.dumps(conn))
    with pytest.raises(AirflowFailException, match=r"AADSTS90002.*tenant_id"):
        provision()


@pytest.mark.parametrize(("person", "problem"), [
    ({**ADA, "last_name": ""}, "family name"),
    ({**ADA, "email": "ada-at-officeflow.test"}, "not a valid address"),
])
def test_invalid_input_fails_before_any_call(sandbox, person, problem):
    with pytest.raises(AirflowFailException, match=problem):
        provision(person)
    assert sandbox.requests("microsoft") == []


def test_graph_refusal_is_not_retried(sandbox):
    with pytest.raises(AirflowFailException, match="verified domain names"):
        provision({**ADA, "email": "ada@elsewhere.example"})
    assert [r["status"] for r in user_creations(sandbox)] == [400]


# --- update --------------------------------------------------------------------------------------------

def test_department_change_moves_mapped_groups_and_keeps_unmapped_ones(sandbox):
    account_id = provision()["account_id"]
    with MicrosoftGraphIdentityHook("officeflow_microsoft") as hook:
        created = hook._call("POST", "groups", "group creation", body={
            "displayName": "Book Club", "mailEnabled": False, "mailNickname": "bookclub", "securityEnabled": True,
        }).json()
        account = hook.find_user("ada@officeflow.test")
        assert account is not None and hook.add_member(account, created["id"])
    op = UpdateUserOperator(task_id="update", provider="microsoft",
                            person={**ADA, "department": "Sales", "job_title": "Account Executive"})
    result = op.execute(context={})  # type: ignore[arg-type]
    user = the_user(sandbox)
    assert (user["department"], user["jobTitle"]) == ("Sales", "Account Executive")
    assert groups_of(sandbox, account_id) == ["All Staff", "Book Club", "Sales"]
    assert result["added"] == ["Sales"] and sorted(result["removed"]) == ["Developers", "Engineering"]


def test_update_of_a_missing_account_fails(sandbox):
    op = UpdateUserOperator(task_id="update", provider="microsoft", person=ADA)
    with pytest.raises(AirflowFailException, match="no account"):
        op.execute(context={})  # type: ignore[arg-type]


# --- deprovision ---------------------------------------------------------------------------------------

def deprovision(**kwargs) -> dict:
    op = DeprovisionUserOperator(task_id="deprovision", provider="microsoft", login="Ada@OfficeFlow.test", **kwargs)
    return op.execute(context={})  # type: ignore[arg-type]


def test_deprovision_disables_revokes_and_removes_groups_idempotently(sandbox):
    account_id = provision()["account_id"]
    result = deprovision()
    user = the_user(sandbox)
    assert user["accountEnabled"] is False and user["revokeSignInSessionsCount"] == 1
    assert groups_of(sandbox, account_id) == []
    assert result["status"] == "DISABLED" and result["deleted"] is False
    assert sorted(result["removed"]) == sorted(ADA_GROUPS)
    patches = [r for r in sandbox.requests("microsoft") if r["method"] == "PATCH"]
    again = deprovision()
    assert again["status"] == "DISABLED" and again["removed"] == []
    assert [r for r in sandbox.requests("microsoft") if r["method"] == "PATCH"] == patches  # no second suspend
    assert the_user(sandbox)["accountEnabled"] is False


def test_deprovision_of_an_absent_user(sandbox):
    assert deprovision()["status"] == "absent"


def test_deprovision_with_zero_retention_deletes(sandbox):
    account_id = provision()["account_id"]
    result = deprovision(delete_after=timedelta(0))
    assert result["deleted"] is True
    state = sandbox.state("microsoft")
    assert account_id not in state["users"] and account_id in state["deletedItems"]
    assert deprovision()["status"] == "absent"


def test_deprovision_with_retention_defers_the_deletion(sandbox):
    account_id = provision()["account_id"]
    with pytest.raises(TaskDeferred) as deferred:
        deprovision(delete_after=timedelta(days=30))
    assert deferred.value.method_name == "execute_delete"
    user = sandbox.state("microsoft")["users"][account_id]
    assert user["accountEnabled"] is False  # suspended now, deleted later


# --- the hook itself -----------------------------------------------------------------------------------

def test_a_production_connection_resolves_to_the_real_endpoints(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MS_PROD", json.dumps({
        "conn_type": "msgraph", "login": "client-id", "password": "client-secret",
        "extra": {"tenant_id": "contoso.onmicrosoft.com"}}))
    with MicrosoftGraphIdentityHook("ms_prod") as hook:
        settings = hook.settings()
        assert settings.token_endpoint == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        assert settings.graph_base == "https://graph.microsoft.com/v1.0"
        # what the provider hook builds from the connection (no request is made)
        adapter = hook._run(hook._provider_hook().get_async_conn())
        assert adapter.base_url == "https://graph.microsoft.com/v1.0/"
        tokens = adapter._authentication_provider.access_token_provider
        assert tokens._scopes == ["https://graph.microsoft.com/.default"]
        assert tokens._credentials._credential._client._get_token_url() == settings.token_endpoint
    # the provider's UI defaults (schema/host/port) give the same Graph base, and its links are followed
    monkeypatch.setenv("AIRFLOW_CONN_MS_UI", json.dumps({
        "conn_type": "msgraph", "login": "c", "password": "s", "schema": "https", "host": "graph.microsoft.com",
        "port": 443, "extra": {"tenant_id": "t", "api_version": "beta"}}))
    with MicrosoftGraphIdentityHook("ms_ui") as hook:
        assert hook.settings().graph_base == "https://graph.microsoft.com/beta"
        hook._run(hook._provider_hook().assert_allowed_host("https://graph.microsoft.com/beta/users?$skiptoken=x"))
        with pytest.raises(ServiceError, match="another host"):
            hook._send("GET", "https://attacker.example/beta/users")


def test_connection_without_tenant_is_an_auth_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MS_BROKEN", json.dumps({"conn_type": "msgraph", "login": "c", "password": "s"}))
    with pytest.raises(AuthError, match=r"extra\.tenant_id"):
        MicrosoftGraphIdentityHook("ms_broken").find_user("ada@officeflow.test")


def test_throttled_token_request_is_waited_out(sandbox):
    sandbox.fault("microsoft", status=429, retry_after=1, method="POST", path="/oauth2/v2.0/token")
    assert provision()["created"] is True
    tokens = [r["status"] for r in sandbox.requests("microsoft") if r["path"].endswith("/oauth2/v2.0/token")]
    assert tokens == [429, 200]


def test_a_token_graph_rejects_is_replaced_once(sandbox):
    with MicrosoftGraphIdentityHook("officeflow_microsoft") as hook:
        assert hook.find_user("ada@officeflow.test") is None  # token cached now
        sandbox.fault("microsoft", status=401, method="GET", path="/v1.0/users/")
        assert hook.find_user("ada@officeflow.test") is None
        sandbox.fault("microsoft", status=401, method="GET", path="/v1.0/users/", count=2)
        with pytest.raises(AuthError, match="check the connection"):
            hook.find_user("ada@officeflow.test")
    statuses = [(r["method"], r["status"]) for r in sandbox.requests("microsoft")]
    assert statuses.count(("POST", 200)) == 3  # the first token, then one new token per rejection


def test_throttling_is_left_to_the_caller(sandbox):
    # kiota's retry handler and azure-core's retry policy are off: the 429 comes back at once with Retry-After
    with MicrosoftGraphIdentityHook("officeflow_microsoft") as hook:
        sandbox.fault("microsoft", status=429, retry_after=30, method="POST", path="/oauth2/v2.0/token")
        with pytest.raises(RateLimited) as token_throttled:
            hook.find_user("ada@officeflow.test")
        assert token_throttled.value.retry_after == 30
        sandbox.fault("microsoft", status=429, retry_after=30, method="GET", path="/v1.0/users/")
        started = time.monotonic()
        with pytest.raises(RateLimited) as graph_throttled:
            hook.find_user("ada@officeflow.test")
        assert graph_throttled.value.retry_after == 30 and time.monotonic() - started < 5
        sandbox.fault("microsoft", status=503, method="GET", path="/v1.0/users/")
        with pytest.raises(ServiceError, match="answered 503") as unavailable:
            hook.find_user("ada@officeflow.test")
        assert unavailable.value.retryable
    statuses = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in sandbox.requests("microsoft")]
    assert statuses == [("token", 429), ("token", 200), ("ada@officeflow.test", 429), ("ada@officeflow.test", 503)]


def test_an_untrusted_certificate_is_a_connection_error(sandbox, monkeypatch):
    conn = sandbox.connections["officeflow_microsoft"]
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_MICROSOFT",
                       json.dumps({**conn, "extra": {**conn["extra"], "verify": True}}))  # the system CAs only
    with MicrosoftGraphIdentityHook("officeflow_microsoft") as hook, \
            pytest.raises(AuthError, match=r"not trusted.*extra\.verify"):
        hook.find_user("ada@officeflow.test")
    assert sandbox.requests("microsoft") == []


# --- domain events (docs/events.md) ---------------------------------------------------------------------------

def test_provisioning_and_deprovisioning_write_account_events(sandbox, identity_store):
    from tests.harness.outbox import assert_no_personal_data, events

    result = provision()
    deprovision()
    provisioned, deprovisioned = events(identity_store, "account")
    assert [provisioned["type"], deprovisioned["type"]] == ["com.officeflow.account.provisioned",
                                                            "com.officeflow.account.deprovisioned"]
    assert {provisioned["subject"], deprovisioned["subject"]} == {f"microsoft:{result['account_id']}"}
    assert (provisioned["data"]["employee_id"], provisioned["data"]["provider"]) == ("E-1001", "microsoft")
    assert deprovisioned["data"]["provider_status"] == "DISABLED"
    for event in (provisioned, deprovisioned):
        assert_no_personal_data(event, "ada@officeflow.test", "Lovelace")
