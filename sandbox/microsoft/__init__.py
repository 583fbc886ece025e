"""Microsoft Entra ID as OfficeFlow uses it: the identity platform token endpoint and Microsoft Graph.

Mounted under ``/microsoft``; the paths below it are the real ones. On the sandbox's TLS listener it
is also served at the root (``core.serve_at_root``), which is where the ``officeflow_microsoft``
connection points: azure-identity (the provider's ``KiotaRequestAdapterHook``) with authority
``https://127.0.0.1:<tls port>`` and Graph base ``https://127.0.0.1:<tls port>/v1.0/`` builds the same URLs
it would build against ``login.microsoftonline.com`` and ``graph.microsoft.com``. Links name the root
the request came in on.

Identity platform (errors in the AAD shape ``{error, error_description, error_codes, timestamp,
trace_id, correlation_id}``):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (OpenID discovery document);
- ``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant only. The client secret may come
  in the form (``client_secret_post``) or as HTTP Basic; ``scope`` must be
  ``https://graph.microsoft.com/.default``. Unknown tenant -> 400 AADSTS90002, unknown client -> 400
  ``unauthorized_client`` AADSTS700016, wrong secret -> 401 ``invalid_client`` AADSTS7000215, and so on.
  ``{tenant}`` is the tenant id or the verified domain, as Entra accepts.

Graph ``/v1.0`` (errors in Graph's ``{"error": {code, message, innerError}}`` shape; every call needs a
bearer token from the endpoint above, else 401 ``InvalidAuthenticationToken``):

- users: ``POST /users`` (required accountEnabled, displayName, mailNickname, passwordProfile.password,
  userPrincipalName in the verified domain; password complexity; an existing UPN is 400 "Another
  object with the same value for property userPrincipalName already exists."), ``GET /users/{id |
  userPrincipalName}`` (case-insensitive), ``GET /users`` with ``$filter`` (``eq`` / ``in`` on id,
  userPrincipalName, mail, displayName, mailNickname, employeeId, accountEnabled), ``$select``,
  ``$top`` (1-999, default 100) and ``@odata.nextLink`` paging with an opaque ``$skiptoken``;
  ``PATCH /users/{id}`` (204), ``DELETE /users/{id}`` (204, memberships go with it),
  ``POST /users/{id}/revokeSignInSessions`` (sets signInSessionsValidFromDateTime),
  ``GET /users/{id}/memberOf`` (paged).
  Without ``$select`` users have Graph's default property set (no accountEnabled, no department).
- groups: ``GET /groups`` (same query options), ``POST /groups`` (required displayName, mailEnabled,
  mailNickname, securityEnabled), ``GET /groups/{id}``, ``GET /groups/{id}/members``,
  ``POST /groups/{id}/members/$ref`` (``{"@odata.id": ".../directoryObjects/{id}"}``; an existing
  member is 400 "One or more added object references already exist ..."),
  ``DELETE /groups/{id}/members/{userId}/$ref`` (404 when not a member).

Calendar (``/users/{id}/calendar/getSchedule``, ``/users/{id}/events``, ``calendarView``, cancel): see
:mod:`sandbox.microsoft.calendar`.

Seed: every Microsoft group of include/identity/groups.yaml (by displayName) with a stable GUID.
State (``GET /_sandbox/state/microsoft``): ``users`` and ``groups`` by id (a group's ``members`` is a
list of user ids), ``deletedItems`` by id. Passwords are never stored, only that one was set.

Modules: :mod:`~sandbox.microsoft.common` (constants, error shapes, Graph auth, request and paging
helpers; imports no other part), :mod:`~sandbox.microsoft.oauth` (identity platform, app registration,
connection), :mod:`~sandbox.microsoft.directory` (Graph users and groups, seed) and
:mod:`~sandbox.microsoft.calendar`; this package mounts their routers on one service.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.core import Service
from sandbox.microsoft import calendar, directory, oauth
from sandbox.microsoft.common import GRAPH_SCOPE, SERVICE, render_error
from sandbox.microsoft.directory import MEMBER_EXISTS, group_id_for, seed
from sandbox.microsoft.oauth import provision_credentials

router = APIRouter()
router.include_router(oauth.router)
router.include_router(directory.router)
router.include_router(calendar.router)  # same token endpoint, auth, state and TLS root

service = Service(SERVICE, router, render_error, seed)

__all__ = ["GRAPH_SCOPE", "MEMBER_EXISTS", "SERVICE", "group_id_for", "provision_credentials", "router", "seed",
           "service"]
