"""The Google sandbox (sandbox/google/) over HTTP: OAuth JWT grant, Directory shapes, paging.

These speak raw HTTP (httpx + PyJWT) to check what the client library would see; the operator tests
(tests/integration/operators/test_identity_google.py) drive the same sandbox through google-api-python-client.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.google.common import SCOPE
from tests.harness.sandbox_clients import ADMIN, access_token, token_request

DIRECTORY = "/google/admin/directory/v1"
EVERYONE = "everyone@officeflow.test"


@pytest.fixture
def api(sandbox) -> httpx.Client:
    """An httpx client with an admin's Directory token."""
    return httpx.Client(base_url=sandbox.url + DIRECTORY, timeout=10,
                        headers={"Authorization": f"Bearer {access_token(sandbox)}"})


def new_user(api: httpx.Client, email: str, **extra: Any) -> dict[str, Any]:
    body = {"primaryEmail": email, "name": {"givenName": "Test", "familyName": email.split("@")[0].title()},
            "password": "Correct-Horse-9", **extra}
    response = api.post("/users", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def google_error(response: httpx.Response, status: int, reason: str) -> str:
    """Assert Google's error shape; return its message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["errors"][0]["reason"] == reason
    assert error["errors"][0]["domain"] in ("global", "usageLimits")
    assert error["errors"][0]["message"] == error["message"]
    return str(error["message"])


# --- OAuth token endpoint ----------------------------------------------------------------------------

def test_token_endpoint_grants_a_bearer_token(sandbox):
    response = token_request(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]


def _other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("overrides", "status", "error", "description"), [
    ({"key": "other"}, 400, "invalid_grant", "Invalid JWT Signature."),
    ({"iss": "stranger@elsewhere.iam.gserviceaccount.com"}, 400, "invalid_grant", "account not found"),
    ({"aud": "https://example.com/token"}, 400, "invalid_grant", "Failed audience check"),
    ({"iat": -7200, "exp": -3600}, 400, "invalid_grant", "short-lived"),  # seconds from when the test runs
    ({"exp": 7200}, 400, "invalid_grant", "short-lived"),
    ({"scope": None}, 400, "invalid_scope", "Invalid OAuth scope"),
    ({"sub": "nobody@officeflow.test"}, 400, "invalid_grant", "Invalid email or User ID"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type", "Invalid grant_type"),
])
def test_token_endpoint_refuses_bad_assertions_like_google(sandbox, overrides, status, error, description):
    if overrides.get("key") == "other":
        overrides = {**overrides, "key": _other_key()}
    # Times are relative to now, not to collection: a long suite reaches this test an hour after it was collected.
    overrides = {name: int(time.time()) + value if name in ("iat", "exp") else value
                 for name, value in overrides.items()}
    response = token_request(sandbox, **overrides)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert description in response.json()["error_description"]


# --- auth on Directory calls -------------------------------------------------------------------------

def test_directory_needs_a_valid_token(sandbox):
    missing = sandbox.client.get(f"{DIRECTORY}/users/{ADMIN}")
    assert "missing required authentication credential" in google_error(missing, 401, "required")
    bogus = sandbox.client.get(f"{DIRECTORY}/users/{ADMIN}", headers={"Authorization": "Bearer sbx.forged"})
    assert "invalid authentication credentials" in google_error(bogus, 401, "authError")
    assert bogus.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "invalid_token" in bogus.headers["WWW-Authenticate"]


def test_directory_needs_an_admin_subject_and_the_scope(sandbox, api):
    new_user(api, "plain@officeflow.test")
    no_subject = access_token(sandbox, sub=None)
    response = sandbox.client.get(f"{DIRECTORY}/users/{ADMIN}", headers={"Authorization": f"Bearer {no_subject}"})
    assert google_error(response, 403, "forbidden") == "Not Authorized to access this resource/api"
    not_admin = access_token(sandbox, sub="plain@officeflow.test")
    response = sandbox.client.get(f"{DIRECTORY}/users/{ADMIN}", headers={"Authorization": f"Bearer {not_admin}"})
    google_error(response, 403, "forbidden")
    groups_only = access_token(sandbox, scope=f"{SCOPE}admin.directory.group")
    response = sandbox.client.get(f"{DIRECTORY}/users/{ADMIN}", headers={"Authorization": f"Bearer {groups_only}"})
    assert "insufficient authentication scopes" in google_error(response, 403, "insufficientPermissions")
    response = sandbox.client.get(f"{DIRECTORY}/groups/{EVERYONE}", headers={"Authorization": f"Bearer {groups_only}"})
    assert response.status_code == 200


# --- users ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("drop", "message"), [
    ("primaryEmail", "Missing required field: primaryEmail"),
    ("givenName", "Missing required field: name.givenName"),
    ("familyName", "Missing required field: name.familyName"),
    ("name", "Missing required field: name"),
    ("password", "Missing required field: password"),
])
def test_users_insert_required_fields(sandbox, api, drop, message):
    body: dict[str, Any] = {"primaryEmail": "grace@officeflow.test", "password": "Correct-Horse-9",
                            "name": {"givenName": "Grace", "familyName": "Hopper"}}
    if drop in ("givenName", "familyName"):
        del body["name"][drop]
    else:
        del body[drop]
    assert google_error(api.post("/users", json=body), 400, "required") == message
    assert "grace@officeflow.test" not in {u["primaryEmail"] for u in sandbox.state("google")["users"].values()}


def test_users_insert_invalid_values_and_foreign_domain(api):
    body = {"primaryEmail": "grace@officeflow.test", "password": "Correct-Horse-9",
            "name": {"givenName": "Grace", "familyName": "Hopper"}}
    assert google_error(api.post("/users", json={**body, "primaryEmail": "not-an-email"}), 400,
                        "invalid") == "Invalid Input: primary_user_email"
    assert google_error(api.post("/users", json={**body, "password": "short"}), 400, "invalid") == "Invalid Password"
    bad_name = {**body, "name": {"givenName": "Grace", "familyName": "<b>"}}
    assert google_error(api.post("/users", json=bad_name), 400, "invalid") == "Invalid Given/Family Name: FamilyName"
    foreign = api.post("/users", json={**body, "primaryEmail": "grace@gmail.com"})
    google_error(foreign, 403, "forbidden")


def test_users_duplicate_get_case_insensitive_and_not_found(sandbox, api):
    user = new_user(api, "grace@officeflow.test")
    assert user["kind"] == "admin#directory#user" and user["id"].isdigit() and len(user["id"]) == 21
    assert "password" not in user and user["suspended"] is False
    duplicate = api.post("/users", json={"primaryEmail": "Grace@OfficeFlow.test", "password": "Correct-Horse-9",
                                         "name": {"givenName": "G", "familyName": "H"}})
    assert google_error(duplicate, 409, "duplicate") == "Entity already exists."
    assert api.get("/users/GRACE@officeflow.test").json()["id"] == user["id"]
    assert api.get(f"/users/{user['id']}").json()["primaryEmail"] == "grace@officeflow.test"
    missing = api.get("/users/nobody@officeflow.test")
    assert google_error(missing, 404, "notFound") == "Resource Not Found: userKey"
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    state = sandbox.state("google")
    assert [u["primaryEmail"] for u in state["users"].values()].count("grace@officeflow.test") == 1
    assert state["password_hashes"][user["id"]] != "Correct-Horse-9"  # only a hash is kept


def test_users_list_pages_and_queries(api):
    for n in range(5):
        new_user(api, f"pager{n}@officeflow.test")
    assert google_error(api.get("/users"), 400, "badRequest") == "Bad Request"
    google_error(api.get("/users", params={"customer": "my_customer", "maxResults": 501}), 400, "invalid")
    seen, token, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"customer": "my_customer", "maxResults": 2, "query": "email:pager*"}
        if token:
            params["pageToken"] = token
        body = api.get("/users", params=params).json()
        assert body["kind"] == "admin#directory#users"
        seen += [u["primaryEmail"] for u in body["users"]]
        pages += 1
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    assert seen == [f"pager{n}@officeflow.test" for n in range(5)]
    exact = api.get("/users", params={"domain": "officeflow.test", "query": "email:'PAGER3@officeflow.test'"})
    assert [u["primaryEmail"] for u in exact.json()["users"]] == ["pager3@officeflow.test"]
    none = api.get("/users", params={"customer": "my_customer", "query": "email:ghost@officeflow.test"}).json()
    assert "users" not in none and "nextPageToken" not in none
    google_error(api.get("/users", params={"customer": "my_customer", "pageToken": "garbage"}), 400, "invalid")


def test_users_patch_suspend_sign_out_and_delete(sandbox, api, monkeypatch):
    user = new_user(api, "leaver@officeflow.test")
    time.sleep(0.6)  # past "User creation is not complete."
    patched = api.patch(f"/users/{user['id']}", json={"suspended": True,
                                                      "organizations": [{"department": "Sales", "primary": True}]})
    assert patched.status_code == 200
    assert patched.json()["suspended"] is True and patched.json()["suspensionReason"] == "ADMIN"
    assert patched.json()["organizations"][0]["department"] == "Sales"
    assert api.post(f"/users/{user['id']}/signOut").status_code == 204
    everyone = api.get(f"/groups/{EVERYONE}").json()
    assert api.post(f"/groups/{everyone['id']}/members", json={"email": user["primaryEmail"]}).status_code == 200
    assert api.delete(f"/users/{user['id']}").status_code == 204
    state = sandbox.state("google")
    assert user["id"] not in state["users"] and user["id"] not in state["members"][everyone["id"]]
    assert state["sign_outs"][user["id"]] == 1
    google_error(api.delete(f"/users/{user['id']}"), 404, "notFound")


def test_new_user_is_not_complete_for_a_moment(api):
    everyone = api.get(f"/groups/{EVERYONE}").json()
    user = new_user(api, "fresh@officeflow.test")
    early = api.post(f"/groups/{everyone['id']}/members", json={"email": user["primaryEmail"]})
    assert google_error(early, 412, "conditionNotMet") == "User creation is not complete."
    assert early.json()["error"]["status"] == "FAILED_PRECONDITION"
    google_error(api.patch(f"/users/{user['id']}", json={"suspended": True}), 412, "conditionNotMet")
    time.sleep(0.6)
    assert api.post(f"/groups/{everyone['id']}/members", json={"email": user["primaryEmail"]}).status_code == 200


# --- groups and members --------------------------------------------------------------------------------

def test_seeded_groups_have_stable_ids(sandbox, api):
    first = api.get(f"/groups/{EVERYONE}").json()
    assert first["kind"] == "admin#directory#group" and first["email"] == EVERYONE
    sandbox.reset("google")
    assert api.get("/groups/Everyone@OfficeFlow.test").json()["id"] == first["id"]
    assert api.get(f"/groups/{first['id']}").json()["email"] == EVERYONE
    assert google_error(api.get("/groups/ghosts@officeflow.test"), 404, "notFound") == "Resource Not Found: groupKey"


def test_members_insert_duplicate_delete_and_list(api):
    user = new_user(api, "member@officeflow.test")
    time.sleep(0.6)
    everyone = api.get(f"/groups/{EVERYONE}").json()
    members = f"/groups/{everyone['id']}/members"
    assert google_error(api.post(members, json={"role": "MEMBER"}), 400, "required") == \
        "Missing required field: memberKey"
    added = api.post(members, json={"email": "MEMBER@officeflow.test", "role": "MEMBER"})
    assert added.status_code == 200
    assert added.json()["id"] == user["id"] and added.json()["type"] == "USER"
    again = api.post(members, json={"id": user["id"]})
    assert google_error(again, 409, "duplicate") == "Member already exists."
    google_error(api.post(members, json={"email": "ghost@officeflow.test"}), 404, "notFound")
    assert api.get(f"/groups/{everyone['id']}").json()["directMembersCount"] == "1"
    listed = api.get(members).json()
    assert [m["email"] for m in listed["members"]] == ["member@officeflow.test"]
    assert api.get(f"/groups/{everyone['id']}/hasMember/{user['id']}").json() == {"isMember": True}
    assert api.delete(f"{members}/{user['id']}").status_code == 204
    gone = api.delete(f"{members}/{user['id']}")
    assert google_error(gone, 404, "notFound") == "Resource Not Found: memberKey"
    assert "members" not in api.get(members).json()


def test_groups_list_of_a_user_pages(api):
    user = new_user(api, "joiner@officeflow.test")
    time.sleep(0.6)
    names = ["everyone@officeflow.test", "engineering@officeflow.test", "developers@officeflow.test"]
    for name in names:
        group = api.get(f"/groups/{name}").json()
        assert api.post(f"/groups/{group['id']}/members", json={"email": user["primaryEmail"]}).status_code == 200
    first = api.get("/groups", params={"userKey": user["id"], "maxResults": 2}).json()
    assert first["kind"] == "admin#directory#groups" and len(first["groups"]) == 2
    second = api.get("/groups", params={"userKey": user["id"], "maxResults": 2,
                                        "pageToken": first["nextPageToken"]}).json()
    assert "nextPageToken" not in second
    assert sorted(g["email"] for g in first["groups"] + second["groups"]) == sorted(names)
    everything = api.get("/groups", params={"customer": "my_customer"}).json()["groups"]
    assert {g["email"] for g in everything} >= set(names)
    google_error(api.get("/groups", params={"userKey": "ghost@officeflow.test"}), 404, "notFound")


# --- faults --------------------------------------------------------------------------------------------

def test_injected_429_has_googles_shape_and_retry_after(sandbox, api):
    sandbox.fault("google", status=429, retry_after=1, method="GET", path="/groups/", count=1)
    throttled = api.get(f"/groups/{EVERYONE}")
    assert google_error(throttled, 429, "rateLimitExceeded")
    assert throttled.json()["error"]["errors"][0]["domain"] == "usageLimits"
    assert throttled.headers["Retry-After"] == "1"
    assert api.get(f"/groups/{EVERYONE}").status_code == 200
    statuses = [r["status"] for r in sandbox.requests("google") if r["path"].startswith("/admin/directory/v1/groups")]
    assert statuses == [429, 200]
