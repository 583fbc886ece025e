"""/api/v1/audit-log in-process on the real store: newest first, filters, pages, organization scoping, the CSV
export (formulas neutralised) and no route that writes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from include.officeflow.audit import audit
from include.officeflow.auth import organizations
from include.officeflow.store import AuditLog, session_scope

URL = "/api/v1/audit-log"


def add(action: str, *, organization: str | None = "default", actor: str = "user:ada", outcome: str = "success",
        **details: object) -> None:
    audit(action, actor=actor, resource_type="thing", outcome=outcome, organization_id=organization,
          source_ip="192.0.2.7", correlation_id="cid-1", **details)


@pytest.fixture
def auditor_in_default(client) -> Iterator[None]:
    organizations.set_user("auditor", ["default"], by="test")
    yield
    organizations.set_user("auditor", [], by="test")


def test_entries_newest_first_with_every_column(client, admin):
    add("first.thing", detail="one")
    add("auth.login", organization=None)
    body = client.get(URL, headers=admin).json()
    assert [e["action"] for e in body["entries"]] == ["auth.login", "first.thing"]
    entry = body["entries"][1]
    assert {k: entry[k] for k in ("actor", "resource_type", "outcome", "organization_id", "source_ip",
                                  "correlation_id", "details")} == {
        "actor": "user:ada", "resource_type": "thing", "outcome": "success", "organization_id": "default",
        "source_ip": "192.0.2.7", "correlation_id": "cid-1", "details": {"detail": "one"}}
    assert body["next_before_id"] is None


def test_filters_and_pages(client, admin):
    for n in range(5):
        add(f"page.{n}", actor="user:grace" if n % 2 else "user:ada", outcome="failure" if n == 3 else "success")
    first = client.get(URL, params={"limit": 2}, headers=admin).json()
    assert [e["action"] for e in first["entries"]] == ["page.4", "page.3"]
    second = client.get(URL, params={"limit": 2, "before_id": first["next_before_id"]}, headers=admin).json()
    assert [e["action"] for e in second["entries"]] == ["page.2", "page.1"]

    def actions(**filters: str) -> list[str]:
        return [e["action"] for e in client.get(URL, params=filters, headers=admin).json()["entries"]]

    assert actions(actor="user:grace") == ["page.3", "page.1"]
    assert actions(outcome="failure") == ["page.3"]
    assert actions(action="page.2") == ["page.2"]
    assert actions(resource_type="other") == []
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert actions(since=later) == []
    assert len(actions(until=later)) == 5
    assert client.get(URL, params={"limit": 0}, headers=admin).status_code == 422


def test_an_organizations_auditor_sees_only_its_organizations(client, auth_headers, auditor_in_default):
    add("in.default")
    add("in.other", organization="other")
    add("auth.login", organization=None)
    seen = client.get(URL, headers=auth_headers("auditor")).json()["entries"]
    assert [e["action"] for e in seen] == ["in.default"]
    exported = client.get(f"{URL}.csv", headers=auth_headers("auditor")).text
    assert "in.default" in exported and "in.other" not in exported and "auth.login" not in exported


def test_an_auditor_without_an_organization_sees_nothing(client, auth_headers):
    add("in.default")
    assert client.get(URL, headers=auth_headers("auditor")).json()["entries"] == []


@pytest.mark.parametrize("user", ["hr", "it", "viewer", "op"])
def test_roles_without_the_audit_permission_are_refused(client, auth_headers, user):
    response = client.get(URL, headers=auth_headers(user))
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert client.get(f"{URL}.csv", headers=auth_headers(user)).status_code == 403


def test_csv_export_neutralises_spreadsheet_formulas(client, admin):
    add("csv.check", actor="=HYPERLINK(\"http://evil\")", note="+1", other="-2")
    response = client.get(f"{URL}.csv", headers=admin)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="officeflow-audit-log.csv"' in response.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["actor"] == "'=HYPERLINK(\"http://evil\")"
    assert row["action"] == "csv.check" and row["organization_id"] == "default" and row["source_ip"] == "192.0.2.7"
    assert row["details"] == '{"note": "+1", "other": "-2"}'


def test_the_app_has_no_route_that_writes_the_audit_log(client):
    from plugins.officeflow_gateway.app import create_app

    app = create_app()
    methods = {method for route in app.routes if getattr(route, "path", "").startswith(URL)
               for method in getattr(route, "methods", set())}
    assert methods <= {"GET", "HEAD"}
    spec = client.get("/api-docs/openapi.json").json()
    assert {path: set(ops) for path, ops in spec["paths"].items() if "audit" in path} == {
        URL: {"get"}, f"{URL}.csv": {"get"}}
    with session_scope() as session:
        assert session.query(AuditLog).count() == 0  # nothing here wrote an entry
