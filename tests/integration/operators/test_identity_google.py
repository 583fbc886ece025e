"""Identity operators with provider="google": GoogleDirectoryHook (google-api-python-client + google-auth)
against the Google sandbox over HTTP, through the ``officeflow_google`` connection the sandbox issued."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from include.officeflow.errors import NotFound
from include.officeflow.identity import Person
from operators.hooks.google_directory import GoogleDirectoryHook
from operators.identity import DeprovisionUserOperator, ProvisionUserOperator, UpdateUserOperator
from sandbox.google.oauth import service_account_key

pytestmark = pytest.mark.usefixtures("identity_store")  # provisioning records its accounts in the store

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada.Lovelace@officeflow.test",
       "department": "Engineering", "job_title": "Software Engineer", "manager_email": "admin@officeflow.test",
       "employee_id": "E-1815", "personal_email": "ada@example.com"}
ADA_LOGIN = "ada.lovelace@officeflow.test"
ENGINEERING_GROUPS = {"everyone@officeflow.test", "engineering@officeflow.test", "developers@officeflow.test"}
USERS = "/admin/directory/v1/users"


def provision(person: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    op = ProvisionUserOperator(task_id="provision", provider="google", person=person or ADA,
                               password_delivery="none", **kwargs)
    result: dict[str, Any] = op.execute(context={})
    return result


def user_by_login(state: dict[str, Any], login: str) -> dict[str, Any] | None:
    matches = [u for u in state["users"].values() if u["primaryEmail"] == login]
    assert len(matches) <= 1, f"{len(matches)} accounts for {login}"
    return matches[0] if matches else None


def group_emails_of(state: dict[str, Any], user_id: str) -> list[str]:
    """Every group the user is a direct member of (a list: duplicates would show)."""
    return sorted(state["groups"][gid]["email"] for gid, members in state["members"].items() if user_id in members)


def api_calls(sandbox, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests("google")
            if (method is None or r["method"] == method) and (path is None or r["path"] == path)]


# --- provision -----------------------------------------------------------------------------------------

def test_provision_creates_the_account_with_the_mapped_groups(sandbox):
    result = provision()
    state = sandbox.state("google")
    user = user_by_login(state, ADA_LOGIN)
    assert user is not None and user["suspended"] is False
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace", "fullName": "Ada Lovelace"}
    assert user["changePasswordAtNextLogin"] is True
    assert user["organizations"] == [{"primary": True, "customType": "", "department": "Engineering",
                                      "title": "Software Engineer"}]
    assert user["relations"] == [{"type": "manager", "value": "admin@officeflow.test"}]
    assert user["externalIds"] == [{"type": "organization", "value": "E-1815"}]
    assert user["recoveryEmail"] == "ada@example.com"
    assert user["id"] in state["password_hashes"]  # a temporary password was set
    assert group_emails_of(state, user["id"]) == sorted(ENGINEERING_GROUPS)
    assert result == {"provider": "google", "account_id": user["id"], "login": ADA_LOGIN, "created": True,
                      "password_variable": None, "added": ["everyone@officeflow.test", "engineering@officeflow.test",
                                                           "developers@officeflow.test"],
                      "removed": [], "groups": sorted(ENGINEERING_GROUPS)}
    assert "password" not in json.dumps(result).replace("password_variable", "")
    # a member add right after the create meets "User creation is not complete." (412) and is retried
    member_adds = [r["status"] for r in api_calls(sandbox, "POST") if r["path"].endswith("/members")]
    assert member_adds.count(200) == 3 and set(member_adds) <= {200, 412}


def test_provision_adopts_an_existing_account(sandbox):
    first = provision()
    time.sleep(0.6)
    second = provision({**ADA, "email": "ADA.LOVELACE@OFFICEFLOW.TEST"})
    assert second["created"] is False and second["account_id"] == first["account_id"]
    assert second["added"] == [] and second["password_variable"] is None
    state = sandbox.state("google")
    assert sum(u["primaryEmail"] == ADA_LOGIN for u in state["users"].values()) == 1
    assert group_emails_of(state, first["account_id"]) == sorted(ENGINEERING_GROUPS)
    assert len(api_calls(sandbox, "POST", USERS)) == 1  # the second run never tried to create


def test_create_answered_with_an_error_after_it_was_made_is_adopted_on_retry(sandbox):
    sandbox.fault("google", status=503, method="POST", path=USERS, after=True, count=1)
    result = provision()
    state = sandbox.state("google")
    user = user_by_login(state, ADA_LOGIN)
    assert user is not None and result["account_id"] == user["id"]
    assert result["created"] is False  # the retry met 409 and adopted the account the failed try made
    assert [r["status"] for r in api_calls(sandbox, "POST", USERS)] == [503, 409]
    assert group_emails_of(state, user["id"]) == sorted(ENGINEERING_GROUPS)


def test_failure_on_a_group_add_then_running_again_completes_without_duplicates(sandbox):
    time_to_wait = 120  # longer than an operator waits in-task: the task fails, Airflow's retry runs it again
    sandbox.fault("google", status=429, retry_after=time_to_wait, method="POST", path="/members", count=1)
    with pytest.raises(AirflowException, match="rateLimitExceeded") as failure:
        provision()
    assert not isinstance(failure.value, AirflowFailException)  # retryable by Airflow
    state = sandbox.state("google")
    user = user_by_login(state, ADA_LOGIN)
    assert user is not None and group_emails_of(state, user["id"]) == []
    result = provision()
    state = sandbox.state("google")
    assert result["created"] is False and result["account_id"] == user["id"]
    assert sum(u["primaryEmail"] == ADA_LOGIN for u in state["users"].values()) == 1
    assert group_emails_of(state, user["id"]) == sorted(ENGINEERING_GROUPS)


def test_member_add_applied_but_answered_with_an_error_is_not_duplicated(sandbox):
    person = {**ADA, "department": "Sales", "job_title": None}
    provision({**person, "department": None})  # the account exists, in "everyone" only
    time.sleep(0.6)
    sandbox.fault("google", status=500, method="POST", path="/members", after=True, count=1)
    result = provision(person)
    state = sandbox.state("google")
    user = user_by_login(state, ADA_LOGIN)
    assert user is not None
    assert group_emails_of(state, user["id"]) == ["everyone@officeflow.test", "sales@officeflow.test"]
    assert result["added"] == []  # the retry found the membership the failed try had made
    assert [r["status"] for r in api_calls(sandbox, "POST") if r["path"].endswith("/members")][-2:] == [500, 409]


def test_rate_limit_is_honoured_and_the_task_succeeds(sandbox):
    sandbox.fault("google", status=429, retry_after=1, method="GET", path=f"{USERS}/", count=1)
    started = time.monotonic()
    result = provision()
    assert time.monotonic() - started >= 1
    assert result["created"] is True
    lookups = [r["status"] for r in api_calls(sandbox, "GET", f"{USERS}/{ADA_LOGIN}")]
    assert lookups[:2] == [429, 404]
    assert user_by_login(sandbox.state("google"), ADA_LOGIN) is not None


# --- failures before or at the first call ------------------------------------------------------------------

def _connection(sandbox) -> dict[str, Any]:
    return json.loads(json.dumps(sandbox.connections["officeflow_google"]))


def test_unregistered_key_fails_with_a_clear_message(sandbox, monkeypatch):
    conn = _connection(sandbox)
    info = conn["extra"]["keyfile_dict"]
    other, _ = service_account_key(info["client_email"], info["token_uri"])  # same account, key Google never saw
    conn["extra"]["keyfile_dict"] = other
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_GOOGLE", json.dumps(conn))
    with pytest.raises(AirflowFailException, match="Invalid JWT Signature") as failure:
        provision()
    assert "check the connection 'officeflow_google'" in str(failure.value)
    assert "PRIVATE KEY" not in str(failure.value)
    assert [r["path"] for r in sandbox.requests("google")] == ["/token"]
    assert user_by_login(sandbox.state("google"), ADA_LOGIN) is None


def test_subject_who_is_not_an_admin_fails_with_a_clear_message(sandbox, monkeypatch):
    provision({**ADA, "department": None, "job_title": None})
    conn = _connection(sandbox)
    conn["extra"]["subject"] = ADA_LOGIN
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_GOOGLE", json.dumps(conn))
    with pytest.raises(AirflowFailException, match="Not Authorized to access this resource/api") as failure:
        DeprovisionUserOperator(task_id="deprovision", provider="google", login=ADA_LOGIN).execute(context={})
    assert "extra.subject is an admin" in str(failure.value)


def test_wrong_api_endpoint_fails_clearly(sandbox, monkeypatch):
    conn = _connection(sandbox)
    conn["extra"]["api_endpoint"] = f"{sandbox.url}/nowhere/"
    monkeypatch.setenv("AIRFLOW_CONN_OFFICEFLOW_GOOGLE", json.dumps(conn))
    with pytest.raises(AirflowFailException, match=r"check extra\.api_endpoint"):
        provision()
    assert user_by_login(sandbox.state("google"), ADA_LOGIN) is None


def test_missing_connection_fails_clearly(sandbox):
    with pytest.raises(AirflowFailException, match="connection 'no_such_conn' is not defined"):
        provision(conn_id="no_such_conn")


@pytest.mark.parametrize(("change", "message"), [
    ({"last_name": ""}, "family name"),
    ({"email": "ada@@officeflow"}, "is not a valid address"),
])
def test_invalid_person_fails_before_any_call(sandbox, change, message):
    with pytest.raises(AirflowFailException, match=message):
        provision({**ADA, **change})
    assert sandbox.requests("google") == []


# --- update --------------------------------------------------------------------------------------------------

def test_department_change_moves_mapped_groups_and_keeps_others(sandbox, tmp_path):
    groups_file = tmp_path / "groups.yaml"  # managers@ is a Workspace group this mapping does not manage
    groups_file.write_text("google:\n  all: [everyone@officeflow.test]\n  departments:\n"
                           "    Engineering: [engineering@officeflow.test]\n    People: [people-team@officeflow.test]\n"
                           "  roles:\n    Software Engineer: [developers@officeflow.test]\n")
    created = provision(groups_file=str(groups_file))
    hook = GoogleDirectoryHook()
    account = hook.find_user(ADA_LOGIN)
    assert account is not None
    managers = hook.group_ids(["managers@officeflow.test"])["managers@officeflow.test"]
    assert hook.add_member(account, managers) is True  # added by hand
    moved = {**ADA, "department": "People", "job_title": "People Partner"}
    result = UpdateUserOperator(task_id="update", provider="google", person=moved,
                                groups_file=str(groups_file)).execute(context={})
    state = sandbox.state("google")
    assert result["added"] == ["people-team@officeflow.test"]
    assert result["removed"] == ["developers@officeflow.test", "engineering@officeflow.test"]
    assert group_emails_of(state, created["account_id"]) == ["everyone@officeflow.test", "managers@officeflow.test",
                                                             "people-team@officeflow.test"]
    user = state["users"][created["account_id"]]
    assert user["organizations"][0]["department"] == "People"
    assert user["organizations"][0]["title"] == "People Partner"


def test_update_of_an_unknown_login_fails(sandbox):
    with pytest.raises(AirflowFailException, match="no account"):
        UpdateUserOperator(task_id="update", provider="google", person=ADA).execute(context={})


# --- deprovision ---------------------------------------------------------------------------------------------

def deprovision(**kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = DeprovisionUserOperator(task_id="deprovision", provider="google",
                                                     **{"login": ADA_LOGIN, **kwargs}).execute(context={})
    return result


def test_deprovision_suspends_signs_out_and_removes_groups_idempotently(sandbox):
    created = provision()
    result = deprovision(login="Ada.Lovelace@OfficeFlow.test")
    state = sandbox.state("google")
    user = state["users"][created["account_id"]]
    assert user["suspended"] is True and user["suspensionReason"] == "ADMIN"
    assert state["sign_outs"][user["id"]] == 1
    assert group_emails_of(state, user["id"]) == []
    assert result["status"] == "SUSPENDED" and result["deleted"] is False
    assert sorted(result["removed"]) == sorted(ENGINEERING_GROUPS)

    again = deprovision()
    assert again["status"] == "SUSPENDED" and again["removed"] == []
    assert [r["status"] for r in api_calls(sandbox, "PATCH")].count(200) == 1  # suspended once


def test_deprovision_of_an_absent_user(sandbox):
    assert deprovision(login="ghost@officeflow.test") == {"provider": "google", "login": "ghost@officeflow.test",
                                                          "account_id": None, "status": "absent"}


def test_deprovision_with_zero_retention_deletes(sandbox):
    created = provision()
    result = deprovision(delete_after=timedelta(0))
    assert result["deleted"] is True
    state = sandbox.state("google")
    assert created["account_id"] not in state["users"]
    assert group_emails_of(state, created["account_id"]) == []


def test_deprovision_with_retention_defers_the_delete(sandbox):
    created = provision()
    with pytest.raises(TaskDeferred) as deferred:
        deprovision(delete_after=timedelta(days=30))
    assert deferred.value.method_name == "execute_delete"
    user = sandbox.state("google")["users"][created["account_id"]]
    assert user["suspended"] is True  # kept, suspended, until the retention period ends


# --- the hook on its own ---------------------------------------------------------------------------------------

def test_hook_reports_missing_groups_and_adoption_by_id(sandbox):
    hook = GoogleDirectoryHook()
    with pytest.raises(NotFound, match=r"not found: ghosts@officeflow\.test"):
        hook.group_ids(["everyone@officeflow.test", "ghosts@officeflow.test"])
    account = hook.create_user(Person.from_mapping(ADA), "Temp-Passw0rd!")
    assert account.login == ADA_LOGIN and account.enabled and account.status == "ACTIVE"
    found = hook.find_user("ADA.LOVELACE@officeflow.test")
    assert found is not None and found.id == account.id


# --- domain events (docs/events.md) ---------------------------------------------------------------------------

def test_provisioning_and_deprovisioning_write_account_events(sandbox, identity_store):
    from tests.harness.outbox import assert_no_personal_data, events

    result = provision()
    deprovision()
    provisioned, deprovisioned = events(identity_store, "account")
    assert [provisioned["type"], deprovisioned["type"]] == ["com.officeflow.account.provisioned",
                                                            "com.officeflow.account.deprovisioned"]
    assert {provisioned["subject"], deprovisioned["subject"]} == {f"google:{result['account_id']}"}
    assert (provisioned["data"]["employee_id"], provisioned["data"]["provider"], provisioned["data"]["created"]) == (
        "E-1815", "google", True)
    assert deprovisioned["data"]["employee_id"] == "E-1815"  # from the record: deprovisioning knows the login only
    for event in (provisioned, deprovisioned):
        assert_no_personal_data(event, ADA_LOGIN, "ada@example.com", "Lovelace")
