"""Users, roles and groups some gateway API tests need beyond the one user per role of tests/harness/auth_users.py
(document owners and readers, a FAB group, a tenant admin limited to its organizations).

Made and removed in a process of their own, like ``auth_users`` (FAB's app keeps connections open), through
``python -m tests.integration.plugins.extra_users create|delete '<spec as JSON>'``; tests call :func:`created`.
Passwords are ``auth_users.PASSWORD``; tokens come from ``auth_users.api_token`` as for the standard users.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Spec = dict[str, Any]  # {"roles": {name: [[action, resource], ...]}, "users": {name: role}, "groups": {name: [user]}}


def _run(command: str, spec: Spec) -> None:
    result = subprocess.run([sys.executable, "-m", __name__, command, json.dumps(spec)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, f"extra_users {command} failed:\n{result.stdout}\n{result.stderr}"


@contextmanager
def created(spec: Spec) -> Iterator[None]:
    """The roles, users and groups of ``spec`` exist inside the block (removed after it)."""
    from tests.harness.auth_users import _user_id

    _run("delete", spec)  # leftovers of an interrupted run
    _run("create", spec)
    try:
        yield
    finally:
        _run("delete", spec)
        _user_id.cache_clear()  # the removed users' ids must not be reused for tokens


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


def _delete(sm: Any, spec: Spec) -> None:
    from airflow.providers.fab.auth_manager.models import Group

    for name in spec.get("groups", {}):
        group = sm.session.query(Group).filter_by(name=name).one_or_none()
        if group is not None:
            sm.session.delete(group)
    sm.session.commit()
    for username in spec.get("users", {}):
        user = sm.find_user(username=username)
        if user is not None:
            sm.session.delete(user)
    sm.session.commit()
    for name in spec.get("roles", {}):
        role = sm.find_role(name)
        if role is not None:
            sm.session.delete(role)
    sm.session.commit()


def main(argv: list[str]) -> None:
    from plugins.officeflow_auth.roles import security_manager

    command, spec = argv[0], json.loads(argv[1])
    with security_manager() as sm:
        (_create if command == "create" else _delete)(sm, spec)


if __name__ == "__main__":
    main(sys.argv[1:])
