"""Authorization for OfficeFlow's management APIs, through Airflow's auth manager.

Mounted plugin apps inherit no authentication, so every non-webhook route declares
``Depends(authorized(...))``. A caller needs an Airflow JWT (``POST /auth/token``) and must be
allowed the OfficeFlow custom view *and* the same method on Airflow connections: webhook endpoints
hold credentials, so whoever may manage connections may manage them (with the Simple auth manager
this means role ``op`` or ``admin`` for writes; with FAB, the roles granting both permissions).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends

from plugins.officeflow_gateway.errors import ApiError

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

RESOURCE_ENDPOINTS = "OfficeFlow Webhook Endpoints"
RESOURCE_EVENTS = "OfficeFlow Webhook Events"
RESOURCE_WORKFLOWS = "OfficeFlow Workflows"
Method = Literal["GET", "POST", "PUT", "DELETE"]


def authorized(method: Method, resource_name: str) -> Callable[..., Awaitable[BaseUser]]:
    """A dependency returning the caller if the auth manager allows ``method`` on the resource."""

    async def check(user: GetUserDep) -> BaseUser:
        from airflow.api_fastapi.app import get_auth_manager

        manager = get_auth_manager()
        allowed = manager.is_authorized_custom_view(method=method, resource_name=resource_name, user=user)
        allowed = allowed and manager.is_authorized_connection(method=method, user=user)
        if not allowed:
            raise ApiError(403, "forbidden", f"{method} on {resource_name} is not allowed for this user")
        return user

    return check


ReadEndpoints = Annotated[Any, Depends(authorized("GET", RESOURCE_ENDPOINTS))]
CreateEndpoints = Annotated[Any, Depends(authorized("POST", RESOURCE_ENDPOINTS))]
EditEndpoints = Annotated[Any, Depends(authorized("PUT", RESOURCE_ENDPOINTS))]
DeleteEndpoints = Annotated[Any, Depends(authorized("DELETE", RESOURCE_ENDPOINTS))]
ReadEvents = Annotated[Any, Depends(authorized("GET", RESOURCE_EVENTS))]
ReplayEvents = Annotated[Any, Depends(authorized("POST", RESOURCE_EVENTS))]
ReadWorkflows = Annotated[Any, Depends(authorized("GET", RESOURCE_WORKFLOWS))]
CreateWorkflows = Annotated[Any, Depends(authorized("POST", RESOURCE_WORKFLOWS))]
EditWorkflows = Annotated[Any, Depends(authorized("PUT", RESOURCE_WORKFLOWS))]
DeleteWorkflows = Annotated[Any, Depends(authorized("DELETE", RESOURCE_WORKFLOWS))]
