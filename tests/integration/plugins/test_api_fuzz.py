"""Schemathesis over every route of the OfficeFlow gateway's OpenAPI document (``/officeflow/api-docs/openapi.json``),
in-process through schemathesis' ASGI transport, on the real PostgreSQL store and Airflow metadata DB.

One test item per operation and caller:

- ``test_anonymous``: no (or a made-up) token. A route that needs a signed-in user answers 401, never 2xx; the
  unsigned delivery and callback routes (``/webhooks/...``, ``/slack/...``, ``/email/...``, ``/calendar/...``)
  answer 4xx; nothing answers 5xx.
- ``test_admin``: Airflow's Admin (every permission, every organization). No 5xx, and every answer conforms to the
  operation's documented responses (status code, content type, body schema, headers); schema-invalid input is
  refused with a 4xx.
- ``test_other_tenant``: path parameters naming acme's objects (an endpoint, event, workflow, document, organization,
  team, member, email template override), ``organization_id`` in the query and the body set to acme, called by a
  member of globex holding every OfficeFlow permission but "All Organizations": never 2xx on acme's objects or for
  a body creating in acme, never 5xx, and no 2xx answer names any of acme's objects.
- ``test_without_the_role``: Airflow's Viewer (no OfficeFlow permission) and the Auditor (read-only) on the routes
  whose permission their role lacks: 403, never 2xx.

Every 4xx in JSON has the gateway's error shape with the correlationId of the ``X-Correlation-ID`` header.
Deterministic (``derandomize``) and bounded (``max_examples`` per caller); docs/gateway.md#fuzzing-the-api.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from include.officeflow import documents
from include.officeflow import email_tracking as tracking
from include.officeflow.auth import organizations
from include.officeflow.auth.permissions import ALL_ORGANIZATIONS, AUDITOR, OFFICEFLOW_ADMIN, ROLE_PERMISSIONS
from plugins.officeflow_gateway.app import create_app
from tests.harness.airflow_tools import api_token
from tests.harness.endpoints import create_endpoint, delivery_url, generic_body, generic_headers
from tests.harness.gateway_checks import assert_error
from tests.harness.settings import SettingsEnv
from tests.harness.store import truncate
from tests.integration.plugins.extra_users import needs

SPEC = "/api-docs/openapi.json"
ACME, GLOBEX = "acme", "globex"
OTHER_TENANT = "fuzz-globex-admin"  # every OfficeFlow permission but "All Organizations", member of globex
TENANT_ADMIN_ROLE = "Tenant Admin"  # as tests/integration/plugins/test_tenant_isolation.py declares it
# Unsigned deliveries and vendor callbacks: verified by signature, token or secret, never by an Airflow JWT.
CALLBACK_PREFIXES = ("/webhooks/", "/slack/", "/email/", "/calendar/google/", "/calendar/microsoft/")

needs({"roles": {TENANT_ADMIN_ROLE: [[action, resource] for action, resource in ROLE_PERMISSIONS[OFFICEFLOW_ADMIN]
                                    if resource != ALL_ORGANIZATIONS]},
       "users": {OTHER_TENANT: TENANT_ADMIN_ROLE}})
pytestmark = pytest.mark.usefixtures("extra_users")



# Examples per operation and caller: the whole file (about 340 tests) stays well under 2 minutes on 2 cores.
ANONYMOUS_EXAMPLES, ADMIN_EXAMPLES, OTHER_TENANT_EXAMPLES, ROLE_EXAMPLES = 3, 6, 3, 2


def fuzz(max_examples: int) -> settings:
    """Deterministic (derandomize, no example database) and bounded."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=max_examples,
                    suppress_health_check=list(HealthCheck))


def fuzz_config(*, security_parameters: bool, coverage: bool) -> SchemathesisConfig:
    """Positive and negative data; the coverage phase (boundary values, and TRACE, which must be 405) for the
    admin only, the others' budget is hypothesis' ``max_examples``."""
    return SchemathesisConfig.from_dict({
        "seed": 20261203,
        "generation": {"mode": "all", "deterministic": True, "with-security-parameters": security_parameters},
        "phases": {"stateful": {"enabled": False},
                   "coverage": {"enabled": coverage, "unexpected-methods": ["trace"]}},
    })


def load_schema(*, security_parameters: bool, coverage: bool = False) -> Any:
    """The app's OpenAPI document (what SPEC serves: test_the_served_document_is_the_fuzzed_one), called in-process
    through schemathesis' ASGI transport. Read without a request: a request would start the dispatcher thread at
    collection, before the store is migrated."""
    schema = schemathesis.openapi.from_dict(APP.openapi(), config=fuzz_config(security_parameters=security_parameters,
                                                                             coverage=coverage))
    schema.app, schema.location = APP, SPEC
    return schema


# Made at import: schemathesis makes one test per operation of the OpenAPI document at collection. The settings
# come from the environment tests/conftest.py set; nothing touches a database before the fixtures.
APP = create_app()
ANONYMOUS = load_schema(security_parameters=True)
ADMIN = load_schema(security_parameters=False, coverage=True)
SIGNED_IN = load_schema(security_parameters=False)


def test_the_served_document_is_the_fuzzed_one(world):
    with TestClient(APP) as client:
        served = client.get(SPEC)
    assert served.status_code == 200 and served.json() == APP.openapi()



# --- the app, its routes' auth, the seeded objects --------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """What an operation asks of its caller: nothing, a signed-in user, or a permission (method, resource)."""

    kind: str  # "public" | "signed-in" | "permission"
    permission: tuple[str, str] | None = None


def _guards(app: FastAPI) -> dict[tuple[str, str], Guard]:
    from plugins.officeflow_gateway import auth

    found: dict[tuple[str, str], Guard] = {}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        guard = Guard("public")
        stack = list(route.dependant.dependencies)
        while stack:
            dependency = stack.pop()
            stack.extend(dependency.dependencies)
            call = dependency.call
            if call is auth.authenticated and guard.kind == "public":
                guard = Guard("signed-in")
            elif getattr(call, "__qualname__", "").startswith("authorized.<locals>"):
                cells = dict(zip(call.__code__.co_freevars, (c.cell_contents for c in call.__closure__ or ()),
                                 strict=True))
                guard = Guard("permission", (cells["method"], cells["resource_name"]))
        for method in route.methods or ():
            found[(method.upper(), route.path)] = guard
    return found


@dataclass
class World:
    app: FastAPI
    guards: dict[tuple[str, str], Guard]
    acme: dict[str, str]  # path parameter name -> one of acme's objects

    def guard(self, case: Any) -> Guard:
        return self.guards[(case.operation.method.upper(), case.operation.path)]


@pytest.fixture(scope="module")
def world(airflow_db, store_url, extra_users, tmp_path_factory) -> Iterator[World]:
    monkeypatch = pytest.MonkeyPatch()
    env = SettingsEnv(monkeypatch)
    env.setenv("OFFICEFLOW_DOCUMENTS_URL", str(tmp_path_factory.mktemp("fuzz-documents")))
    # The vendors' callbacks configured as in production, so fuzz input meets their verification.
    env.setenv("OFFICEFLOW_SLACK_SIGNING_SECRET", "fuzz-slack-signing-secret")
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    env.setenv("OFFICEFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public_key).decode())
    truncate(store_url, "webhook_events", "audit_log", "webhook_endpoints", "outbox", "documents",
             "document_versions", "document_readers", "workflow_versions", "workflows", "email_deliveries",
             "email_suppressions", "email_template_override_versions", "email_template_overrides",
             "team_members", "member_profiles", "teams", "organizations", "user_organizations", cascade=True)
    organizations.set_user(OTHER_TENANT, {GLOBEX}, by="test")
    admin = bearer("admin")
    with TestClient(APP, raise_server_exceptions=False) as client:
        app = APP
        acme: dict[str, str] = {"organization_id": ACME}
        for org in (ACME, GLOBEX):
            assert client.post("/api/v1/organizations", json={"id": org, "name": org.title()},
                               headers=admin).status_code == 201
        endpoint = create_endpoint(client, admin, organization_id=ACME, name="acme HR",
                                   event_types=["employee.created"])
        acme["endpoint_id"] = endpoint["id"]
        body = generic_body(event_type="employee.updated")  # stored as ignored: nothing runs
        delivered = client.post(delivery_url(endpoint), content=body, headers=generic_headers(endpoint["secret"], body))
        assert delivered.status_code == 202, delivered.text
        acme["event_id"] = delivered.json()["event_id"]
        workflow = {"name": "wf_fuzz_acme", "description": "Welcome a contractor", "organization_id": ACME,
                    "trigger": {"type": "manual"}, "params": {"email": {"type": "string", "format": "idn-email"}},
                    "nodes": [{"id": "welcome", "type": "email",
                               "config": {"template": "welcome", "to": "{{ params.email }}"}}]}
        created = client.post("/api/v1/workflows", json=workflow, headers=admin)
        assert created.status_code == 201, created.text
        acme["name"] = workflow["name"]
        acme["document_id"] = documents.store_document(b"%PDF-1 offer", logical_key="hires/1/offer", title="Offer",
                                                       owner="hr", organization_id=ACME,
                                                       readers=["user:it"]).document_id
        acme["principal_type"], acme["principal"] = "user", "it"
        team = client.post(f"/api/v1/organizations/{ACME}/teams", json={"name": "acme platform"}, headers=admin)
        assert team.status_code == 201, team.text
        acme["team_id"] = team.json()["id"]
        acme["address"] = "person-acme@example.com"
        tracking.claim(os.environ["OFFICEFLOW_DB_URL"], key="k-acme", recipient=acme["address"], template="welcome",
                       subject="Hi", provider="smtp", organization_id=ACME)
        tracking.suppress(os.environ["OFFICEFLOW_DB_URL"], acme["address"], reason="bounce", source="ses")
        yield World(app, _guards(app), acme)
    env.undo()
    truncate(store_url, "user_organizations")


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(username)}"}


# --- checks -----------------------------------------------------------------------------------------------------


def error_shape(ctx, response, case) -> None:
    """A 4xx/5xx in JSON is ``{"error": {"message", "code", "correlationId"}}``, the id that of the header."""
    if response.status_code < 400 or "json" not in response.headers.get("content-type", [""])[0]:
        return
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert {"message", "code", "correlationId"} <= set(error), f"not the error shape: {body!r}"
    assert error["message"] and error["code"], body
    assert error["correlationId"] == response.headers["x-correlation-id"][0], body


CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
               negative_data_rejection,
               response_headers_conformance]


def describe(case, response) -> str:
    return f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:300]}"


def other_method(case) -> bool:
    """A probe with a method the operation does not have (schemathesis' coverage phase sends TRACE, PUT...)."""
    return case.method.upper() != case.operation.method.upper()


def refused(response, *statuses: int) -> bool:
    """One of ``statuses``, or the refusal of a body that could not be read at all: FastAPI reads a JSON body
    before it runs the route's dependencies (sign-in, permissions), so undecodable bytes are 400/422 first."""
    if response.status_code in statuses:
        return True
    if response.status_code == 400:
        return json.loads(response.content)["error"]["message"] == "There was an error parsing the body"
    if response.status_code == 422:  # also a NUL in the URL, refused before any route runs (errors.py)
        message = json.loads(response.content)["error"]["message"]
        return message.startswith("body") or "NUL character" in message
    return False


# --- (a) anonymous ----------------------------------------------------------------------------------------------


@ANONYMOUS.parametrize()
@fuzz(ANONYMOUS_EXAMPLES)
def test_anonymous(world, case):
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "cookie")} | (
        {"Authorization": "Bearer not-a-jwt"} if zlib.crc32(case.formatted_path.encode()) % 2 else {})
    response = case.call(headers=case.headers)
    case.validate_response(response, checks=[not_a_server_error])
    error_shape(None, response, case)
    guard = world.guard(case)
    if other_method(case):
        assert response.status_code == 405, describe(case, response)
    elif guard.kind != "public":
        assert refused(response, 401, 403), describe(case, response)
    elif case.operation.path.startswith(CALLBACK_PREFIXES):
        assert 400 <= response.status_code < 500, describe(case, response)


# --- (b) admin --------------------------------------------------------------------------------------------------


@ADMIN.parametrize()
@fuzz(ADMIN_EXAMPLES)
def test_admin(world, case):
    headers = bearer("admin")
    if world.guard(case).kind == "public" and case.operation.path.startswith(CALLBACK_PREFIXES):
        headers = {}
    response = case.call(headers=headers)
    error_shape(None, response, case)
    if other_method(case):
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code == 405, describe(case, response)
        return
    case.validate_response(response, checks=CONFORMANCE)
    if not headers:
        assert 400 <= response.status_code < 500, describe(case, response)


# --- (c) another tenant; a role without the permission ------------------------------------------------------------


@SIGNED_IN.parametrize()
@fuzz(OTHER_TENANT_EXAMPLES)
def test_other_tenant(world, case):
    guard = world.guard(case)
    named = [p for p in (case.path_parameters or {}) if p in world.acme]
    if guard.kind != "permission":
        return
    for name in named:
        case.path_parameters[name] = world.acme[name]
    if isinstance(case.query, dict) and "organization_id" in case.query:
        case.query["organization_id"] = ACME  # a list asked for acme's objects: none may show
    in_body = isinstance(case.body, dict) and "organization_id" in case.body
    if in_body:
        case.body["organization_id"] = ACME
    # A body creating in acme is 403 forbidden_organization (or refused for the rest of it); a filter's (bulk
    # replay) selects nothing of acme's: its 2xx is held to the check below.
    creates_in_acme = in_body and (case.operation.method.upper(), case.operation.path) not in BODY_FILTERS
    response = case.call(headers=bearer(OTHER_TENANT))
    case.validate_response(response, checks=[not_a_server_error])
    error_shape(None, response, case)
    scoped = set(named) - {"principal_type", "principal", "address"}
    if other_method(case):
        assert response.status_code == 405, describe(case, response)
    elif scoped or creates_in_acme:
        assert not 200 <= response.status_code < 300, describe(case, response)
    if 200 <= response.status_code < 300:
        text = response.text
        for name in ("endpoint_id", "event_id", "document_id", "team_id"):
            assert world.acme[name] not in text, f"acme's {name} in {describe(case, response)}"


BODY_FILTERS = {("POST", "/api/v1/events/replay")}
NO_PERMISSIONS = {"viewer": set(), "auditor": {tuple(pair) for pair in ROLE_PERMISSIONS[AUDITOR]}}
METHOD_ACTIONS = {"GET": "can_read", "POST": "can_create", "PUT": "can_edit", "DELETE": "can_delete"}


def refused_for_lack_of_permission(world, case, username: str) -> None:
    guard = world.guard(case)
    if guard.kind != "permission" or guard.permission is None:
        return
    method, resource = guard.permission
    if (METHOD_ACTIONS[method], resource) in NO_PERMISSIONS[username]:
        return
    response = case.call(headers=bearer(username))
    case.validate_response(response, checks=[not_a_server_error])
    error_shape(None, response, case)
    if other_method(case):
        assert response.status_code == 405, describe(case, response)
    else:
        assert refused(response, 403), describe(case, response)


@SIGNED_IN.parametrize()
@fuzz(ROLE_EXAMPLES)
def test_viewer_without_officeflow_permissions(world, case):
    refused_for_lack_of_permission(world, case, "viewer")


@SIGNED_IN.parametrize()
@fuzz(ROLE_EXAMPLES)
def test_auditor_without_write_permissions(world, case):
    refused_for_lack_of_permission(world, case, "auditor")


# --- what the fuzzing found, pinned ---------------------------------------------------------------------------------


@pytest.fixture
def gateway(world) -> Iterator[TestClient]:
    with TestClient(APP, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("url", [
    "/api/v1/webhook-endpoints?organization_id=%00",
    "/api/v1/email/suppressions?reason=a%00b",
    "/api/v1/events?endpoint=%00",
    "/api/v1/documents?owner=%00",
    "/api/v1/webhook-endpoints/ep%00x",
])
def test_a_nul_in_the_url_is_422_not_500(gateway, url):
    """psycopg2 refuses a NUL in a text parameter (ValueError): it was a 500."""
    error = assert_error(gateway.get(url, headers=bearer("admin")), 422, "validation_error")
    assert "NUL" in error["message"]


@pytest.mark.parametrize("url", [
    "/api/v1/events?offset=9223372036854775808",
    "/api/v1/documents?offset=9223372036854775808",
    "/api/v1/email/suppressions?offset=9223372036854775808",
    "/api/v1/audit-log?before_id=9223372036854775808",
    "/api/v1/documents/some-id/content?version=2147483648",
])
def test_numbers_beyond_the_database_columns_are_422_not_500(gateway, url):
    """An offset or id beyond BIGINT (a version beyond INTEGER) failed in PostgreSQL: a 500."""
    assert_error(gateway.get(url, headers=bearer("admin")), 422, "validation_error")


def test_the_document_declares_the_error_answers():
    """Every error answer is documented with the gateway's error shape (openapi_errors.py): the 422 is not
    FastAPI's ``{"detail": [...]}``; sign-in, permission and not-found answers are declared."""
    document = APP.openapi()
    error = {"$ref": "#/components/schemas/Error"}
    operation = document["paths"]["/api/v1/webhook-endpoints/{endpoint_id}"]["patch"]["responses"]
    for status in ("400", "401", "403", "404", "422"):
        assert operation[status]["content"]["application/json"]["schema"] == error, status
    delivery = document["paths"]["/webhooks/{endpoint_id}"]["post"]["responses"]
    assert delivery["401"]["content"]["application/json"]["schema"] == error
    assert "HTTPValidationError" not in json.dumps(document["paths"])


def test_an_address_longer_than_the_audit_logs_resource_id_is_suppressed_and_audited(gateway):
    """A valid 300-character address failed the audit record (VARCHAR(255)) after the suppression was stored: 500."""
    address = "a" * 280 + "@example.com"
    response = gateway.post("/api/v1/email/suppressions", json={"address": address}, headers=bearer("admin"))
    assert response.status_code == 201, response.text
    entries = gateway.get("/api/v1/audit-log", params={"action": "email_suppression.added"}, headers=bearer("admin"))
    entry = next(e for e in entries.json()["entries"] if e["details"].get("resource_id") == address)
    assert len(entry["resource_id"]) == 255 and entry["resource_id"].endswith("…")


def test_a_logical_key_segment_longer_than_a_file_name_is_422(gateway):
    """A 300-character segment was accepted and failed in the local-folder storage (File name too long): 500."""
    response = gateway.post("/api/v1/documents", data={"logical_key": "hires/" + "a" * 300},
                            files={"file": ("note.txt", b"hello")}, headers=bearer("admin"))
    error = assert_error(response, 422, "validation_error")
    assert "255" in error["message"]
    fits = gateway.post("/api/v1/documents", data={"logical_key": "hires/" + "a" * 255},
                        files={"file": ("note.txt", b"hello")}, headers=bearer("admin"))
    assert fits.status_code == 201, fits.text


@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/api/v1/audit-log?until=0.5", None),
    ("GET", "/api/v1/audit-log.csv?since=1796342400", None),
    ("GET", "/api/v1/email/stats?to=0", None),
    ("POST", "/api/v1/events/replay", {"received_after": 0}),
    ("POST", "/api/v1/events/replay", {"received_before": "2000-01-01T00:00:00Z", "dry_run": 0}),
    ("POST", "/api/v1/webhook-endpoints", {"name": "x", "adapter": "bamboohr", "target_dag_id": "employee_onboarding",
                                           "enabled": 0}),
])
def test_numbers_where_the_document_says_a_date_or_a_boolean_are_422(gateway, method, url, body):
    """Pydantic's lax mode read them as Unix times (1970) or false and answered 2xx (ST201)."""
    error = assert_error(gateway.request(method, url, json=body, headers=bearer("admin")), 422, "validation_error")
    assert "ISO 8601" in error["message"] or "bool" in error["message"], error
    if "enabled" in (body or {}):  # refused, so nothing stored
        listed = gateway.get("/api/v1/webhook-endpoints", headers=bearer("admin")).json()["endpoints"]
        assert [e for e in listed if e["name"] == "x"] == []


def test_iso_dates_and_booleans_are_still_taken(gateway):
    assert gateway.get("/api/v1/audit-log?since=2026-12-01T00:00:00Z&until=2026-12-02", headers=bearer("admin")
                       ).status_code == 200
    assert gateway.get("/api/v1/email/stats?from=2026-12-01&to=2026-12-02", headers=bearer("admin")).status_code == 200
    replay = gateway.post("/api/v1/events/replay", json={"received_after": "2026-12-01T00:00:00Z", "dry_run": True},
                          headers=bearer("admin"))
    assert replay.status_code == 200 and replay.json()["dry_run"] is True, replay.text
