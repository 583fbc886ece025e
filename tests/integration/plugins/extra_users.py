"""Users, roles and groups some gateway API tests need beyond the one user per role of tests/harness/auth_users.py
(document owners and readers, a FAB group, a tenant admin limited to its organizations).

A test module declares what it needs when it is imported (``needs(spec)``); the first test that asks for the
session fixture ``extra_users`` (tests/integration/plugins/conftest.py) creates everything declared, in **one**
process of its own like ``auth_users`` (FAB's app keeps connections open, and each start of it costs seconds):
``python -m tests.integration.plugins.extra_users create '<spec as JSON>'``. They stay for the session (its
metadata DB is thrown away with it); the e2e tests start from the template copied before they exist.
Passwords are ``auth_users.PASSWORD``; tokens come from ``auth_users.api_token`` as for the standard users.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

Spec = dict[str, Any]  # {"roles": {name: [[action, resource], ...]}, "users": {name: role}, "groups": {name: [user]}}

_declared: Spec = {"roles": {}, "users": {}, "groups": {}}
_created: Spec = {"roles": {}, "users": {}, "groups": {}}


def needs(spec: Spec) -> Spec:
    """Declare (at import) roles, users and groups a test module needs; a name declared twice must agree."""
    for kind, items in spec.items():
        for name, value in items.items():
            known = _declared[kind].setdefault(name, value)
            assert known == value, f"extra_users: {kind[:-1]} {name!r} declared twice, differently"
    return spec


def create_declared() -> None:
    """Create whatever is declared and not created yet, in one process."""
    missing = {kind: {name: value for name, value in items.items() if name not in _created[kind]}
               for kind, items in _declared.items()}
    if not any(missing.values()):
        return
    result = subprocess.run([sys.executable, "-m", __name__, "create", json.dumps(missing)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, f"extra_users create failed:\n{result.stdout}\n{result.stderr}"
    for kind, items in missing.items():
        _created[kind].update(items)


def _create(sm: Any, spec: Spec) -> None:
    from airflow.providers.fab.auth_manager.models import Group

    from plugins.officeflow_auth.roles import create_user
    from tests.harness.auth_users import PASSWORD

    for name, pairs in spec.get("roles", {}).items():
        role = sm.find_role(name) or sm.add_role(name)
        role.permissions = [sm.create_permission(action, resource) for action, resource in pairs]
        sm.session.commit()
    for username, role in spec.get("users", {}).items():
        if sm.find_user(username=username) is None:
            create_user(sm, username, f"{username}@officeflow.test", role, PASSWORD)
    for name, members in spec.get("groups", {}).items():
        group = sm.session.query(Group).filter_by(name=name).one_or_none() or Group(name=name, label=name)
        group.users = [sm.find_user(username=member) for member in members]
        sm.session.add(group)
        sm.session.commit()


def main(argv: list[str]) -> None:
    from plugins.officeflow_auth.roles import security_manager

    command, spec = argv[0], json.loads(argv[1])
    if command != "create":
        raise SystemExit(f"unknown command {command!r} (create)")
    with security_manager() as sm:
        _create(sm, spec)


if __name__ == "__main__":
    main(sys.argv[1:])
