"""/api/v1/access in-process: users with roles, organizations and MFA status; organization membership (validated,
audited, limited to the editor's organizations); an administrator's MFA reset and unlock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from include.officeflow.auth import mfa, organizations, throttle
from include.officeflow.auth.permissions import ALL_ORGANIZATIONS, OFFICEFLOW_ADMIN, ROLE_PERMISSIONS
from include.officeflow.store import AuditLog, MfaEnrolment, session_scope
from tests.harness.airflow_tools import api_token
from tests.harness.auth_users import USERS
from tests.harness.store import truncate
from tests.integration.plugins.extra_users import needs

URL = "/api/v1/access/users"


@pytest.fixture
def memberships(client) -> Iterator[None]:
    """Whatever this test changes in organization membership is put back."""
    before = organizations.all_memberships()
    yield
    for user in USERS:
        organizations.set_user(user, before.get(user, []), by="test")


def audited(action: str) -> list[AuditLog]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


@pytest.mark.usefixtures("memberships")
def test_admin_lists_every_user_with_roles_organizations_and_mfa(client, admin):
    organizations.set_user("hr", ["default", "acme"], by="test")
    body = client.get(URL, headers=admin).json()
    users = {u["username"]: u for u in body["users"]}
    assert set(USERS) <= set(users)
    assert body["roles"] == ["OfficeFlow Admin", "HR Manager", "IT Operator", "Auditor"]
    assert users["hr"]["roles"] == ["HR Manager"] and users["hr"]["officeflow_roles"] == ["HR Manager"]
    assert users["hr"]["organizations"] == ["acme", "default"] and users["hr"]["all_organizations"] is False
    assert users["officeflow-admin"]["all_organizations"] is True and users["admin"]["all_organizations"] is True
    assert users["viewer"]["officeflow_roles"] == [] and users["viewer"]["mfa_enrolled"] is False


@pytest.mark.usefixtures("memberships")
def test_an_organizations_auditor_lists_the_members_of_its_organizations(client, auth_headers):
    organizations.set_user("auditor", ["acme"], by="test")
    organizations.set_user("hr", ["acme"], by="test")
    organizations.set_user("it", ["default"], by="test")
    names = {u["username"] for u in client.get(URL, headers=auth_headers("auditor")).json()["users"]}
    assert names == {"auditor", "hr"}


@pytest.mark.usefixtures("memberships")
def test_setting_organizations_is_validated_and_audited(client, admin):
    changed = client.put(f"{URL}/it/organizations", json={"organizations": ["default", "acme"]}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["organizations"] == ["acme", "default"]
    again = client.put(f"{URL}/it/organizations", json={"organizations": ["acme"]}, headers=admin)
    assert again.json()["organizations"] == ["acme"]
    entries = [(e.actor, e.resource_id, e.details) for e in audited("access.organizations_changed")]
    assert entries[-2:] == [("user:admin", "it", {"added": ["acme", "default"], "removed": []}),
                            ("user:admin", "it", {"added": [], "removed": ["default"]})]

    bad = client.put(f"{URL}/it/organizations", json={"organizations": ["no spaces"]}, headers=admin)
    assert bad.status_code == 422
    missing = client.put(f"{URL}/nobody-here/organizations", json={"organizations": ["acme"]}, headers=admin)
    assert missing.status_code == 404


@pytest.mark.usefixtures("memberships")
@pytest.mark.parametrize("user", ["hr", "it", "auditor", "viewer", "op"])
def test_only_access_editors_change_memberships(client, auth_headers, user):
    response = client.put(f"{URL}/viewer/organizations", json={"organizations": ["default"]},
                          headers=auth_headers(user))
    assert response.status_code == 403


def test_mfa_reset_removes_a_second_factor(client, admin, store_url):
    truncate(store_url, "mfa_enrolments")
    assert client.delete(f"{URL}/viewer/mfa", headers=admin).status_code == 404  # none to remove
    with session_scope() as session:
        session.add(MfaEnrolment(username="viewer", secret_encrypted="x", recovery_code_hashes=[],
                                 confirmed_at=datetime.now(UTC)))
    assert mfa.is_enrolled("viewer")
    assert client.delete(f"{URL}/viewer/mfa", headers=admin).status_code == 204
    assert not mfa.is_enrolled("viewer")
    assert [e.resource_id for e in audited("access.mfa_reset")][-1:] == ["viewer"]
    assert client.delete(f"{URL}/nobody-here/mfa", headers=admin).status_code == 404


def test_unlock_forgets_a_users_failed_logins(client, admin, store_url):
    truncate(store_url, "login_attempts")
    for _ in range(5):
        throttle.record("viewer", "192.0.2.9", False)
    assert throttle.check("viewer", "") is not None
    response = client.post(f"{URL}/viewer/unlock", headers=admin)
    assert response.status_code == 200 and response.json() == {"failed_attempts_removed": 5}
    assert throttle.check("viewer", "") is None
    assert throttle.check("someone", "192.0.2.9") is None
    assert audited("access.login_unlocked")[-1].details == {"removed": 5}


needs({"roles": {"Acme Admin": [[a, r] for a, r in ROLE_PERMISSIONS[OFFICEFLOW_ADMIN] if r != ALL_ORGANIZATIONS]},
       "users": {"acme-admin": "Acme Admin"}})


@pytest.fixture
def tenant_admin(extra_users, memberships) -> Iterator[dict[str, str]]:
    """``acme-admin``: every OfficeFlow permission but "All Organizations", a member of acme only."""
    organizations.set_user("acme-admin", ["acme"], by="test")
    try:
        yield {"Authorization": f"Bearer {api_token('acme-admin')}"}
    finally:
        organizations.set_user("acme-admin", [], by="test")


def test_an_organizations_admin_fixes_only_its_members(client, tenant_admin, store_url):
    """MFA reset and unlock of a user outside the admin's organizations: 404 (hidden), nothing changed."""
    truncate(store_url, "mfa_enrolments", "login_attempts")
    organizations.set_user("hr", ["acme", "default"], by="test")
    organizations.set_user("it", ["default"], by="test")
    with session_scope() as session:
        for user in ("hr", "it"):
            session.add(MfaEnrolment(username=user, secret_encrypted="x", recovery_code_hashes=[],
                                     confirmed_at=datetime.now(UTC)))
    for user in ("hr", "it"):
        throttle.record(user, "192.0.2.7", False)

    assert client.delete(f"{URL}/it/mfa", headers=tenant_admin).status_code == 404
    assert client.post(f"{URL}/it/unlock", headers=tenant_admin).status_code == 404
    assert mfa.is_enrolled("it") and throttle.reset(username="it") == 1  # untouched until this reset

    assert client.delete(f"{URL}/hr/mfa", headers=tenant_admin).status_code == 204
    assert client.post(f"{URL}/hr/unlock", headers=tenant_admin).json() == {"failed_attempts_removed": 1}
    assert not mfa.is_enrolled("hr")
    # Audited in the admin's organization only: acme's auditors see it, default's learn nothing of acme.
    for action in ("access.mfa_reset", "access.login_unlocked"):
        [entry] = [e for e in audited(action) if e.actor == "user:acme-admin"]
        assert (entry.resource_id, entry.organization_id) == ("hr", "acme")


def test_membership_changes_are_audited_in_each_organization_concerned(client, admin, tenant_admin):
    organizations.set_user("it", ["default"], by="test")
    client.put(f"{URL}/it/organizations", json={"organizations": ["acme", "globex"]}, headers=admin)
    entries = [e for e in audited("access.organizations_changed") if e.resource_id == "it"][-3:]
    assert sorted(e.organization_id for e in entries) == ["acme", "default", "globex"]
    assert {json_details(e) for e in entries} == {(("acme", "globex"), ("default",))}

    # acme's admin keeps globex (hidden from it) while removing acme; only acme's record is written.
    changed = client.put(f"{URL}/it/organizations", json={"organizations": []}, headers=tenant_admin)
    assert changed.json()["organizations"] == ["globex"]
    [last] = [e for e in audited("access.organizations_changed") if e.actor == "user:acme-admin"]
    assert last.organization_id == "acme" and last.details == {"added": [], "removed": ["acme"]}


def json_details(entry: AuditLog) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(entry.details["added"]), tuple(entry.details["removed"])
