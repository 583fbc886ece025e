"""The Okta emulation (sandbox/okta/) over real HTTP: auth, errors, paging, lifecycle, groups.

Most tests talk to the sandbox process (``sandbox`` fixture) with a plain httpx client; the
rate-limit test builds the app in-process with a tiny per-minute limit to reach a real E0000047.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from include.officeflow.identity import DEFAULT_GROUPS_FILE, load_group_mapping
from sandbox import okta
from sandbox.core import Credentials
from sandbox.server import create_app

PASSWORD = "Tmp-Passw0rd!x"


@pytest.fixture
def org(sandbox):
    conn = sandbox.connections["officeflow_okta"]
    with httpx.Client(base_url=conn["host"], headers={"Authorization": f"SSWS {conn['password']}"},
                      timeout=10) as client:
        yield client


def new_user(client: httpx.Client, login: str, *, activate: bool = True, password: str | None = PASSWORD,
             **profile: str) -> httpx.Response:
    body: dict = {"profile": {"firstName": "Ada", "lastName": "Lovelace", "email": login, "login": login, **profile}}
    if password:
        body["credentials"] = {"password": {"value": password}}
    return client.post("/api/v1/users", params={"activate": str(activate).lower()}, json=body)


def assert_okta_error(response: Any, status: int, code: str) -> dict:  # httpx or TestClient response
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert body["errorCode"] == code and body["errorLink"] == code
    assert body["errorId"].startswith("oae")
    return body


# --- auth and errors ------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "SSWS wrong-token", "Bearer {token}", "SSWS", "ssws {token}"])
def test_bad_or_missing_token_is_401_E0000011(sandbox, header):
    token = sandbox.connections["officeflow_okta"]["password"]
    headers = {"Authorization": header.format(token=token)} if header else {}
    response = httpx.get(f"{sandbox.url}/okta/api/v1/users", headers=headers)
    body = assert_okta_error(response, 401, "E0000011")
    assert body["errorSummary"] == "Invalid token provided" and body["errorCauses"] == []
    assert response.headers["X-Rate-Limit-Limit"]


def test_rate_limit_headers_on_every_response(org):
    first = org.get("/api/v1/users")
    second = org.get("/api/v1/users")
    assert int(second.headers["X-Rate-Limit-Remaining"]) == int(first.headers["X-Rate-Limit-Remaining"]) - 1
    assert int(first.headers["X-Rate-Limit-Reset"]) > time.time()
    assert org.get("/api/v1/users/nobody@officeflow.test").headers["X-Rate-Limit-Limit"]


def test_missing_required_profile_fields(org):
    response = org.post("/api/v1/users", json={"profile": {"login": "x@officeflow.test", "email": "x@officeflow.test"}})
    body = assert_okta_error(response, 400, "E0000001")
    assert body["errorSummary"].startswith("Api validation failed:")
    assert {c["errorSummary"] for c in body["errorCauses"]} == {"firstName: The field cannot be left blank",
                                                               "lastName: The field cannot be left blank"}


def test_malformed_email_unknown_attribute_and_bad_body(org):
    body = assert_okta_error(new_user(org, "not-an-email"), 400, "E0000001")
    causes = [c["errorSummary"] for c in body["errorCauses"]]
    assert "login: Username must be in the form of an email address" in causes
    assert "email: Does not match required pattern" in causes
    body = assert_okta_error(new_user(org, "a@officeflow.test", shoeSize="44"), 400, "E0000001")
    assert "not defined in profile" in body["errorCauses"][0]["errorSummary"]
    response = org.post("/api/v1/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_okta_error(response, 400, "E0000003")


def test_password_policy(org):
    body = assert_okta_error(new_user(org, "ada@officeflow.test", password="short"), 400, "E0000001")
    assert body["errorSummary"] == "Api validation failed: password"
    assert_okta_error(new_user(org, "ada@officeflow.test", password="Lovelace-ada-2024"), 400, "E0000001")


def test_duplicate_login_is_E0000001_case_insensitively(org):
    assert new_user(org, "ada@officeflow.test").status_code == 200
    body = assert_okta_error(new_user(org, "ADA@OfficeFlow.test"), 400, "E0000001")
    assert body["errorSummary"] == "Api validation failed: login"
    assert body["errorCauses"] == [
        {"errorSummary": "login: An object with this field already exists in the current organization"}]


def test_get_by_id_login_and_404_shape(org):
    user = new_user(org, "ada@officeflow.test", department="Engineering").json()
    assert user["status"] == "ACTIVE" and user["id"].startswith("00u") and len(user["id"]) == 20
    assert "value" not in user["credentials"]["password"]  # passwords are never returned
    assert org.get(f"/api/v1/users/{user['id']}").json()["profile"]["department"] == "Engineering"
    assert org.get("/api/v1/users/Ada@OFFICEFLOW.test").json()["id"] == user["id"]
    assert org.get("/api/v1/users/ada").json()["id"] == user["id"]  # login short name
    body = assert_okta_error(org.get("/api/v1/users/nobody@officeflow.test"), 404, "E0000007")
    assert body["errorSummary"] == "Not found: Resource not found: nobody@officeflow.test (User)"


# --- listing -------------------------------------------------------------------------------------

def test_paging_follows_link_next_with_after_cursor(org):
    created = {new_user(org, f"user{i}@officeflow.test").json()["id"] for i in range(5)}
    seen, pages = [], 0
    response = org.get("/api/v1/users", params={"limit": 2})
    while True:
        pages += 1
        assert len(response.json()) <= 2
        assert 'rel="self"' in response.headers["link"]
        seen += [u["id"] for u in response.json()]
        nxt = response.links.get("next")
        if not nxt:
            break
        assert "after=" in nxt["url"] and nxt["url"].startswith(str(org.base_url).rstrip("/") + "/api/v1/users")
        response = org.get(nxt["url"])
    assert pages == 3 and len(seen) == 5 and set(seen) == created


def test_search_q_and_deprovisioned_visibility(org):
    ada = new_user(org, "ada@officeflow.test").json()
    new_user(org, "grace@officeflow.test", firstName="Grace", lastName="Hopper")
    found = org.get("/api/v1/users", params={"search": 'profile.login eq "ADA@officeflow.test"'}).json()
    assert [u["id"] for u in found] == [ada["id"]]
    assert [u["profile"]["login"] for u in org.get("/api/v1/users", params={"q": "grac"}).json()] == \
        ["grace@officeflow.test"]
    assert org.post(f"/api/v1/users/{ada['id']}/lifecycle/deactivate").status_code == 200
    assert ada["id"] not in [u["id"] for u in org.get("/api/v1/users").json()]  # a plain list hides them
    assert [u["status"] for u in org.get("/api/v1/users", params={"search": 'status eq "DEPROVISIONED"'}).json()] \
        == ["DEPROVISIONED"]
    assert_okta_error(org.get("/api/v1/users", params={"search": "profile.login = ada"}), 400, "E0000031")


# --- updates and lifecycle ---------------------------------------------------------------------------

def test_partial_update_and_replace(org):
    user = new_user(org, "ada@officeflow.test", department="Engineering", title="Engineer").json()
    updated = org.post(f"/api/v1/users/{user['id']}", json={"profile": {"department": "Sales"}}).json()
    assert updated["profile"]["department"] == "Sales" and updated["profile"]["title"] == "Engineer"
    replaced = org.put(f"/api/v1/users/{user['id']}", json={"profile": {
        "firstName": "Ada", "lastName": "King", "email": "ada@officeflow.test", "login": "ada@officeflow.test"}}).json()
    assert replaced["profile"]["lastName"] == "King" and "title" not in replaced["profile"]
    body = assert_okta_error(org.put(f"/api/v1/users/{user['id']}", json={"profile": {"login": "ada@officeflow.test"}}),
                             400, "E0000001")
    assert "email: The field cannot be left blank" in [c["errorSummary"] for c in body["errorCauses"]]


def test_lifecycle_status_rules(org):
    staged = new_user(org, "staged@officeflow.test", activate=False).json()
    assert staged["status"] == "STAGED"
    assert org.post(f"/api/v1/users/{staged['id']}/lifecycle/activate", params={"sendEmail": "false"}) \
        .json()["activationToken"]
    assert org.get(f"/api/v1/users/{staged['id']}").json()["status"] == "ACTIVE"
    assert_okta_error(org.post(f"/api/v1/users/{staged['id']}/lifecycle/activate"), 403, "E0000016")
    assert new_user(org, "nopass@officeflow.test", password=None).json()["status"] == "PROVISIONED"

    uid = new_user(org, "ada@officeflow.test").json()["id"]
    assert_okta_error(org.post(f"/api/v1/users/{uid}/lifecycle/unsuspend"), 400, "E0000001")
    assert org.post(f"/api/v1/users/{uid}/lifecycle/suspend").status_code == 200
    assert org.get(f"/api/v1/users/{uid}").json()["status"] == "SUSPENDED"
    assert_okta_error(org.post(f"/api/v1/users/{uid}/lifecycle/suspend"), 400, "E0000001")  # only from ACTIVE
    assert org.post(f"/api/v1/users/{uid}/lifecycle/unsuspend").status_code == 200
    assert org.post(f"/api/v1/users/{uid}/lifecycle/deactivate").status_code == 200
    assert org.get(f"/api/v1/users/{uid}").json()["status"] == "DEPROVISIONED"
    assert_okta_error(org.post(f"/api/v1/users/{uid}/lifecycle/deactivate"), 403, "E0000038")  # not idempotent
    assert_okta_error(org.post(f"/api/v1/users/{uid}/lifecycle/suspend"), 400, "E0000001")
    assert_okta_error(org.post(f"/api/v1/users/{uid}", json={"profile": {"title": "x"}}), 403, "E0000038")


def test_delete_is_two_step_and_sessions_are_cleared(sandbox, org):
    uid = new_user(org, "ada@officeflow.test").json()["id"]
    assert org.delete(f"/api/v1/users/{uid}/sessions", params={"oauthTokens": "true"}).status_code == 204
    assert sandbox.state("okta")["session_revocations"][-1]["userId"] == uid
    assert org.delete(f"/api/v1/users/{uid}").status_code == 204
    assert org.get(f"/api/v1/users/{uid}").json()["status"] == "DEPROVISIONED"  # first DELETE deactivates
    assert org.delete(f"/api/v1/users/{uid}").status_code == 204
    assert_okta_error(org.get(f"/api/v1/users/{uid}"), 404, "E0000007")
    assert_okta_error(org.delete(f"/api/v1/users/{uid}"), 404, "E0000007")
    assert uid not in sandbox.state("okta")["users"]


# --- groups --------------------------------------------------------------------------------------

def test_groups_are_seeded_from_the_mapping_with_stable_ids(sandbox, org):
    wanted = load_group_mapping(DEFAULT_GROUPS_FILE).of("okta").managed()
    groups = {g["profile"]["name"]: g for g in org.get("/api/v1/groups").json()}
    assert wanted <= set(groups)
    assert all(groups[name]["type"] == "OKTA_GROUP" for name in wanted)
    assert groups["Everyone"]["type"] == "BUILT_IN"
    ids = {name: groups[name]["id"] for name in wanted}
    sandbox.reset("okta")
    assert {g["profile"]["name"]: g["id"] for g in org.get("/api/v1/groups").json() if g["profile"]["name"] in wanted} \
        == ids
    names = [g["profile"]["name"] for g in org.get("/api/v1/groups", params={"q": "everyone"}).json()]
    assert sorted(names) == ["Everyone", "Everyone at OfficeFlow"]
    found = org.get("/api/v1/groups", params={"search": 'profile.name eq "Engineering"'}).json()
    assert [g["id"] for g in found] == [ids["Engineering"]]
    assert_okta_error(org.get("/api/v1/groups/00gnope"), 404, "E0000007")


def test_membership_put_delete_idempotent_and_everyone_is_fixed(sandbox, org):
    uid = new_user(org, "ada@officeflow.test").json()["id"]
    gid = org.get("/api/v1/groups", params={"search": 'profile.name eq "Sales"'}).json()[0]["id"]
    everyone = org.get("/api/v1/groups", params={"search": 'profile.name eq "Everyone"'}).json()[0]["id"]
    assert [g["id"] for g in org.get(f"/api/v1/users/{uid}/groups").json()] == [everyone]
    for _ in range(2):
        assert org.put(f"/api/v1/groups/{gid}/users/{uid}").status_code == 204
    assert sandbox.state("okta")["memberships"][gid] == [uid]
    assert {g["id"] for g in org.get(f"/api/v1/users/{uid}/groups").json()} == {everyone, gid}
    assert [u["id"] for u in org.get(f"/api/v1/groups/{gid}/users").json()] == [uid]
    for _ in range(2):
        assert org.delete(f"/api/v1/groups/{gid}/users/{uid}").status_code == 204
    assert sandbox.state("okta")["memberships"][gid] == []
    assert_okta_error(org.delete(f"/api/v1/groups/{everyone}/users/{uid}"), 400, "E0000001")
    assert_okta_error(org.put(f"/api/v1/groups/{gid}/users/00unope"), 404, "E0000007")


# --- faults and rate limits ------------------------------------------------------------------------

def test_injected_429_has_okta_shape_and_retry_headers(sandbox, org):
    sandbox.fault("okta", status=429, retry_after=2, method="POST", path="/api/v1/users", count=1)
    response = new_user(org, "ada@officeflow.test")
    body = assert_okta_error(response, 429, "E0000047")
    assert body["errorSummary"] == "API call exceeded rate limit due to too many requests."
    assert response.headers["Retry-After"] == "2"
    assert int(response.headers["X-Rate-Limit-Reset"]) >= int(time.time()) + 1
    assert sandbox.state("okta")["users"] == {}  # not applied
    assert new_user(org, "ada@officeflow.test").status_code == 200  # the rule is spent


def test_exceeding_the_per_minute_limit_is_a_real_E0000047():
    app = create_app(Credentials(okta_tokens=["t0ken"], extra={"okta_rate_limit_per_minute": 3}),
                     services=[okta.service])
    with TestClient(app) as client:
        headers = {"Authorization": "SSWS t0ken"}
        remaining = [client.get("/okta/api/v1/users", headers=headers).headers["X-Rate-Limit-Remaining"]
                     for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        response = client.get("/okta/api/v1/users", headers=headers)
        assert_okta_error(response, 429, "E0000047")
        assert response.headers["X-Rate-Limit-Remaining"] == "0"
        assert 0 < int(response.headers["X-Rate-Limit-Reset"]) - time.time() <= 61
        # Another bucket has its own budget.
        assert client.get("/okta/api/v1/groups", headers=headers).status_code == 200
