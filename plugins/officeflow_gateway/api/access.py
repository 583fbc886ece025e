"""``/officeflow/api/v1/access``: who has which role and organization, and the admin's fixes (organization
membership, MFA reset, unlocking a throttled user). Users and roles are the auth manager's (FAB)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.auth import mfa, organizations, permissions, throttle
from plugins.officeflow_auth import fab
from plugins.officeflow_gateway.auth import Caller, EditAccess, ReadAccess
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/access", tags=["access"])

ORG_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class UserOut(BaseModel):
    username: str
    email: str | None
    active: bool
    roles: list[str]
    officeflow_roles: list[str]
    organizations: list[str]
    all_organizations: bool
    mfa_enrolled: bool
    last_login: str | None


class UserList(BaseModel):
    users: list[UserOut]
    roles: list[str] = Field(description="The OfficeFlow roles")


class OrganizationsIn(BaseModel):
    organizations: list[str] = Field(max_length=100)


def _user_out(user: Any, memberships: dict[str, list[str]]) -> UserOut:
    roles = sorted(role.name for role in user.roles)
    perms = {(perm.action.name, perm.resource.name) for role in user.roles for perm in role.permissions
             if perm.action and perm.resource}
    return UserOut(username=user.username, email=user.email, active=bool(user.active), roles=roles,
                   officeflow_roles=[r for r in roles if r in permissions.ROLES],
                   organizations=memberships.get(user.username, []),
                   all_organizations=("can_read", permissions.ALL_ORGANIZATIONS) in perms or "Admin" in roles,
                   mfa_enrolled=mfa.is_enrolled(user.username),
                   last_login=user.last_login.isoformat() if user.last_login else None)


@router.get("/users", response_model=UserList, summary="Users with their roles, organizations and MFA status")
async def list_users(caller: ReadAccess) -> UserList:
    def load() -> UserList:
        memberships = organizations.all_memberships()
        with fab.security_manager() as sm:
            users = [_user_out(u, memberships) for u in sm.get_all_users()]
        if caller.organizations is not None:  # an organization's auditor sees the members of its organizations
            users = [u for u in users if caller.organizations.intersection(u.organizations)]
        return UserList(users=sorted(users, key=lambda u: u.username), roles=list(permissions.ROLES))

    return await run_in_threadpool(load)


def _managed_user(username: str, caller: Caller) -> set[str]:
    """The organizations of the user ``caller`` manages; 404 when the user doesn't exist or, for an
    organization's admin, belongs to none of the caller's organizations (such a user stays hidden)."""
    with fab.security_manager() as sm:
        exists = sm.find_user(username=username) is not None
    memberships = organizations.of_user(username)
    if not exists or (caller.organizations is not None and not caller.only(memberships)):
        raise ApiError(404, "not_found", f"user {username!r} not found")
    return memberships


def _audit_access(action: str, caller: Caller, request: Request, username: str, organization_ids: Iterable[str],
                  **details: Any) -> None:
    """One record per organization concerned (each organization's auditors see the change), or one
    without an organization for a user who belongs to none."""
    concerned: list[str | None] = [*sorted(set(caller.only(organization_ids)))] or [None]
    for organization_id in concerned:
        audit(action, actor=caller.actor, resource_type="user", resource_id=username, outcome="success",
              correlation_id=correlation_id(request), source_ip=caller.source_ip,
              organization_id=organization_id, **details)


@router.put("/users/{username}/organizations", response_model=UserOut, summary="Set a user's organizations")
async def set_organizations(username: str, payload: OrganizationsIn, caller: EditAccess, request: Request) -> UserOut:
    import re

    bad = [org for org in payload.organizations if not re.match(ORG_PATTERN, org)]
    if bad:
        raise ApiError(422, "validation_error", f"organizations: {bad[0]!r} is not an organization id")
    for org in payload.organizations:
        caller.check_organization(org)

    def change() -> UserOut:
        with fab.security_manager() as sm:
            if sm.find_user(username=username) is None:
                raise ApiError(404, "not_found", f"user {username!r} not found")
        current = organizations.of_user(username)
        # A tenant admin changes only the memberships of the organizations they administer.
        keep_hidden = {org for org in current if not caller.sees(org)}
        added, removed = organizations.set_user(username, set(payload.organizations) | keep_hidden, by=caller.name)
        _audit_access("access.organizations_changed", caller, request, username, added | removed,
                      added=sorted(added), removed=sorted(removed))
        with fab.security_manager() as sm:
            return _user_out(sm.find_user(username=username), organizations.all_memberships())

    return await run_in_threadpool(change)


@router.delete("/users/{username}/mfa", status_code=204, summary="Remove a user's second factor (lost phone)")
async def reset_mfa(username: str, caller: EditAccess, request: Request) -> None:
    def reset() -> None:
        memberships = _managed_user(username, caller)
        if not mfa.reset(username):
            raise ApiError(404, "not_found", f"user {username!r} has no second factor")
        _audit_access("access.mfa_reset", caller, request, username, memberships)

    await run_in_threadpool(reset)


@router.post("/users/{username}/unlock", summary="Forget a user's failed logins (login throttling)")
async def unlock(username: str, caller: EditAccess, request: Request) -> dict[str, int]:
    def forget() -> dict[str, int]:
        memberships = _managed_user(username, caller)
        removed = throttle.reset(username=username)
        _audit_access("access.login_unlocked", caller, request, username, memberships, removed=removed)
        return {"failed_attempts_removed": removed}

    return await run_in_threadpool(forget)
