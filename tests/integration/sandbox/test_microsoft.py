"""The Microsoft emulation (sandbox/microsoft/) over real HTTP: the identity platform token
endpoint (AAD error shape) and Graph users/groups (Graph error shape, paging, memberships, faults)."""

from __future__ import annotations

import time

import httpx
import pytest

from include.officeflow.identity import DEFAULT_GROUPS_FILE, load_group_mapping
from sandbox.microsoft.common import GRAPH_SCOPE
from sandbox.microsoft.directory import MEMBER_EXISTS, group_id_for
from tests.harness.sandbox_clients import PASSWORD, conn_of, request_token, token_url


@pytest.fixture
def graph(sandbox):
    response = request_token(sandbox)
    assert response.status_code == 200, response.text
    with httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0",
                      headers={"Authorization": f"Bearer {response.json()['access_token']}"}, timeout=10) as client:
        yield client


def new_user(graph: httpx.Client, upn: str, **fields) -> httpx.Response:
    body = {"accountEnabled": True, "displayName": "Ada Lovelace", "mailNickname": upn.split("@")[0],
            "userPrincipalName": upn, "passwordProfile": {"password": PASSWORD}, **fields}
    return graph.post("/users", json={k: v for k, v in body.items() if v is not None})


def assert_graph_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return str(error["message"])


def assert_aad_error(response: httpx.Response, status: int, error: str, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    return str(body["error_description"])


# --- identity platform -------------------------------------------------------------------------------

def test_client_credentials_token(sandbox):
    response = request_token(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]


def test_client_secret_basic_is_accepted(sandbox):
    conn = conn_of(sandbox)
    response = httpx.post(token_url(sandbox), auth=(conn["login"], conn["password"]),
                          data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE})
    assert response.status_code == 200, response.text


def test_tenant_may_be_the_verified_domain(sandbox):
    assert request_token(sandbox, tenant="OfficeFlow.test").status_code == 200


def test_wrong_secret_is_401_invalid_client(sandbox):
    text = assert_aad_error(request_token(sandbox, client_secret="nope"), 401, "invalid_client", 7000215)
    assert "Invalid client secret provided" in text


def test_unknown_client_is_400_unauthorized_client(sandbox):
    text = assert_aad_error(request_token(sandbox, client_id="00000000-1111-2222-3333-444444444444"), 400,
                            "unauthorized_client", 700016)
    assert "was not found in the directory" in text


def test_unknown_tenant_is_400_AADSTS90002(sandbox):
    assert_aad_error(request_token(sandbox, tenant="some-other-tenant"), 400, "invalid_request", 90002)


@pytest.mark.parametrize(("overrides", "status", "error", "code"), [
    ({"scope": None}, 400, "invalid_request", 90014),
    ({"scope": "User.Read"}, 400, "invalid_scope", 1002012),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"client_secret": None}, 401, "invalid_client", 7000216),
])
def test_token_request_errors(sandbox, overrides, status, error, code):
    assert_aad_error(request_token(sandbox, **overrides), status, error, code)


def test_openid_configuration_names_the_token_endpoint(sandbox):
    tenant = conn_of(sandbox)["extra"]["tenant_id"]
    response = httpx.get(f"{sandbox.url}/microsoft/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == token_url(sandbox)


def test_tls_listener_serves_the_token_endpoint_at_the_root(sandbox):
    conn = conn_of(sandbox)
    assert conn["extra"]["authority"] == sandbox.tls_url and conn["extra"]["verify"] == str(sandbox.ca_file)
    form = {"grant_type": "client_credentials", "client_id": conn["login"], "client_secret": conn["password"],
            "scope": GRAPH_SCOPE}
    with httpx.Client(verify=sandbox.tls_context(), timeout=10) as client:
        response = client.post(f"{sandbox.tls_url}/{conn['extra']['tenant_id']}/oauth2/v2.0/token", data=form)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        discovery = client.get(f"{sandbox.tls_url}/{conn['extra']['tenant_id']}/v2.0/.well-known/openid-configuration")
        assert discovery.json()["token_endpoint"] == response.url
        # same app, same state: a user made over plain http is there over TLS, links stay on the TLS root
        with httpx.Client(base_url=f"{sandbox.url}/microsoft/v1.0", headers={"Authorization": f"Bearer {token}"},
                          timeout=10) as plain:
            for upn in ("ada@officeflow.test", "bob@officeflow.test"):
                assert new_user(plain, upn).status_code == 201
        page = client.get(f"{sandbox.tls_url}/v1.0/users", params={"$top": "1"},
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert [u["userPrincipalName"] for u in page["value"]] == ["ada@officeflow.test"]
        assert page["@odata.nextLink"].startswith(f"{sandbox.tls_url}/v1.0/users?")
        assert client.get(f"{sandbox.tls_url}/_sandbox/health").status_code == 200  # the rest as on http
    assert [r["path"] for r in sandbox.requests("microsoft")][-1] == "/v1.0/users"


def test_tls_listener_refuses_an_untrusted_client(sandbox):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{sandbox.tls_url}/_sandbox/health", timeout=10)  # the system CAs do not know the sandbox's
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{sandbox.tls_port}/_sandbox/health", timeout=10)  # no plain http there


# --- Graph auth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "message"), [
    (None, "Access token is empty."),
    ("Bearer sbx.not-a-token", "Access token validation failure. Invalid audience."),
    ("Basic abc", "Access token is empty."),
])
def test_graph_without_a_valid_token_is_401(sandbox, header, message):
    response = httpx.get(f"{sandbox.url}/microsoft/v1.0/users", headers={"Authorization": header} if header else {})
    assert assert_graph_error(response, 401, "InvalidAuthenticationToken") == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


# --- users ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["accountEnabled", "displayName", "mailNickname", "passwordProfile",
                                     "userPrincipalName"])
def test_create_user_requires_each_property(graph, missing):
    body = {"accountEnabled": True, "displayName": "Ada", "mailNickname": "ada",
            "userPrincipalName": "ada@officeflow.test", "passwordProfile": {"password": PASSWORD}}
    del body[missing]
    message = assert_graph_error(graph.post("/users", json=body), 400, "Request_BadRequest")
    assert message == f"Property {missing} value is required but is empty or missing."


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"passwordProfile": {"forceChangePasswordNextSignIn": True}}, "passwordProfile.password"),
    ({"passwordProfile": {"password": "weak"}}, "password complexity"),
    ({"userPrincipalName": "ada@elsewhere.example"}, "verified domain names"),
    ({"mailNickname": "ada lovelace"}, "'mailNickname'"),
    ({"favouriteColour": "blue"}, "'favouriteColour' does not exist"),
])
def test_create_user_validation(graph, fields, fragment):
    response = new_user(graph, "ada@officeflow.test", **fields)
    assert fragment in assert_graph_error(response, 400, "Request_BadRequest")


def test_create_then_get_by_id_and_by_upn_case_insensitively(graph, sandbox):
    response = new_user(graph, "ada@officeflow.test", department="Engineering")
    assert response.status_code == 201
    created = response.json()
    assert response.headers["Location"].endswith(f"/users/{created['id']}")
    assert "accountEnabled" not in created  # not in Graph's default representation
    by_upn = graph.get("/users/ADA@OfficeFlow.test").json()
    assert by_upn["id"] == created["id"] and "department" not in by_upn
    selected = graph.get(f"/users/{created['id']}", params={"$select": "accountEnabled,department"}).json()
    assert selected["accountEnabled"] is True and selected["department"] == "Engineering"
    stored = sandbox.state("microsoft")["users"][created["id"]]
    assert stored["userPrincipalName"] == "ada@officeflow.test"
    assert PASSWORD not in str(stored)  # passwords are never kept


def test_existing_upn_is_400_another_object(graph):
    assert new_user(graph, "ada@officeflow.test").status_code == 201
    message = assert_graph_error(new_user(graph, "Ada@officeflow.TEST"), 400, "Request_BadRequest")
    assert message == "Another object with the same value for property userPrincipalName already exists."


def test_unknown_user_is_404_resource_not_found(graph):
    message = assert_graph_error(graph.get("/users/nobody@officeflow.test"), 404, "Request_ResourceNotFound")
    assert "nobody@officeflow.test" in message
    assert graph.patch("/users/nobody@officeflow.test", json={"jobTitle": "x"}).status_code == 404
    assert graph.delete("/users/nobody@officeflow.test").status_code == 404


def test_unknown_select_property_is_400(graph):
    response = graph.get("/users", params={"$select": "id,shoeSize"})
    assert "Could not find a property named 'shoeSize'" in assert_graph_error(response, 400, "Request_BadRequest")


def test_list_users_pages_with_next_link(graph):
    upns = [f"user{i}@officeflow.test" for i in range(5)]
    for upn in upns:
        assert new_user(graph, upn).status_code == 201
    seen, url, params, pages = [], "/users", {"$top": "2", "$select": "id,userPrincipalName"}, 0
    while url:
        page = graph.get(url, params=params).json()
        pages += 1
        assert len(page["value"]) <= 2 and all(set(u) == {"id", "userPrincipalName"} for u in page["value"])
        seen += [u["userPrincipalName"] for u in page["value"]]
        url, params = page.get("@odata.nextLink"), None
        if url:
            assert "$skiptoken=" in url and "$top=2" in url
    assert pages == 3 and seen == upns


def test_filter_users_by_upn_and_top_limits(graph):
    new_user(graph, "ada@officeflow.test")
    new_user(graph, "bob@officeflow.test")
    found = graph.get("/users", params={"$filter": "userPrincipalName eq 'ADA@officeflow.test'"}).json()["value"]
    assert [u["userPrincipalName"] for u in found] == ["ada@officeflow.test"]
    assert graph.get("/users", params={"$filter": "userPrincipalName eq 'zed@officeflow.test'"}).json()["value"] == []
    assert "between 1 and 999" in assert_graph_error(graph.get("/users", params={"$top": "1000"}), 400,
                                                     "Request_BadRequest")
    unsupported = graph.get("/users", params={"$filter": "shoeSize eq '9'"})
    assert_graph_error(unsupported, 400, "Request_UnsupportedQuery")


def test_patch_revoke_and_delete(graph, sandbox):
    user_id = new_user(graph, "ada@officeflow.test").json()["id"]
    before = sandbox.state("microsoft")["users"][user_id]["signInSessionsValidFromDateTime"]
    response = graph.patch(f"/users/{user_id}", json={"accountEnabled": False, "department": "Sales",
                                                      "jobTitle": "Account Executive"})
    assert response.status_code == 204 and response.content == b""
    time.sleep(1.1)  # the timestamp has second resolution
    revoked = graph.post(f"/users/{user_id}/revokeSignInSessions")
    assert revoked.status_code == 200 and revoked.json()["value"] is True
    user = sandbox.state("microsoft")["users"][user_id]
    assert (user["accountEnabled"], user["department"], user["jobTitle"]) == (False, "Sales", "Account Executive")
    assert user["signInSessionsValidFromDateTime"] > before
    assert graph.delete(f"/users/{user_id}").status_code == 204
    assert graph.get(f"/users/{user_id}").status_code == 404
    assert user_id in sandbox.state("microsoft")["deletedItems"]


# --- groups --------------------------------------------------------------------------------------------

def test_mapped_groups_are_seeded_with_stable_ids(graph):
    names = load_group_mapping(DEFAULT_GROUPS_FILE).of("microsoft").managed()
    groups = graph.get("/groups").json()["value"]
    assert {g["displayName"] for g in groups} == names
    assert all(g["id"] == group_id_for(g["displayName"]) for g in groups)
    found = graph.get("/groups", params={"$filter": "displayName eq 'all staff'"}).json()["value"]
    assert [g["displayName"] for g in found] == ["All Staff"]
    several = graph.get("/groups", params={"$filter": "displayName in ('Sales', 'Managers', 'Nope')"}).json()
    assert sorted(g["displayName"] for g in several["value"]) == ["Managers", "Sales"]


def test_membership_add_list_remove(graph, sandbox):
    user_id = new_user(graph, "ada@officeflow.test").json()["id"]
    group_ids = [group_id_for(n) for n in ("All Staff", "Engineering", "Developers")]
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"}
    for group_id in group_ids:
        assert graph.post(f"/groups/{group_id}/members/$ref", json=ref).status_code == 204
    again = graph.post(f"/groups/{group_ids[0]}/members/$ref", json=ref)
    assert assert_graph_error(again, 400, "Request_BadRequest") == MEMBER_EXISTS
    # memberOf pages like every Graph collection
    seen, url, params = [], f"/users/{user_id}/memberOf", {"$top": "2"}
    while url:
        page = graph.get(url, params=params).json()
        assert all(item["@odata.type"] == "#microsoft.graph.group" for item in page["value"])
        seen += [item["id"] for item in page["value"]]
        url, params = page.get("@odata.nextLink"), None
    assert sorted(seen) == sorted(group_ids)
    assert graph.delete(f"/groups/{group_ids[1]}/members/{user_id}/$ref").status_code == 204
    assert_graph_error(graph.delete(f"/groups/{group_ids[1]}/members/{user_id}/$ref"), 404,
                       "Request_ResourceNotFound")
    groups = sandbox.state("microsoft")["groups"]
    assert [user_id in groups[g]["members"] for g in group_ids] == [True, False, True]


def test_member_reference_must_name_a_directory_object(graph):
    response = graph.post(f"/groups/{group_id_for('Sales')}/members/$ref", json={"@odata.id": "nonsense"})
    assert_graph_error(response, 400, "Request_BadRequest")
    missing = graph.post(f"/groups/{group_id_for('Sales')}/members/$ref",
                         json={"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/0000"})
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


# --- faults --------------------------------------------------------------------------------------------

def test_injected_429_has_retry_after_and_graph_shape(graph, sandbox):
    sandbox.fault("microsoft", status=429, retry_after=2, method="GET", path="/v1.0/users")
    throttled = graph.get("/users")
    assert_graph_error(throttled, 429, "TooManyRequests")
    assert throttled.headers["Retry-After"] == "2"
    assert graph.get("/users").status_code == 200
    assert [r["status"] for r in sandbox.requests("microsoft") if r["path"] == "/v1.0/users"] == [429, 200]
