"""OfficeFlow's roles and users in the FAB auth manager of the test's Airflow DB (plugins/officeflow_auth/roles.py and
the security manager of plugins/officeflow_auth/manager.py): every declared permission exists after a sync, a sync
keeps the per-workflow permissions, and the password policy holds wherever FAB or OfficeFlow creates a user or
sets a password."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.security import check_password_hash

from include.officeflow.auth import organizations
from include.officeflow.auth.passwords import PasswordPolicyError
from include.officeflow.auth.permissions import RESOURCES, ROLE_PERMISSIONS, ROLES
from plugins.officeflow_auth.roles import PER_WORKFLOW_PREFIXES, create_user, security_manager, sync_roles
from tests.harness.auth_users import PASSWORD

WEAK = "password123"


def pairs(role: Any) -> set[tuple[str, str]]:
    return {(p.action.name, p.resource.name) for p in role.permissions if p.action and p.resource}


@pytest.fixture
def sm(airflow_db) -> Iterator[Any]:
    with security_manager() as manager:
        yield manager


@pytest.fixture
def username(sm) -> Iterator[str]:
    """A fresh user name; the user is deleted afterwards if a test created it."""
    name = f"policy-{uuid.uuid4().hex[:8]}"
    yield name
    user = sm.find_user(username=name)
    if user is not None:
        sm.session.delete(user)
        sm.session.commit()


def test_every_officeflow_role_holds_exactly_its_declared_permissions(sm):
    sync_roles(sm)
    for name in ROLES:
        role = sm.find_role(name)
        assert role is not None, name
        declared = pairs(role) - {p for p in pairs(role) if p[1].startswith(PER_WORKFLOW_PREFIXES)}
        assert declared == set(ROLE_PERMISSIONS[name]), name
    for resource in RESOURCES:
        assert sm.get_resource(resource) is not None, resource
    admin = pairs(sm.find_role("Admin"))
    assert {(action, resource) for resource in RESOURCES for action in ("can_read",)} <= admin


def test_a_sync_keeps_per_workflow_permissions_and_drops_undeclared_ones(sm):
    hr = sm.find_role("HR Manager")
    per_workflow = sm.create_permission("can_read", "DAG:employee_onboarding")
    stray = sm.create_permission("can_read", "Connections")
    hr.permissions = [*hr.permissions, per_workflow, stray]
    sm.session.commit()

    counts = sync_roles(sm)
    assert counts["HR Manager"] == len(set(ROLE_PERMISSIONS["HR Manager"]))
    hr = sm.find_role("HR Manager")
    assert ("can_read", "DAG:employee_onboarding") in pairs(hr)
    assert ("can_read", "Connections") not in pairs(hr)
    assert sync_roles(sm) == counts  # idempotent


def test_fab_user_creation_refuses_weak_passwords(sm, username):
    role = sm.find_role("Viewer")
    with pytest.raises(PasswordPolicyError, match="at least 12 characters"):
        sm.add_user(username, "Weak", "Password", f"{username}@officeflow.test", role, password=WEAK)
    with pytest.raises(PasswordPolicyError, match="not contain the user name"):
        sm.add_user(username, "Weak", "Password", f"{username}@officeflow.test", role,
                    password=f"X-{username.upper()}-9")
    assert sm.find_user(username=username) is None
    user = sm.add_user(username, "Strong", "Password", f"{username}@officeflow.test", role, password=PASSWORD)
    assert user and check_password_hash(user.password, PASSWORD)


def test_password_changes_refuse_weak_passwords(sm, username):
    user = sm.add_user(username, "Strong", "Password", f"{username}@officeflow.test", sm.find_role("Viewer"),
                       password=PASSWORD)
    with pytest.raises(PasswordPolicyError):
        sm.reset_password(user.id, WEAK)
    sm.session.rollback()
    assert check_password_hash(sm.find_user(username=username).password, PASSWORD)
    assert sm.reset_password(user.id, "Another-G00d-one") is True
    assert check_password_hash(sm.find_user(username=username).password, "Another-G00d-one")


def test_users_without_a_password_are_still_created(sm, username):
    """Single sign-on users (OAuth, LDAP) arrive without a password: the policy does not apply."""
    user = sm.add_user(username, "Single", "Sign-on", f"{username}@officeflow.test", sm.find_role("Viewer"))
    assert user and sm.find_user(username=username) is not None


def _roles_cli(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugins.officeflow_auth.roles", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OFFICEFLOW_NEW_USER_PASSWORD": password})


def test_create_user_command_refuses_weak_passwords(sm, username, store_url):
    email = f"{username}@officeflow.test"
    weak = _roles_cli("create-user", username, email, "HR Manager", password=WEAK)
    assert weak.returncode == 2, weak.stdout + weak.stderr
    assert "OFFICEFLOW_NEW_USER_PASSWORD: the password must have at least 12 characters" in weak.stderr
    sm.session.expire_all()
    assert sm.find_user(username=username) is None

    created = _roles_cli("create-user", username, email, "HR Manager", "--org", "default", password=PASSWORD)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"user {username!r} created with role 'HR Manager'" in created.stdout
    sm.session.expire_all()
    assert [r.name for r in sm.find_user(username=username).roles] == ["HR Manager"]
    assert organizations.of_user(username) == {"default"}
    organizations.set_user(username, [], by="test")


def test_membership_commands_change_the_store_and_are_audited(store_url, capsys):
    """set-orgs, unlock (by user and by address) and reset-mfa from the command line, each audited as cli:<user>."""
    import getpass
    from datetime import UTC, datetime

    from sqlalchemy import select

    from include.officeflow.auth import mfa, throttle
    from include.officeflow.store import AuditLog, MfaEnrolment, session_scope
    from plugins.officeflow_auth.roles import main
    from tests.harness.store import truncate

    truncate(store_url, "login_attempts", "mfa_enrolments")
    user = f"cli-{uuid.uuid4().hex[:8]}"
    actor = f"cli:{getpass.getuser()}"
    start = _last_audit_id()

    assert main(["set-orgs", user, "acme", "default"]) == 0
    assert organizations.of_user(user) == {"acme", "default"}
    for _ in range(3):
        throttle.record(user, "192.0.2.40", False)
    throttle.record("someone-else", "192.0.2.41", False)
    assert main(["unlock", user]) == 0
    assert main(["unlock", "--address", "192.0.2.41"]) == 0
    assert throttle.check(user, "") is None and throttle.check("someone-else", "192.0.2.41") is None
    assert main(["unlock"]) == 2  # neither a user nor an address

    with session_scope() as session:
        session.add(MfaEnrolment(username=user, secret_encrypted="x", recovery_code_hashes=[],
                                 confirmed_at=datetime.now(UTC)))
    assert main(["reset-mfa", user]) == 0 and not mfa.is_enrolled(user)
    assert main(["reset-mfa", user]) == 0  # nothing left: says so, still succeeds
    out = capsys.readouterr().out
    assert "3 failed attempts forgotten" in out and "192.0.2.41: 1 failed attempts forgotten" in out
    assert f"{user}: no second factor to remove" in out

    with session_scope() as session:
        rows = [(r.actor, r.action, r.resource_id, r.organization_id, r.details)
                for r in session.scalars(select(AuditLog).where(AuditLog.id > start).order_by(AuditLog.id))]
    assert rows == [
        (actor, "access.organizations_changed", user, "acme", {"added": ["acme", "default"], "removed": []}),
        (actor, "access.organizations_changed", user, "default", {"added": ["acme", "default"], "removed": []}),
        (actor, "access.login_unlocked", user, "acme", {"removed": 3}),
        (actor, "access.login_unlocked", user, "default", {"removed": 3}),
        (actor, "access.login_unlocked", None, None, {"removed": 1, "address": "192.0.2.41"}),
        (actor, "access.mfa_reset", user, "acme", {}),
        (actor, "access.mfa_reset", user, "default", {}),
    ]
    organizations.set_user(user, [], by="test")


def _last_audit_id() -> int:
    from sqlalchemy import func, select

    from include.officeflow.store import AuditLog, session_scope

    with session_scope() as session:
        return session.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))


def test_service_user_command_makes_a_run_history_reader_and_keeps_it_so(sm, username, store_url):
    from plugins.officeflow_auth.roles import RUN_HISTORY_PERMISSIONS, RUN_HISTORY_READER

    def service_user(password: str) -> subprocess.CompletedProcess[str]:
        return _roles_cli("service-user", username, "--password-env", "OFFICEFLOW_NEW_USER_PASSWORD",
                          password=password)

    weak = service_user(WEAK)
    assert weak.returncode == 2 and "the password must have at least 12 characters" in weak.stderr
    created = service_user(PASSWORD)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"service user {username!r} created with role {RUN_HISTORY_READER!r}" in created.stdout
    sm.session.expire_all()
    user = sm.find_user(username=username)
    assert [r.name for r in user.roles] == [RUN_HISTORY_READER]
    assert pairs(sm.find_role(RUN_HISTORY_READER)) == set(RUN_HISTORY_PERMISSIONS)
    assert "up to date" in service_user(PASSWORD).stdout

    # Someone gave it another role and changed its password: the command puts both back.
    user.roles = [sm.find_role("Viewer")]
    sm.session.commit()
    again = service_user(PASSWORD + "2")
    assert again.returncode == 0 and f"service user {username!r} updated" in again.stdout
    sm.session.expire_all()
    user = sm.find_user(username=username)
    assert [r.name for r in user.roles] == [RUN_HISTORY_READER]
    assert check_password_hash(user.password, PASSWORD + "2")


def test_bootstrap_makes_the_insights_service_user_when_its_password_is_set(sm, username, store_url):
    """The migration Job (Helm), compose's init and ./run.sh migrate run only ``bootstrap``: it makes the
    workflow_insights service user too, from the password variable, and leaves the existing admin alone."""
    from plugins.officeflow_auth.roles import RUN_HISTORY_READER

    admin = f"{username}-admin"
    create_user(sm, admin, f"{admin}@officeflow.test", "Admin", PASSWORD)
    boot = ["bootstrap", "--admin", admin, "--service-user", username,
            "--service-password-env", "OFFICEFLOW_NEW_USER_PASSWORD"]
    weak = _roles_cli(*boot, password=WEAK)
    assert weak.returncode == 2 and "OFFICEFLOW_NEW_USER_PASSWORD: the password must" in weak.stderr
    done = _roles_cli(*boot, password=PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"admin {admin!r} exists" in done.stdout and f"service user {username!r} created" in done.stdout
    sm.session.expire_all()
    assert [r.name for r in sm.find_user(username=username).roles] == [RUN_HISTORY_READER]

    # Without the variable, no service user is touched
    quiet = _roles_cli("bootstrap", "--admin", admin, "--service-user", f"{username}-2",
                       "--service-password-env", "OFFICEFLOW_UNSET_PASSWORD_VARIABLE", password=PASSWORD)
    assert quiet.returncode == 0 and "service user" not in quiet.stdout
    sm.session.expire_all()
    assert sm.find_user(username=f"{username}-2") is None
