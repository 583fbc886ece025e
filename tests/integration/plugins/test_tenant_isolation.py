"""Tenant isolation of the management APIs, in-process on real PostgreSQL and Airflow DBs: two organizations,
acme and globex, each with one object of every kind (webhook endpoint, inbox event, declarative workflow,
document, email delivery and suppression, audit entries), and callers limited to one of them.

- ``hr`` (HR Manager) and ``tenant-admin`` (every OfficeFlow permission but "All Organizations", a role
  made here from the same pairs as OfficeFlow Admin) are members of acme; ``auditor`` (Auditor) of globex;
- ``admin`` (Admin) sees every organization.

For each resource: a list holds the caller's organizations' objects only, reading another organization's
object is 404, creating in another organization is 403 ``forbidden_organization``, changing (or replaying,
rotating, executing, sharing) another organization's object is 404, and neither leaves a trace in the store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from include.officeflow import documents, email_templates
from include.officeflow import email_tracking as tracking
from include.officeflow.auth import organizations
from include.officeflow.auth.permissions import ALL_ORGANIZATIONS, OFFICEFLOW_ADMIN, ROLE_PERMISSIONS
from include.officeflow.store import get_engine
from include.officeflow.store.models import Base
from sandbox.bamboohr.samples import sample_hire
from tests.harness.airflow_tools import api_token
from tests.harness.endpoints import create_endpoint, delivery_url, generic_body, generic_headers, new_id
from tests.harness.environment import REPO_ROOT
from tests.harness.gateway import URL as BAMBOOHR_URL
from tests.harness.gateway import signed
from tests.harness.gateway_checks import assert_error, dag_runs
from tests.harness.store import truncate
from tests.integration.plugins.extra_users import needs

ACME, GLOBEX, DEFAULT = "acme", "globex", "default"
NOBODY = None  # objects of no organization (a suppressed address no organization mailed)
EP, EV, WF, DOC, EMAIL, AUDIT = ("/api/v1/webhook-endpoints", "/api/v1/events", "/api/v1/workflows",
                                 "/api/v1/documents", "/api/v1/email", "/api/v1/audit-log")
TENANT_ADMIN_ROLE = "Tenant Admin"
# username -> the organizations it is a member of (None: sees every organization).
CALLERS: dict[str, set[str] | None] = {"admin": None, "tenant-admin": {ACME}, "hr": {ACME}, "auditor": {GLOBEX}}
TABLES = ("webhook_endpoints", "webhook_events", "audit_log", "workflows", "workflow_versions", "documents",
          "document_versions", "document_readers", "email_deliveries", "email_suppressions",
          "email_template_overrides", "email_template_override_versions",
          "organizations", "teams", "member_profiles", "team_members")
ORGS, TEAMS = "/api/v1/organizations", "/api/v1/teams"
# Email template overrides (tests/integration/plugins/test_email_templates_api.py): each organization overrides
# "welcome"; their ids in World are the organizations' own.
ETPL = "/api/v1/email/templates"


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(username)}"}


needs({"roles": {TENANT_ADMIN_ROLE: [[action, resource] for action, resource in ROLE_PERMISSIONS[OFFICEFLOW_ADMIN]
                                    if resource != ALL_ORGANIZATIONS]},
       "users": {"tenant-admin": TENANT_ADMIN_ROLE}})
pytestmark = pytest.mark.usefixtures("extra_users")


@pytest.fixture(autouse=True)
def memberships(store_url):
    """Each test starts from these memberships only, and leaves none behind."""
    truncate(store_url, "user_organizations")
    for username, orgs in CALLERS.items():
        if orgs is not None:
            organizations.set_user(username, orgs, by="test")
    yield
    truncate(store_url, "user_organizations")


# --- one object of every kind in each organization -------------------------------------------------------


@dataclass
class World:
    """The seeded objects' ids, per resource and organization."""

    ids: dict[str, dict[str | None, str]] = field(default_factory=dict)

    def of(self, resource: str, organization: str | None) -> str:
        return self.ids[resource][organization]

    def visible(self, resource: str, orgs: set[str] | None) -> set[str]:
        return {ident for org, ident in self.ids[resource].items() if orgs is None or org in orgs}

    def everything(self, resource: str) -> set[str]:
        return set(self.ids[resource].values())


def definition(name: str, organization_id: str, **changes: Any) -> dict[str, Any]:
    return {"name": name, "description": "Welcome a contractor", "organization_id": organization_id,
            "trigger": {"type": "manual"},
            "params": {"first_name": {"type": "string", "minLength": 1},
                       "email": {"type": "string", "format": "idn-email"}},
            "nodes": [{"id": "welcome", "type": "email",
                       "config": {"template": "welcome", "to": "{{ params.email }}",
                                  "variables": {"first_name": "{{ params.first_name }}"}}}],
            **changes}


@pytest.fixture
def world(client, admin, store_url, local_folder, email_store) -> World:
    truncate(store_url, "workflow_versions", "workflows", cascade=True)
    truncate(store_url, "email_template_override_versions", "email_template_overrides", cascade=True)
    for org in (ACME, GLOBEX):
        email_templates.save("welcome", org, email_templates.shipped("welcome").sources, actor="user:admin")
    seeded = World()
    endpoints, events, workflow_names, docs, templates, addresses = {}, {}, {}, {}, {}, {}
    for org in (ACME, GLOBEX):
        endpoint = create_endpoint(client, admin, organization_id=org, name=f"{org} HR",
                                   event_types=["employee.created"])
        endpoints[org] = endpoint["id"]
        body = generic_body(event_type="employee.updated")  # stored as ignored: nothing runs
        delivered = client.post(delivery_url(endpoint), content=body, headers=generic_headers(endpoint["secret"], body))
        assert delivered.status_code == 202 and delivered.json()["status"] == "ignored", delivered.text
        events[org] = delivered.json()["event_id"]

        name = f"wf_{uuid.uuid4().hex[:10]}"  # ids name no organization: answers must not either
        response = client.post(WF, json=definition(name, org), headers=admin)
        assert response.status_code == 201, response.text
        workflow_names[org] = name

        # Each organization's document has the other organization's member as a reader: membership still wins.
        owner, other = ("hr", "auditor") if org == ACME else ("auditor", "hr")
        docs[org] = documents.store_document(b"%PDF-1 offer", logical_key="hires/1/offer", title="Offer",
                                             owner=owner, organization_id=org,
                                             readers=[f"user:{other}", "user:it"]).document_id

        templates[org] = f"welcome_{uuid.uuid4().hex[:6]}"
        addresses[org] = f"person-{uuid.uuid4().hex[:6]}@example.com"
        tracking.claim(email_store, key=f"k-{org}", recipient=addresses[org], template=templates[org], subject="Hi",
                       provider="smtp", organization_id=org)
        tracking.suppress(email_store, addresses[org], reason="bounce", source="ses")
    addresses[NOBODY] = "nobody@elsewhere.example"
    tracking.suppress(email_store, addresses[NOBODY], reason="manual", source="admin")

    # The built-in BambooHR endpoint (/webhooks/bamboohr) belongs to organization "default".
    body = json.dumps({"employees": [{"action": "Updated", "id": new_id(), "timestamp": "2026-11-02T09:00:00+0000",
                                      "changedFields": ["firstName"], "fields": {"firstName": "Ada"}}]}).encode()
    builtin = client.post(BAMBOOHR_URL, content=body, headers=signed(body))
    assert builtin.status_code == 202 and builtin.json()["status"] == "ignored", builtin.text
    events[DEFAULT] = builtin.json()["event_id"]

    seeded.ids = {"endpoints": endpoints, "events": events, "workflows": workflow_names, "documents": docs,
                  "email-stats": templates, "email-suppressions": addresses,
                  "audit": dict(endpoints),  # the audit entries of the endpoints' creation
                  "email-templates": {ACME: ACME, GLOBEX: GLOBEX}}
    seeded.ids.update(_organizations_and_teams(client, admin, store_url))
    return seeded


def _organizations_and_teams(client, admin, store_url) -> dict[str, dict[str | None, str]]:
    """acme and globex as organizations (the teams API), with a team each."""
    truncate(store_url, "team_members", "member_profiles", "teams", "organizations", cascade=True)
    teams = {}
    for org in (ACME, GLOBEX):
        assert client.post(ORGS, json={"id": org, "name": org.title()}, headers=admin).status_code == 201
        team = client.post(f"{ORGS}/{org}/teams", json={"name": f"{org} platform",
                                                       "identity_groups": {"okta": ["Engineering"]}}, headers=admin)
        assert team.status_code == 201, team.text
        teams[org] = team.json()["id"]
    return {"organizations": {ACME: ACME, GLOBEX: GLOBEX}, "teams": teams}


def snapshot() -> dict[str, list[str]]:
    """Every row of the OfficeFlow tenant tables, and every Airflow DAG run: what a refused call must not change."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    rows: dict[str, list[str]] = {}
    with get_engine().connect() as conn:
        for name in TABLES:
            table = Base.metadata.tables[name]
            rows[name] = sorted(json.dumps(dict(r), default=str, sort_keys=True)
                                for r in conn.execute(select(table)).mappings())
    with create_session() as session:
        rows["dag_run"] = sorted(f"{r.dag_id}/{r.run_id}" for r in session.scalars(select(DagRun)))
    return rows


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readable:
    """How to list a resource (the ids in the answer), which single-object routes read one, and who may."""

    list: Callable[[Any, dict[str, str]], Any]
    ids: Callable[[dict[str, Any]], set[str]]
    gets: tuple[str, ...] = ()  # paths with {id}
    readers: frozenset[str] = frozenset(CALLERS)
    org_filter: bool = True  # the list takes ?organization_id=


READABLE = {
    "endpoints": Readable(lambda c, h, **p: c.get(EP, headers=h, params=p),
                          lambda body: {e["id"] for e in body["endpoints"]}, (EP + "/{id}",),
                          readers=frozenset({"admin", "tenant-admin", "auditor"})),  # HR Managers hold no endpoints
    "events": Readable(lambda c, h, **p: c.get(EV, headers=h, params=p),
                       lambda body: {e["id"] for e in body["events"]}, (EV + "/{id}",)),
    "workflows": Readable(lambda c, h, **p: c.get(WF, headers=h, params={"source": "store", **p}),
                          lambda body: {w["name"] for w in body["workflows"]}, (WF + "/{id}", WF + "/{id}/versions")),
    "documents": Readable(lambda c, h, **p: c.get(DOC, headers=h, params=p),
                          lambda body: {d["id"] for d in body["documents"]},
                          (DOC + "/{id}", DOC + "/{id}/readers", DOC + "/{id}/content")),
    "email-stats": Readable(lambda c, h, **p: c.get(EMAIL + "/stats", headers=h, params=p),
                            lambda body: {r["template"] for r in body["stats"]}),
    "email-suppressions": Readable(lambda c, h, **p: c.get(EMAIL + "/suppressions", headers=h, params=p),
                                   lambda body: {s["address"] for s in body["suppressions"]},
                                   (EMAIL + "/suppressions/{id}",), org_filter=False),
    "audit": Readable(lambda c, h, **p: c.get(AUDIT, headers=h, params={"action": "webhook_endpoint.created", **p}),
                      lambda body: {e["resource_id"] for e in body["entries"]},
                      readers=frozenset({"admin", "tenant-admin", "auditor"}), org_filter=False),
    "email-templates": Readable(lambda c, h, **p: c.get(ETPL, headers=h, params=p),
                                lambda body: {o["organization_id"] for t in body["templates"] for o in t["overrides"]},
                                (ETPL + "/welcome/overrides/{id}", ETPL + "/welcome?organization_id={id}")),
}


@pytest.mark.parametrize("resource", READABLE)
@pytest.mark.parametrize("username", CALLERS)
def test_lists_and_reads_show_only_the_callers_organizations(client, world, resource, username):
    spec, orgs, headers = READABLE[resource], CALLERS[username], bearer(username)
    if username not in spec.readers:
        assert_error(spec.list(client, headers), 403, "forbidden")
        return
    listed = spec.list(client, headers)
    assert listed.status_code == 200, listed.text
    # Other objects may exist (bundled workflows, other audit entries); of the seeded ones, exactly the caller's.
    assert spec.ids(listed.json()) & world.everything(resource) == world.visible(resource, orgs)
    if orgs is None:
        assert world.visible(resource, orgs) == world.everything(resource)  # the admin sees both organizations
    for org, ident in world.ids[resource].items():
        for path in spec.gets:
            response = client.get(path.format(id=ident), headers=headers)
            if orgs is None or org in orgs:
                assert response.status_code == 200, (path, response.text)
            else:
                error = assert_error(response, 404, "not_found")
                assert org is None or org not in error["message"]  # the answer names no other organization
    if spec.org_filter and orgs is not None:
        # Asking for another organization by name shows nothing either.
        other = GLOBEX if ACME in orgs else ACME
        narrowed = spec.list(client, headers, organization_id=other)
        assert narrowed.status_code == 200 and spec.ids(narrowed.json()) & world.everything(resource) == set()


@pytest.mark.parametrize("username", CALLERS)
def test_organizations_and_teams_show_only_the_callers_organizations(client, world, username):
    orgs, headers = CALLERS[username], bearer(username)
    listed = client.get(ORGS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert {o["id"] for o in listed.json()["organizations"]} == world.visible("organizations", orgs)
    for org in (ACME, GLOBEX):
        team = world.of("teams", org)
        for path in (f"{ORGS}/{org}", f"{ORGS}/{org}/teams", f"{TEAMS}/{team}", f"{TEAMS}/{team}/members"):
            response = client.get(path, headers=headers)
            if orgs is None or org in orgs:
                assert response.status_code == 200, (path, response.text)
            else:
                error = assert_error(response, 404, "not_found")
                assert path.startswith(ORGS) or org not in error["message"]


def test_stats_count_only_the_callers_organizations(client, world):
    acme, globex = world.of("email-stats", ACME), world.of("email-stats", GLOBEX)
    rows = {u: client.get(EMAIL + "/stats", headers=bearer(u)).json()["stats"] for u in ("admin", "hr", "auditor")}
    assert sorted((r["template"], r["total"]) for r in rows["admin"]) == sorted([(acme, 1), (globex, 1)])
    assert [(r["template"], r["total"]) for r in rows["hr"]] == [(acme, 1)]
    assert [(r["template"], r["total"]) for r in rows["auditor"]] == [(globex, 1)]
    only = client.get(EMAIL + "/stats", headers=bearer("admin"), params={"organization_id": GLOBEX}).json()["stats"]
    assert [r["template"] for r in only] == [globex]


def test_the_builtin_bamboohr_endpoint_belongs_to_the_default_organization(client, world):
    event_id = world.of("events", DEFAULT)
    hr = bearer("hr")
    assert_error(client.get(f"{EV}/{event_id}", headers=hr), 404, "not_found")
    assert event_id not in {e["id"] for e in client.get(EV, headers=hr).json()["events"]}
    organizations.set_user("hr", [ACME, DEFAULT], by="test")
    detail = client.get(f"{EV}/{event_id}", headers=hr)
    assert detail.status_code == 200, detail.text
    assert (detail.json()["endpoint_id"], detail.json()["organization_id"]) == ("bamboohr", DEFAULT)
    listed = client.get(EV, headers=hr).json()["events"]
    assert {e["id"] for e in listed} == {event_id, world.of("events", ACME)}
    assert {e["organization_id"] for e in listed} == {ACME, DEFAULT}


def test_a_user_without_memberships_sees_nothing(client, world):
    organizations.set_user("hr", [], by="test")
    hr = bearer("hr")
    for resource in ("events", "workflows", "documents", "email-stats", "email-suppressions"):
        spec = READABLE[resource]
        listed = spec.list(client, hr)
        assert listed.status_code == 200, listed.text
        assert spec.ids(listed.json()) & world.everything(resource) == set(), resource
    # The bundled Python DAGs serve every organization: listed for everyone, run only for a member.
    names = {w["name"] for w in client.get(WF, headers=hr).json()["workflows"]}
    assert "employee_onboarding" in names and "new_contractor_welcome" not in names  # the YAML one is "default"'s


# --- changing -------------------------------------------------------------------------------------------------


def onboarding_conf(organization_id: str | None) -> dict[str, Any]:
    """A valid employee_onboarding conf (the BambooHR default mapping of a sample hire)."""
    from include.officeflow.mapping import apply_mapping
    from plugins.officeflow_gateway.adapters import Delivery
    from plugins.officeflow_gateway.adapters.bamboohr import BambooHRAdapter

    delivery = Delivery(body=json.dumps(sample_hire(new_id())).encode(), headers={}, content_type="application/json",
                        client_ip=None, received_at=0.0)
    [event] = BambooHRAdapter().parse(delivery)
    conf = apply_mapping(BambooHRAdapter.default_mapping, event.document)
    conf.pop("organization_id", None)
    conf["correlation_id"] = "tenant-isolation"
    return conf if organization_id is None else {**conf, "organization_id": organization_id}


@dataclass(frozen=True)
class Write:
    """A change by ``username`` (a member of acme) to the object of ``resource`` in an organization (``{id}`` in
    the path; no resource: a creation, whose body names the organization)."""

    username: str
    method: str
    path: str
    resource: str | None
    body: Callable[[str, str | None], Any] | None
    other: tuple[int, str]  # the answer in globex
    own: int  # the answer in acme: the tenant check passed (success, or a refusal of another kind)
    multipart: bool = False  # the body goes as form fields beside a small PDF (document uploads)


def _endpoint_body(org: str, _: str | None) -> dict[str, Any]:
    return {"name": "x", "adapter": "generic", "target_dag_id": "employee_onboarding", "organization_id": org,
            "mapping": {"email": "data.email"}}


NOT_FOUND, FORBIDDEN_ORG = (404, "not_found"), (403, "forbidden_organization")
WRITES = {
    "create-endpoint": Write("tenant-admin", "POST", EP, None, _endpoint_body, FORBIDDEN_ORG, 201),
    "patch-endpoint": Write("tenant-admin", "PATCH", EP + "/{id}", "endpoints", lambda o, i: {"name": "renamed"},
                            NOT_FOUND, 200),
    "disable-endpoint": Write("tenant-admin", "POST", EP + "/{id}/disable", "endpoints", None, NOT_FOUND, 200),
    "rotate-secret": Write("tenant-admin", "POST", EP + "/{id}/rotate-secret", "endpoints",
                           lambda o, i: {"overlap_seconds": 0}, NOT_FOUND, 200),
    "delete-endpoint": Write("tenant-admin", "DELETE", EP + "/{id}", "endpoints", None, NOT_FOUND, 204),
    # Own organization: past the tenant check, refused because the ignored type still starts no workflow.
    "replay-event": Write("tenant-admin", "POST", EV + "/{id}/replay", "events", None, NOT_FOUND, 409),
    "create-workflow": Write("tenant-admin", "POST", WF, None,
                             lambda o, i: definition(f"wf_new_{uuid.uuid4().hex[:8]}", o), FORBIDDEN_ORG, 201),
    "put-workflow": Write("tenant-admin", "PUT", WF + "/{id}", "workflows",
                          lambda o, i: definition(str(i), o, description="edited"), NOT_FOUND, 200),
    "delete-workflow": Write("tenant-admin", "DELETE", WF + "/{id}", "workflows", None, NOT_FOUND, 204),
    # Own organization: past the tenant check, the DAG is not parsed yet (409 not_available).
    "execute-workflow": Write("tenant-admin", "POST", WF + "/{id}/execute", "workflows",
                              lambda o, i: {"conf": {"first_name": "Ada", "email": "ada@example.com"}}, NOT_FOUND, 409),
    "execute-python-dag": Write("tenant-admin", "POST", WF + "/employee_onboarding/execute", None,
                                lambda o, i: {"conf": onboarding_conf(o)}, FORBIDDEN_ORG, 201),
    # Own organization: past the tenant check, local storage cannot make share links (409 sharing_unavailable).
    "share-document": Write("hr", "POST", DOC + "/{id}/share", "documents", lambda o, i: {}, NOT_FOUND, 409),
    "add-reader": Write("hr", "POST", DOC + "/{id}/readers", "documents",
                        lambda o, i: {"type": "user", "name": "viewer"}, NOT_FOUND, 201),
    "remove-reader": Write("hr", "DELETE", DOC + "/{id}/readers/user/it", "documents", None, NOT_FOUND, 204),
    "admin-adds-reader": Write("tenant-admin", "POST", DOC + "/{id}/readers", "documents",
                               lambda o, i: {"type": "user", "name": "viewer"}, NOT_FOUND, 201),
    # Documents API: uploads (multipart), edits, soft delete and restore.
    "upload-document": Write("hr", "POST", DOC, None, lambda o, i: {"organization_id": o, "title": "Contract"},
                             FORBIDDEN_ORG, 201, multipart=True),
    "upload-document-version": Write("hr", "POST", DOC + "/{id}/versions", "documents", None, NOT_FOUND, 201,
                                     multipart=True),
    "edit-document": Write("hr", "PATCH", DOC + "/{id}", "documents", lambda o, i: {"tags": {"status": "signed"}},
                           NOT_FOUND, 200),
    "delete-document": Write("tenant-admin", "DELETE", DOC + "/{id}", "documents", None, NOT_FOUND, 200),
    # Own organization: past the tenant check, the document is not deleted (409 conflict).
    "restore-document": Write("tenant-admin", "POST", DOC + "/{id}/restore", "documents", None, NOT_FOUND, 409),
    "put-email-template-override": Write("tenant-admin", "PUT", ETPL + "/welcome/overrides/{id}", "email-templates",
                                         lambda o, i: {"subject": "Hi {{ first_name }}", "html": "<p>Hi</p>",
                                                       "text": "Hi"}, FORBIDDEN_ORG, 200),
    "revert-email-template-override": Write("tenant-admin", "DELETE", ETPL + "/welcome/overrides/{id}",
                                            "email-templates", None, NOT_FOUND, 204),
    "restore-email-template-version": Write("tenant-admin", "POST", ETPL + "/welcome/overrides/{id}/versions/1/restore",
                                            "email-templates", None, NOT_FOUND, 200),
    # Organizations and teams (the organization is in the path of a team's creation).
    "patch-organization": Write("tenant-admin", "PATCH", ORGS + "/{id}", "organizations",
                                lambda o, i: {"name": "Renamed"}, NOT_FOUND, 200),
    "create-team": Write("tenant-admin", "POST", ORGS + "/{id}/teams", "organizations",
                         lambda o, i: {"name": f"team {uuid.uuid4().hex[:8]}"}, FORBIDDEN_ORG, 201),
    "patch-team": Write("tenant-admin", "PATCH", TEAMS + "/{id}", "teams", lambda o, i: {"description": "x"},
                        NOT_FOUND, 200),
    "delete-team": Write("tenant-admin", "DELETE", TEAMS + "/{id}", "teams", None, NOT_FOUND, 204),
    # Starts a team_membership run in the caller's organization (202).
    "add-team-member": Write("hr", "POST", TEAMS + "/{id}/members", "teams",
                             lambda o, i: {"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "display_name": "P"},
                             NOT_FOUND, 202),
}


def _call(client, world: World, write: Write, org: str):
    ident = world.of(write.resource, org) if write.resource else None
    body = write.body(org, ident) if write.body else None
    return _send(client, write, write.path.format(id=ident), body, write.username)


def _send(client, write: Write, path: str, body: Any, username: str):
    if write.multipart:
        return client.request(write.method, path, data=body, headers=bearer(username),
                              files={"file": ("contract.pdf", b"%PDF-1.7 contract", "application/pdf")})
    return client.request(write.method, path, json=body, headers=bearer(username))


@pytest.mark.parametrize("name", WRITES)
def test_changes_in_another_organization_are_refused_and_change_nothing(client, world, name):
    write = WRITES[name]
    before = snapshot()
    status, code = write.other
    error = assert_error(_call(client, world, write, GLOBEX), status, code)
    assert GLOBEX not in error["message"] or code == "forbidden_organization"
    assert snapshot() == before


@pytest.mark.parametrize("name", WRITES)
def test_the_same_changes_pass_the_tenant_check_in_the_callers_organization(client, world, name):
    write = WRITES[name]
    response = _call(client, world, write, ACME)
    assert response.status_code == write.own, response.text


@pytest.mark.parametrize("name", [n for n, w in WRITES.items() if w.username == "tenant-admin"])
def test_the_admin_may_change_either_organization(client, world, name):
    write = WRITES[name]
    for org in (ACME, GLOBEX):
        ident = world.of(write.resource, org) if write.resource else None
        body = write.body(org, ident) if write.body else None
        response = _send(client, write, write.path.format(id=ident), body, "admin")
        assert response.status_code == write.own, (org, response.text)


def test_replaying_a_builtin_bamboohr_event_needs_the_default_organization(client, world):
    event_id = world.of("events", DEFAULT)
    before = snapshot()
    assert_error(client.post(f"{EV}/{event_id}/replay", headers=bearer("tenant-admin")), 404, "not_found")
    assert snapshot() == before
    organizations.set_user("tenant-admin", [ACME, DEFAULT], by="test")
    # Past the tenant check: employee.updated starts no workflow on the built-in endpoint.
    assert_error(client.post(f"{EV}/{event_id}/replay", headers=bearer("tenant-admin")), 409, "conflict")


def test_a_workflow_cannot_be_moved_into_another_organization(client, world):
    name = world.of("workflows", ACME)
    before = snapshot()
    error = assert_error(client.put(f"{WF}/{name}", json=definition(name, GLOBEX), headers=bearer("tenant-admin")),
                         403, "forbidden_organization")
    assert GLOBEX in error["message"]
    assert snapshot() == before
    moved = client.put(f"{WF}/{name}", json=definition(name, GLOBEX), headers=bearer("admin"))
    assert moved.status_code == 200 and moved.json()["organization_id"] == GLOBEX
    assert_error(client.get(f"{WF}/{name}", headers=bearer("tenant-admin")), 404, "not_found")


def test_a_deleted_workflow_of_another_organization_is_not_revived_by_a_create(client, world):
    name = world.of("workflows", GLOBEX)
    assert client.delete(f"{WF}/{name}", headers=bearer("admin")).status_code == 204
    before = snapshot()
    error = assert_error(client.post(WF, json=definition(name, ACME), headers=bearer("tenant-admin")), 409, "conflict")
    assert GLOBEX not in error["message"]
    assert snapshot() == before  # globex's versions stay globex's
    assert_error(client.get(f"{WF}/{name}/versions", headers=bearer("tenant-admin")), 404, "not_found")


def deploy_declarative_dags() -> None:
    """Parse the factory file and serialise its DAGs, as the dag-processor does on its next pass."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "declarative_workflows.py"))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)


def test_runs_carry_their_organization(client, world):
    """A run started through the API names its organization in its conf: the workflow's, or for a bundled Python
    DAG the one the caller asked for (the default one when none), if the caller is a member of it."""
    tenant_admin = bearer("tenant-admin")
    run = client.post(f"{WF}/employee_onboarding/execute", json={"conf": onboarding_conf(ACME)}, headers=tenant_admin)
    assert run.status_code == 201, run.text
    [(_, _, conf, _)] = dag_runs(run.json()["dag_run_id"])
    assert conf["organization_id"] == ACME
    before = snapshot()
    default = client.post(f"{WF}/employee_onboarding/execute", json={"conf": onboarding_conf(None)},
                          headers=tenant_admin)
    assert "'default'" in assert_error(default, 403, "forbidden_organization")["message"]
    assert snapshot() == before

    deploy_declarative_dags()
    name = world.of("workflows", ACME)
    conf = {"first_name": "Ada", "email": "ada@example.com"}
    run = client.post(f"{WF}/{name}/execute", json={"conf": conf}, headers=tenant_admin)
    assert run.status_code == 201, run.text
    assert dag_runs(run.json()["dag_run_id"])[0][2] == {**conf, "organization_id": ACME,
                                                        "correlation_id": run.headers["X-Correlation-ID"]}
    before = snapshot()
    smuggled = client.post(f"{WF}/{name}/execute", json={"conf": {**conf, "organization_id": GLOBEX}},
                           headers=tenant_admin)
    assert assert_error(smuggled, 400, "invalid_conf")["problems"][0]["path"] == "conf.organization_id"
    assert snapshot() == before
    executed = client.get(AUDIT, params={"action": "workflow.executed"}, headers=bearer("admin")).json()["entries"]
    assert {(e["actor"], e["organization_id"], e["source_ip"]) for e in executed} == {
        ("user:tenant-admin", ACME, "testclient")}


def test_the_suppression_list_is_changed_only_by_callers_who_see_every_organization(client, world):
    before = snapshot()
    for org in (ACME, GLOBEX):
        address = world.of("email-suppressions", org)
        assert_error(client.post(f"{EMAIL}/suppressions", json={"address": f"new@{org}.example"},
                                 headers=bearer("tenant-admin")), 403, "forbidden_organization")
        assert_error(client.delete(f"{EMAIL}/suppressions/{address}", headers=bearer("tenant-admin")), 403,
                     "forbidden_organization")
    assert snapshot() == before
    admin = bearer("admin")
    assert client.delete(f"{EMAIL}/suppressions/{world.of('email-suppressions', GLOBEX)}",
                         headers=admin).status_code == 204
    assert client.post(f"{EMAIL}/suppressions", json={"address": "new@acme.example"}, headers=admin).status_code == 201


def test_audit_entries_name_the_organization_and_the_address(client, world):
    admin = bearer("admin")
    assert client.post(f"{EP}/{world.of('endpoints', ACME)}/rotate-secret", json={"overlap_seconds": 0},
                       headers=bearer("tenant-admin")).status_code == 200
    entries = client.get(AUDIT, headers=admin).json()["entries"]
    rotated = [e for e in entries if e["action"] == "webhook_endpoint.secret_rotated"]
    assert [(e["actor"], e["organization_id"], e["source_ip"]) for e in rotated] == [
        ("user:tenant-admin", ACME, "testclient")]
    created_ = {e["resource_id"]: e["organization_id"] for e in entries if e["action"] == "webhook_endpoint.created"}
    assert created_ == {world.of("endpoints", ACME): ACME, world.of("endpoints", GLOBEX): GLOBEX}
    workflow_entries = {e["resource_id"]: e["organization_id"] for e in entries if e["action"] == "workflow.created"}
    assert workflow_entries == {world.of("workflows", ACME): ACME, world.of("workflows", GLOBEX): GLOBEX}
    # An organization's auditor reads its organization's entries only (CSV export included).
    globex_view = client.get(AUDIT, headers=bearer("auditor")).json()["entries"]
    assert globex_view and {e["organization_id"] for e in globex_view} == {GLOBEX}
    csv_rows = client.get(AUDIT + ".csv", headers=bearer("auditor")).text.splitlines()[1:]
    assert len(csv_rows) == len(globex_view) and all(f",{GLOBEX}," in row for row in csv_rows)
