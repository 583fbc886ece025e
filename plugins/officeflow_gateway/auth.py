"""Authorization of OfficeFlow's management APIs, through Airflow's auth manager.

Mounted plugin apps inherit no authentication, so every non-webhook route declares a dependency made by
:func:`authorized`: the caller needs an Airflow JWT (``POST /auth/token``, or the UI's cookie) and the
auth manager must allow the method on the OfficeFlow resource (FAB: the permission ``can_read`` /
``can_create`` / ``can_edit`` / ``can_delete`` on e.g. "OfficeFlow Webhook Endpoints"). Roles are never
compared by name here.

The dependency returns a :class:`Caller`: the user, the organizations the user may see and act in (tenant
isolation: ``None`` = all, for holders of "OfficeFlow All Organizations"), and the client's address for the
audit log. A user whose role requires MFA and who has not enrolled gets 403 ``mfa_enrolment_required``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from include.officeflow.auth import organizations, permissions
from plugins.officeflow_auth.client_address import client_address
from plugins.officeflow_auth.second_factor import must_enrol, role_names
from plugins.officeflow_gateway.errors import ApiError

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

Method = Literal["GET", "POST", "PUT", "DELETE"]


def allows(user: Any, method: Method, resource: str) -> bool:
    """Whether the auth manager allows ``method`` on the OfficeFlow ``resource`` for ``user``."""
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().is_authorized_custom_view(method=method, resource_name=resource, user=user))


@dataclass(frozen=True)
class Caller:
    """An authorized caller of the management API."""

    user: Any
    name: str
    organizations: frozenset[str] | None  # None: every organization
    source_ip: str

    @property
    def actor(self) -> str:
        return f"user:{self.name}"

    def can(self, method: Method, resource: str) -> bool:
        return allows(self.user, method, resource)

    def sees(self, organization_id: str | None) -> bool:
        return self.organizations is None or organization_id in self.organizations

    def check_organization(self, organization_id: str, what: str = "organization") -> None:
        """403 when the caller may not act in ``organization_id`` (for objects the caller creates)."""
        if not self.sees(organization_id):
            raise ApiError(403, "forbidden_organization",
                           f"user {self.name!r} is not a member of {what} {organization_id!r}")

    def visible(self, organization_id: str | None, what: str, ident: str) -> None:
        """404 for an existing object in an organization the caller may not see (its existence stays hidden)."""
        if not self.sees(organization_id):
            raise ApiError(404, "not_found", f"{what} {ident!r} not found")

    def scope(self, column: Any) -> Any:
        """A WHERE clause limiting ``column`` (an organization_id column) to the caller's organizations."""
        from sqlalchemy import true

        return true() if self.organizations is None else column.in_(self.organizations)

    def only(self, organization_ids: Iterable[str]) -> list[str]:
        return [org for org in organization_ids if self.sees(org)]


def _organizations(user: Any) -> frozenset[str] | None:
    if allows(user, "GET", permissions.ALL_ORGANIZATIONS):
        return None
    return frozenset(organizations.of_user(user.get_name()))


async def caller_of(request: Request, user: BaseUser, *, check_mfa: bool = True) -> Caller:
    name = user.get_name()
    if check_mfa and await run_in_threadpool(must_enrol, name, role_names(user)):
        raise ApiError(403, "mfa_enrolment_required",
                       "your role requires two-factor sign-in: enrol first (POST /officeflow/api/v1/auth/mfa/setup)")
    orgs = await run_in_threadpool(_organizations, user)
    return Caller(user=user, name=name, organizations=orgs, source_ip=client_address(request))


def authorized(method: Method, resource_name: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency returning the :class:`Caller` if the auth manager allows ``method`` on the resource."""

    async def check(request: Request, user: GetUserDep) -> Caller:
        if not allows(user, method, resource_name):
            raise ApiError(403, "forbidden", f"{method} on {resource_name} is not allowed for this user")
        return await caller_of(request, user)

    return check


async def authenticated(request: Request, user: GetUserDep) -> Caller:
    """Any signed-in user (the auth API's own routes: me, MFA enrolment, logout); no MFA gate."""
    return await caller_of(request, user, check_mfa=False)


P = permissions
ReadEndpoints = Annotated[Caller, Depends(authorized("GET", P.ENDPOINTS))]
CreateEndpoints = Annotated[Caller, Depends(authorized("POST", P.ENDPOINTS))]
EditEndpoints = Annotated[Caller, Depends(authorized("PUT", P.ENDPOINTS))]
DeleteEndpoints = Annotated[Caller, Depends(authorized("DELETE", P.ENDPOINTS))]
ReadEvents = Annotated[Caller, Depends(authorized("GET", P.EVENTS))]
ReplayEvents = Annotated[Caller, Depends(authorized("POST", P.EVENTS))]
ReadWorkflows = Annotated[Caller, Depends(authorized("GET", P.WORKFLOWS))]
CreateWorkflows = Annotated[Caller, Depends(authorized("POST", P.WORKFLOWS))]
EditWorkflows = Annotated[Caller, Depends(authorized("PUT", P.WORKFLOWS))]
DeleteWorkflows = Annotated[Caller, Depends(authorized("DELETE", P.WORKFLOWS))]
ReadDocuments = Annotated[Caller, Depends(authorized("GET", P.DOCUMENTS))]
CreateDocuments = Annotated[Caller, Depends(authorized("POST", P.DOCUMENTS))]
EditDocuments = Annotated[Caller, Depends(authorized("PUT", P.DOCUMENTS))]
ReadEmail = Annotated[Caller, Depends(authorized("GET", P.EMAIL))]
CreateEmail = Annotated[Caller, Depends(authorized("POST", P.EMAIL))]
DeleteEmail = Annotated[Caller, Depends(authorized("DELETE", P.EMAIL))]
ReadAudit = Annotated[Caller, Depends(authorized("GET", P.AUDIT_LOG))]
ReadAccess = Annotated[Caller, Depends(authorized("GET", P.ACCESS))]
EditAccess = Annotated[Caller, Depends(authorized("PUT", P.ACCESS))]
ReadDashboard = Annotated[Caller, Depends(authorized("GET", P.DASHBOARD))]
SignedIn = Annotated[Caller, Depends(authenticated)]
