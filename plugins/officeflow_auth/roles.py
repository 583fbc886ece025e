"""OfficeFlow's roles in the FAB auth manager, kept in sync with ``include/officeflow/auth/permissions``,
and the user commands an operator needs without the UI.

    python -m plugins.officeflow_auth.roles sync
    python -m plugins.officeflow_auth.roles bootstrap [--admin admin] [--password-env OFFICEFLOW_ADMIN_PASSWORD]
    python -m plugins.officeflow_auth.roles create-user USER EMAIL ROLE [--password-env VAR] [--org ORG ...]
    python -m plugins.officeflow_auth.roles set-orgs USER ORG...
    python -m plugins.officeflow_auth.roles unlock [USER] [--address IP]
    python -m plugins.officeflow_auth.roles reset-mfa USER
    python -m plugins.officeflow_auth.roles service-user USER [--password-env VAR]

``sync`` is idempotent: each OfficeFlow role gets exactly its declared permissions besides the per-workflow
ones (``DAG:<id>`` / ``DAG Run:<id>``, which the dag-processor syncs from each DAG's ``access_control``).
``bootstrap`` is ``sync`` plus the first administrator (role Admin) when it does not exist yet, and the
``workflow_insights`` service user (``service-user officeflow-insights``) when
``OFFICEFLOW_INSIGHTS_API_PASSWORD`` is set: ``./run.sh migrate`` (so ``./run.sh dev``), docker compose's init
service and the Helm chart's migration job run it at every start or upgrade. ``set-orgs``, ``unlock`` and
``reset-mfa`` are audited with the actor ``cli:<OS user>``.
``service-user`` makes (or updates) a user of the :data:`RUN_HISTORY_READER` role with the password in ``VAR``:
the ``workflow_insights`` DAG's connection ``officeflow_airflow_api`` signs in as one (``./run.sh migrate``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from include.officeflow.audit import audit
from include.officeflow.auth import mfa, organizations, throttle
from include.officeflow.auth.passwords import PasswordPolicyError, check_password
from include.officeflow.auth.permissions import (
    CAN_READ,
    DAG_RUNS,
    DAGS,
    RESOURCES,
    ROLE_PERMISSIONS,
    ROLES,
    TASK_INSTANCES,
)

PER_WORKFLOW_PREFIXES = ("DAG:", "DAG Run:")
#: The role of service users that read the run history of every workflow through the REST API: runs and task
#: instances, nothing else (no logs, XComs, code, connections; not the UI). A role of its own rather than FAB's
#: Viewer, which also reads task logs and XComs (personal data of the HR workflows).
RUN_HISTORY_READER = "Run History Reader"
RUN_HISTORY_PERMISSIONS = ((CAN_READ, DAGS), (CAN_READ, DAG_RUNS), (CAN_READ, TASK_INSTANCES))


@contextmanager
def security_manager() -> Iterator[Any]:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        yield appbuilder.sm


def sync_roles(sm: Any) -> dict[str, int]:
    """Create the OfficeFlow resources and roles; set each role's permissions. Returns role -> count."""
    for resource in RESOURCES:
        sm.create_resource(resource)
    counts = {}
    for name in ROLES:
        role = sm.find_role(name) or sm.add_role(name)
        wanted = []
        for action, resource in dict.fromkeys(ROLE_PERMISSIONS[name]):
            permission = sm.create_permission(action, resource)
            if permission is None:
                raise RuntimeError(f"could not create permission {action} on {resource}")
            wanted.append(permission)
        per_workflow = [p for p in role.permissions
                        if p.resource and p.resource.name.startswith(PER_WORKFLOW_PREFIXES)]
        role.permissions = list(dict.fromkeys([*wanted, *per_workflow]))
        counts[name] = len(wanted)
    reader = sm.find_role(RUN_HISTORY_READER) or sm.add_role(RUN_HISTORY_READER)
    reader.permissions = [sm.create_permission(action, resource) for action, resource in RUN_HISTORY_PERMISSIONS]
    sm.session.commit()
    # Admin holds every permission that exists (FAB's rule); give it the new OfficeFlow ones now rather than
    # at the api-server's next start.
    sm.update_admin_permission()
    return counts


def create_user(sm: Any, username: str, email: str, role: str, password: str, *, first_name: str = "",
                last_name: str = "") -> Any:
    check_password(password, username=username)
    found = sm.find_role(role)
    if found is None:
        raise SystemExit(f"no role {role!r}; roles: {', '.join(r.name for r in sm.get_all_roles())}")
    if sm.find_user(username=username):
        raise SystemExit(f"user {username!r} exists")
    user = sm.add_user(username, first_name or username, last_name or "-", email, found, password)
    if not user:
        raise SystemExit(f"could not create user {username!r} (is {email!r} taken?)")
    return user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.officeflow_auth.roles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync", help="create or update the OfficeFlow roles")
    boot = commands.add_parser("bootstrap", help="sync the roles and create the first admin if missing")
    boot.add_argument("--admin", default="admin", help="the admin's user name (default %(default)s)")
    boot.add_argument("--email", default=os.environ.get("OFFICEFLOW_ADMIN_EMAIL", "admin@officeflow.local"),
                      help="the admin's e-mail (default: OFFICEFLOW_ADMIN_EMAIL or %(default)s)")
    boot.add_argument("--password-env", default="OFFICEFLOW_ADMIN_PASSWORD",
                      help="environment variable holding the admin's password (default %(default)s)")
    boot.add_argument("--service-user", default="officeflow-insights",
                      help="the workflow_insights service user, made or updated when --service-password-env is set "
                           "(default %(default)s)")
    boot.add_argument("--service-password-env", default="OFFICEFLOW_INSIGHTS_API_PASSWORD",
                      help="environment variable holding its password (default %(default)s; unset: no service user)")
    create = commands.add_parser("create-user", help="add a database user (password policy applies)")
    create.add_argument("username")
    create.add_argument("email")
    create.add_argument("role")
    create.add_argument("--password-env", default="OFFICEFLOW_NEW_USER_PASSWORD",
                        help="environment variable holding the password (default %(default)s)")
    create.add_argument("--org", action="append", default=[], help="organization membership (repeat)")
    create.add_argument("--if-missing", action="store_true", help="do nothing when the user exists")
    orgs = commands.add_parser("set-orgs", help="set a user's organizations (none: no access)")
    orgs.add_argument("username")
    orgs.add_argument("organizations", nargs="*")
    unlock = commands.add_parser("unlock", help="forget the failed logins of a user and/or a client address")
    unlock.add_argument("username", nargs="?")
    unlock.add_argument("--address", help="client address whose failed logins to forget")
    reset_mfa = commands.add_parser("reset-mfa", help="remove a user's second factor (lost phone)")
    reset_mfa.add_argument("username")
    service = commands.add_parser("service-user", help=f"create or update a {RUN_HISTORY_READER!r} user (the "
                                  "REST API's read-only client of the workflow_insights DAG)")
    service.add_argument("username")
    service.add_argument("--email", help="its e-mail (default <username>@officeflow.local)")
    service.add_argument("--password-env", default="OFFICEFLOW_INSIGHTS_API_PASSWORD",
                         help="environment variable holding its password (default %(default)s)")
    args = parser.parse_args(argv)

    if args.command in ("set-orgs", "unlock", "reset-mfa"):
        return _membership_command(args)
    if args.command == "create-user" and not args.if_missing:
        # Refuse a weak password before connecting to anything (create_user checks again).
        try:
            check_password(os.environ.get(args.password_env, ""), username=args.username)
        except PasswordPolicyError as exc:
            print(f"{args.password_env}: {exc}", file=sys.stderr)
            return 2
    with security_manager() as sm:
        if args.command in ("sync", "bootstrap"):
            for name, count in sync_roles(sm).items():
                print(f"role {name!r}: {count} permissions")
        if args.command == "sync":
            return 0
        if args.command == "service-user":
            return _service_user(sm, args)
        if args.command == "bootstrap":
            code = _first_admin(sm, args)
            if code == 0 and os.environ.get(args.service_password_env):
                code = _service_user(sm, argparse.Namespace(username=args.service_user, email=None,
                                                            password_env=args.service_password_env))
            return code
        if args.if_missing and sm.find_user(username=args.username):
            print(f"user {args.username!r} exists")
            return 0
        password = os.environ.get(args.password_env, "")
        try:
            create_user(sm, args.username, args.email, args.role, password)
        except PasswordPolicyError as exc:
            print(f"{args.password_env}: {exc}", file=sys.stderr)
            return 2
    if args.org:
        organizations.set_user(args.username, args.org, by="cli")
    print(f"user {args.username!r} created with role {args.role!r}")
    return 0


def _first_admin(sm: Any, args: argparse.Namespace) -> int:
    if sm.find_user(username=args.admin):
        print(f"admin {args.admin!r} exists")
        return 0
    password = os.environ.get(args.password_env, "")
    if not password:
        print(f"set {args.password_env} to create the admin {args.admin!r}", file=sys.stderr)
        return 2
    try:
        create_user(sm, args.admin, args.email, "Admin", password)
    except PasswordPolicyError as exc:
        print(f"{args.password_env}: {exc}", file=sys.stderr)
        return 2
    print(f"admin {args.admin!r} created")
    return 0


def _service_user(sm: Any, args: argparse.Namespace) -> int:
    """The service user with exactly the run-history role and the password from the environment: created, or
    brought back to that (a changed password in the environment is set again)."""
    password = os.environ.get(args.password_env, "")
    try:
        check_password(password, username=args.username)
    except PasswordPolicyError as exc:
        print(f"{args.password_env}: {exc}", file=sys.stderr)
        return 2
    sync_roles(sm)
    role = sm.find_role(RUN_HISTORY_READER)
    user = sm.find_user(username=args.username)
    if user is None:
        create_user(sm, args.username, args.email or f"{args.username}@officeflow.local", RUN_HISTORY_READER,
                    password)
        print(f"service user {args.username!r} created with role {RUN_HISTORY_READER!r}")
        return 0
    from werkzeug.security import check_password_hash

    changed = user.roles != [role] or not check_password_hash(user.password, password)
    if changed:
        user.roles = [role]
        sm.reset_password(user.id, password)
        sm.session.commit()
    print(f"service user {args.username!r} {'updated' if changed else 'up to date'}")
    return 0


def _cli_audit(action: str, username: str | None, organization_ids: Iterable[str], **details: Any) -> None:
    concerned: list[str | None] = [*sorted(set(organization_ids))] or [None]
    for organization_id in concerned:
        audit(action, actor=f"cli:{getpass.getuser()}", resource_type="user", resource_id=username,
              outcome="success", organization_id=organization_id, **details)


def _membership_command(args: argparse.Namespace) -> int:
    """set-orgs, unlock and reset-mfa: changes to OfficeFlow's store only, audited."""
    if args.command == "set-orgs":
        added, removed = organizations.set_user(args.username, args.organizations, by="cli")
        _cli_audit("access.organizations_changed", args.username, [*added, *removed],
                   added=sorted(added), removed=sorted(removed))
        print(f"{args.username}: added {sorted(added)}, removed {sorted(removed)}")
        return 0
    if args.command == "unlock":
        if not args.username and not args.address:
            print("name a user, an --address, or both", file=sys.stderr)
            return 2
        forgotten = throttle.reset(username=args.username, source_ip=args.address)
        _cli_audit("access.login_unlocked", args.username, organizations.of_user(args.username or ""),
                   removed=forgotten, **({"address": args.address} if args.address else {}))
        print(f"{' and '.join(filter(None, (args.username, args.address)))}: {forgotten} failed attempts forgotten")
        return 0
    if not mfa.reset(args.username):
        print(f"{args.username}: no second factor to remove")
        return 0
    _cli_audit("access.mfa_reset", args.username, organizations.of_user(args.username))
    print(f"{args.username}: second factor removed; the next sign-in enrols again where the role requires it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
