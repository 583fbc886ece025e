"""/api/v1/email/templates in-process on the PostgreSQL store and Airflow metadata DB, with real JWTs: the catalog
of shipped templates, previews, per-organization overrides (versions, revert, restore, audit), the checks that
refuse a template that does not render (422 with part, line and variable, nothing stored), permissions and tenant
isolation of reads; and ``render_email`` (what the email operator sends) using the override in use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from include.officeflow import email_templates as catalog
from include.officeflow.auth import organizations
from include.officeflow.email_rendering import render_email
from operators.email import SendTemplatedEmailOperator
from sandbox.email.smtp_sink import SmtpSink
from tests.harness.endpoints import audit_rows
from tests.harness.gateway_checks import assert_error
from tests.harness.mail import task_context
from tests.harness.store import truncate

API = "/api/v1/email/templates"
ACME, GLOBEX = "acme", "globex"
WELCOME_VARS = {"first_name": "Ada", "department": "Engineering", "job_title": "Engineer", "start_date": "2027-01-11"}
OVERRIDE = {
    "subject": "{{ first_name }}, welcome to {{ company_name | default(brand.name) }}",
    "html": '{% extends "layout.html.j2" %}\n{% block body %}\n<p>Hello {{ first_name }}, from {{ brand.name }}.</p>\n'
            "{% endblock %}\n",
    "text": '{% extends "layout.txt.j2" %}\n{% block body %}\nHello {{ first_name }}.\n{% endblock %}\n',
}


@pytest.fixture
def store(clean_store: str) -> str:
    truncate(clean_store, "email_template_override_versions", "email_template_overrides", "user_organizations",
             cascade=True)
    organizations.set_user("hr", [ACME], by="test")
    organizations.set_user("auditor", [GLOBEX], by="test")
    return clean_store


@pytest.fixture
def api(client, store):
    return client


def override(**changes: str) -> dict[str, str]:
    return {**OVERRIDE, **changes}


def put(api, headers, body: dict[str, Any], organization: str = ACME, name: str = "welcome"):
    return api.put(f"{API}/{name}/overrides/{organization}", json=body, headers=headers)


def actions(template: str = "welcome") -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(r.action, r.organization_id, r.details) for r in audit_rows(template)
            if r.action.startswith("email_template.")]


# --- the catalog ------------------------------------------------------------------------------------------------


def test_list_names_every_shipped_template_with_its_variables(api, admin):
    response = api.get(API, headers=admin)
    assert response.status_code == 200, response.text
    listed = {t["name"]: t for t in response.json()["templates"]}
    assert set(listed) == {"welcome", "first_day_logistics", "manager_heads_up", "offboarding_notice",
                           "offboarding_manager_checklist", "approval_request", "approval_decision", "role_change"}
    assert response.json()["total_entries"] == len(listed)
    welcome = listed["welcome"]
    assert welcome["description"] and welcome["overrides"] == []
    assert {"first_name", "department", "job_title", "start_date", "company_name"} <= set(welcome["variables"])
    assert "brand" not in welcome["variables"]


def test_get_returns_the_shipped_sources_sample_and_the_override_in_use(api, admin):
    shipped = api.get(f"{API}/welcome", headers=admin)
    assert shipped.status_code == 200, shipped.text
    body = shipped.json()
    assert body["default"]["subject"] == catalog.shipped("welcome").sources.subject
    assert "Welcome aboard" in body["default"]["html"] and "Welcome aboard" in body["default"]["text"]
    assert body["sample"]["first_name"] == "Ada" and body["override"] is None
    assert {"brand", "first_name", "manager_email"} <= set(body["allowed_variables"])
    assert put(api, admin, OVERRIDE).status_code == 201
    with_override = api.get(f"{API}/welcome", params={"organization_id": ACME}, headers=admin).json()
    assert with_override["override"]["version"] == 1 and with_override["override"]["html"] == OVERRIDE["html"]
    assert with_override["default"] == body["default"]  # the shipped files stay the default
    assert api.get(f"{API}/welcome", params={"organization_id": GLOBEX}, headers=admin).json()["override"] is None


def test_preview_renders_the_sample_data_given_variables_a_draft_or_the_override(api, admin):
    sample = api.post(f"{API}/welcome/preview", json={}, headers=admin)
    assert sample.status_code == 200, sample.text
    assert sample.json()["subject"] == "Welcome to Example Corp, Ada!"
    assert (sample.json()["source"], sample.json()["version"]) == ("default", None)
    assert "Welcome aboard, Ada!" in sample.json()["html"] and "Welcome aboard, Ada!" in sample.json()["text"]

    given = api.post(f"{API}/welcome/preview", json={"variables": {"first_name": "<Grace>"}}, headers=admin).json()
    assert given["subject"] == "Welcome to Example Corp, <Grace>!"  # the subject is not HTML
    assert "&lt;Grace&gt;" in given["html"] and "<Grace>" not in given["html"]  # the HTML is auto-escaped
    assert "Welcome aboard, <Grace>!" in given["text"]

    draft = api.post(f"{API}/welcome/preview", json={"draft": OVERRIDE, "variables": {"first_name": "Alan"}},
                     headers=admin).json()
    assert (draft["source"], draft["subject"]) == ("draft", "Alan, welcome to Example Corp")
    assert "Hello Alan, from OfficeFlow." in draft["html"]
    assert catalog.get_override("welcome", ACME) is None  # a preview stores nothing

    assert put(api, admin, OVERRIDE).status_code == 201
    stored = api.post(f"{API}/welcome/preview", json={"organization_id": ACME}, headers=admin).json()
    assert (stored["source"], stored["version"], stored["organization_id"]) == ("override", 1, ACME)
    assert stored["subject"] == "Ada, welcome to Example Corp"
    other = api.post(f"{API}/welcome/preview", json={"organization_id": GLOBEX}, headers=admin).json()
    assert other["source"] == "default"


def test_every_shipped_template_previews_with_its_sample_data(api, admin):
    for name in catalog.shipped_names():
        response = api.post(f"{API}/{name}/preview", json={}, headers=admin)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["subject"] and response.json()["html"] and response.json()["text"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/no_such_template", None),
    ("POST", "/no_such_template/preview", {}),
    ("GET", "/no_such_template/overrides/acme", None),
    ("PUT", "/no_such_template/overrides/acme", OVERRIDE),
    ("DELETE", "/no_such_template/overrides/acme", None),
    ("POST", "/no_such_template/overrides/acme/versions/1/restore", None),
    ("GET", "/layout/overrides/acme", None),  # a layout is not a template of its own
    ("GET", "/..%2Fbrands.yaml", None),
])
def test_an_unknown_template_is_404(api, admin, method, path, body):
    response = api.request(method, API + path, json=body, headers=admin)
    assert_error(response, 404, "not_found")
    assert actions() == []


# --- overrides: versions, revert, restore ------------------------------------------------------------------------


def test_overrides_are_versioned_reverted_and_restored_and_render_email_follows(api, admin, store):
    first = put(api, admin, OVERRIDE)
    assert first.status_code == 201, first.text
    assert (first.json()["current_version"], first.json()["latest_version"]) == (1, 1)
    assert render_email("welcome", WELCOME_VARS, ACME, store_url=store).subject == "Ada, welcome to Acme Corporation"

    second = put(api, admin, override(subject="Hi {{ first_name }}"))
    assert second.status_code == 200 and second.json()["current_version"] == 2
    history = api.get(f"{API}/welcome/overrides/{ACME}", headers=admin).json()
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert history["current"]["subject"] == "Hi {{ first_name }}" and history["updated_by"] == "user:admin"
    sent = render_email("welcome", WELCOME_VARS, ACME, store_url=store)
    assert sent.subject == "Hi Ada" and "Hello Ada, from Acme Corporation." in sent.html and "Hello Ada." in sent.text
    # Another organization keeps the shipped default.
    assert render_email("welcome", WELCOME_VARS, GLOBEX, store_url=store).subject == "Welcome to the team, Ada!"

    reverted = api.delete(f"{API}/welcome/overrides/{ACME}", headers=admin)
    assert reverted.status_code == 204, reverted.text
    after = api.get(f"{API}/welcome/overrides/{ACME}", headers=admin).json()
    assert after["current_version"] is None and after["current"] is None
    assert [v["version"] for v in after["versions"]] == [2, 1]  # the history stays
    assert render_email("welcome", WELCOME_VARS, ACME, store_url=store).subject == "Welcome to the team, Ada!"
    assert api.get(API, headers=admin).json()["templates"][-1]["overrides"] == []
    assert_error(api.delete(f"{API}/welcome/overrides/{ACME}", headers=admin), 404, "not_found")

    restored = api.post(f"{API}/welcome/overrides/{ACME}/versions/1/restore", headers=admin)
    assert restored.status_code == 200, restored.text
    assert restored.json()["current_version"] == 3 and restored.json()["current"]["restored_from"] == 1
    assert restored.json()["current"]["subject"] == OVERRIDE["subject"]
    assert render_email("welcome", WELCOME_VARS, ACME, store_url=store).subject == "Ada, welcome to Acme Corporation"
    listed = {t["name"]: t for t in api.get(API, headers=admin).json()["templates"]}
    assert [(o["organization_id"], o["version"]) for o in listed["welcome"]["overrides"]] == [(ACME, 3)]
    assert_error(api.post(f"{API}/welcome/overrides/{ACME}/versions/9/restore", headers=admin), 404, "not_found")

    assert actions() == [("email_template.override_saved", ACME, {"version": 1}),
                         ("email_template.override_saved", ACME, {"version": 2}),
                         ("email_template.override_reverted", ACME, {"version": 2}),
                         ("email_template.override_restored", ACME, {"version": 3, "restored_from": 1})]
    entry = audit_rows("welcome")[0]
    assert (entry.actor, entry.resource_type, entry.source_ip) == ("user:admin", "email_template", "testclient")
    assert entry.correlation_id


def test_an_organization_without_an_override_has_none_to_show(api, admin):
    assert_error(api.get(f"{API}/welcome/overrides/{ACME}", headers=admin), 404, "not_found")
    assert_error(api.delete(f"{API}/welcome/overrides/{ACME}", headers=admin), 404, "not_found")
    assert_error(api.post(f"{API}/welcome/overrides/{ACME}/versions/1/restore", headers=admin), 404, "not_found")
    assert actions() == []


def test_the_email_operator_sends_the_override_in_use(api, admin, store, email_store, tmp_path, monkeypatch):
    """The operator's task code finds the store as in a worker (no ``officeflow_db`` connection here: the
    configured store) and sends the organization's override through a real SMTP server."""
    with SmtpSink(tmp_path / "mailbox") as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEMPLATES", json.dumps({
            "conn_type": "smtp", "host": sink.host, "port": sink.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "people@example.com", "timeout": 5,
                      "retry_limit": 0}}))

        def send(organization: str, to: str) -> None:
            SendTemplatedEmailOperator(task_id="send_welcome_email", template="welcome", to=to, variables=WELCOME_VARS,
                                       organization=organization, conn_id="smtp_templates").execute(task_context())

        assert put(api, admin, OVERRIDE).status_code == 201
        send(ACME, "ada@acme.example")
        send(GLOBEX, "ada@globex.example")
        assert api.delete(f"{API}/welcome/overrides/{ACME}", headers=admin).status_code == 204
        send(ACME, "grace@acme.example")
        sent = {m["To"]: m for m in sink.messages()}
    assert sent["ada@acme.example"]["Subject"] == "Ada, welcome to Acme Corporation"
    assert "Hello Ada, from Acme Corporation." in sent["ada@acme.example"].get_body(("html",)).get_content()
    assert "Hello Ada." in sent["ada@acme.example"].get_body(("plain",)).get_content()
    assert sent["ada@globex.example"]["Subject"] == "Welcome to the team, Ada!"  # no override in globex
    assert sent["grace@acme.example"]["Subject"] == "Welcome to the team, Ada!"  # reverted: the shipped one


# --- refused sources: 422 with part, line and variable; nothing stored ---------------------------------------------


REFUSALS = {
    "unknown variable": (override(html='{% extends "layout.html.j2" %}\n{% block body %}\n<p>Hi {{ first_nme }}</p>\n'
                                       "{% endblock %}\n"),
                         "unknown_variable", "html", 3, "first_nme"),
    "syntax error": (override(text='{% extends "layout.txt.j2" %}\n{% block body %}\nHi {{ first_name }\n'
                                   "{% endblock %}\n"),
                     "template_syntax_error", "text", 3, None),
    "unclosed block": (override(html="<p>\n{% if first_name %}\nHi\n"), "template_syntax_error", "html", 3, None),
    # brand_color is a variable of the shipped layout (always with a default), but not in the sample data.
    "undefined with the sample data": (override(html="<p>\nHi {{ first_name }}\n<b style='color: {{ brand_color }}'>"
                                                     "</b></p>\n"),
                                       "undefined_variable", "html", 3, "brand_color"),
    "python internals": (override(html="<p>{{ first_name.__class__.__mro__ }}</p>"), "unsafe_template", "html", 1,
                         None),
    "two-line subject": (override(subject="Hi\n{{ first_name }}"), "invalid_subject", "subject", None, None),
    "a missing layout": (override(html='{% extends "no_layout.html.j2" %}'), "render_error", "html", 1, None),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_sources_that_do_not_render_are_refused_and_nothing_is_stored(api, admin, case):
    body, code, part, line, variable = REFUSALS[case]
    assert put(api, admin, OVERRIDE).status_code == 201
    response = put(api, admin, body)
    error = assert_error(response, 422, code)
    assert (error["part"], error["line"], error["variable"]) == (part, line, variable)
    assert error["message"].startswith(f"{part} line {line}:" if line else f"{part}:")
    if variable:
        assert repr(variable) in error["message"]
    # What was stored before is still what emails use, and the refusal left no version or audit entry.
    stored = catalog.get_override("welcome", ACME)
    assert stored is not None and (stored.current_version, stored.latest_version) == (1, 1)
    assert [a for a, _, _ in actions()] == ["email_template.override_saved"]
    # The same draft is refused by a preview, with the same explanation.
    preview = api.post(f"{API}/welcome/preview", json={"draft": body}, headers=admin)
    assert assert_error(preview, 422, code)["line"] == line


def test_a_draft_previews_with_given_variables_that_the_sample_lacks(api, admin):
    body = override(html="<p>{{ first_name }} <b style='color: {{ brand_color }}'>x</b></p>")
    assert_error(api.post(f"{API}/welcome/preview", json={"draft": body}, headers=admin), 422, "undefined_variable")
    shown = api.post(f"{API}/welcome/preview", json={"draft": body, "variables": {"brand_color": "#f00"}},
                     headers=admin)
    assert shown.status_code == 200, shown.text
    assert "color: #f00" in shown.json()["html"]


def test_malformed_bodies_are_422_validation_errors(api, admin):
    for body in ({"subject": "x", "html": "y"}, {**OVERRIDE, "subject": ""}, {**OVERRIDE, "html": "x" * 200_001}):
        assert_error(put(api, admin, body), 422, "validation_error")
    assert_error(api.post(f"{API}/welcome/preview", json={"variables": ["not", "a", "mapping"]}, headers=admin),
                 422, "validation_error")
    assert catalog.get_override("welcome", ACME) is None


# --- who may do what ------------------------------------------------------------------------------------------


def test_hr_managers_word_their_organizations_templates_and_readers_only_read(api, admin, auth_headers):
    hr = auth_headers("hr")  # HR Manager: can_read + can_edit on OfficeFlow Email, a member of acme only
    assert api.get(API, headers=hr).status_code == 200
    assert api.get(f"{API}/welcome", params={"organization_id": ACME}, headers=hr).status_code == 200
    assert api.post(f"{API}/welcome/preview", json={"draft": OVERRIDE}, headers=hr).status_code == 200
    assert put(api, hr, OVERRIDE).status_code == 201
    assert api.get(f"{API}/welcome/overrides/{ACME}", headers=hr).status_code == 200
    assert api.post(f"{API}/welcome/overrides/{ACME}/versions/1/restore", headers=hr).status_code == 200
    assert_error(put(api, hr, OVERRIDE, organization=GLOBEX), 403, "forbidden_organization")
    assert api.delete(f"{API}/welcome/overrides/{ACME}", headers=hr).status_code == 204
    auditor = auth_headers("auditor")  # can_read only, a member of globex
    assert api.get(API, headers=auditor).status_code == 200
    assert_error(put(api, auditor, OVERRIDE, organization=GLOBEX), 403, "forbidden")
    assert_error(api.delete(f"{API}/welcome/overrides/{GLOBEX}", headers=auditor), 403, "forbidden")
    for username in ("viewer", "it"):  # no permission on OfficeFlow Email at all
        assert_error(api.get(API, headers=auth_headers(username)), 403, "forbidden")
        assert_error(api.post(f"{API}/welcome/preview", json={}, headers=auth_headers(username)), 403, "forbidden")
    assert_error(api.get(API), 401, "unauthorized")
    assert catalog.get_override("welcome", ACME).latest_version == 2  # type: ignore[union-attr]
    assert catalog.get_override("welcome", GLOBEX) is None


def test_readers_see_only_their_organizations_overrides(api, admin, auth_headers):
    for org in (ACME, GLOBEX):
        assert put(api, admin, override(subject=f"{org}: {{{{ first_name }}}}"), organization=org).status_code == 201
    hr = auth_headers("hr")  # a member of acme only
    listed = {t["name"]: t for t in api.get(API, headers=hr).json()["templates"]}
    assert [o["organization_id"] for o in listed["welcome"]["overrides"]] == [ACME]
    narrowed = {t["name"]: t for t in api.get(API, params={"organization_id": GLOBEX}, headers=hr).json()["templates"]}
    assert narrowed["welcome"]["overrides"] == []
    all_of_them = {t["name"]: t for t in api.get(API, headers=admin).json()["templates"]}
    assert [o["organization_id"] for o in all_of_them["welcome"]["overrides"]] == [ACME, GLOBEX]

    for response in (api.get(f"{API}/welcome/overrides/{GLOBEX}", headers=hr),
                     api.get(f"{API}/welcome", params={"organization_id": GLOBEX}, headers=hr),
                     api.post(f"{API}/welcome/preview", json={"organization_id": GLOBEX}, headers=hr)):
        error = assert_error(response, 404, "not_found")
        assert "globex: " not in response.text and error["message"]
    own = api.post(f"{API}/welcome/preview", json={"organization_id": ACME}, headers=hr).json()
    assert own["subject"] == "acme: Ada"


def test_the_routes_and_their_models_are_in_the_openapi_document(api):
    spec = api.get("/api-docs/openapi.json").json()
    paths = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items() if path.startswith(API)}
    assert paths == {API: {"get"}, f"{API}/{{name}}": {"get"}, f"{API}/{{name}}/preview": {"post"},
                     f"{API}/{{name}}/overrides/{{organization_id}}": {"get", "put", "delete"},
                     f"{API}/{{name}}/overrides/{{organization_id}}/versions/{{version}}/restore": {"post"}}
    put_op = spec["paths"][f"{API}/{{name}}/overrides/{{organization_id}}"]["put"]
    assert {"200", "201", "422"} <= set(put_op["responses"])
    assert put_op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/TemplateError")
    assert {"SourcesIn", "PreviewIn", "PreviewOut", "OverrideOut", "TemplateList"} <= set(spec["components"]["schemas"])
