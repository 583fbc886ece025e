"""Google Workspace emulation: the OAuth 2.0 token endpoint and the Admin SDK Directory API (v1).

Mounted under ``/google``; the real paths follow (``/google/token`` stands for
``https://oauth2.googleapis.com/token``, ``/google/admin/directory/v1/...`` for
``https://admin.googleapis.com/admin/directory/v1/...``), so google-auth and
google-api-python-client work unchanged with ``token_uri`` and ``api_endpoint`` pointed here.

What it covers, as the real services behave where OfficeFlow depends on it:

- **Token endpoint** (``POST /token``, JWT bearer grant of a service account): the assertion must be
  RS256-signed by the key registered for its ``iss`` (``Credentials.google_service_accounts``),
  ``aud`` the token URI, ``iat``/``exp`` at most an hour apart and not expired (5 min skew), a
  ``scope`` claim; a ``sub`` (domain-wide delegation) must be an existing user of the domain.
  Failures answer Google's OAuth errors (400 ``invalid_grant`` / ``invalid_scope`` /
  ``unsupported_grant_type``, 401 ``unauthorized_client`` when ``Credentials.extra
  ["google_delegation_scopes"]`` is set and a requested scope is not delegated).
- **Directory calls** need a bearer token from that endpoint (401 ``authError`` otherwise, 401
  ``required`` when missing), whose subject is an active admin (403 ``forbidden`` "Not Authorized
  to access this resource/api", as for a token without ``sub``), and the method's scope (403
  ``insufficientPermissions``). Users and groups outside the domain are 403 ``forbidden``.
- **users**: insert (required ``primaryEmail``, ``name.givenName``, ``name.familyName``,
  ``password`` -> 400 ``required``; malformed ones -> 400 ``invalid``; 409 ``duplicate`` "Entity
  already exists."), get by id or primary email (case-insensitive), list (``customer`` or
  ``domain`` required; ``query`` with ``email:``/``givenName:``/``familyName:``/``isSuspended=``/
  ``isAdmin=``/``orgDepartment:``/``orgTitle:``, ``*`` prefix match; ``orderBy``/``sortOrder``;
  ``maxResults`` 1-500, default 100, opaque ``pageToken``), patch and update (both merge, as
  the real ``update`` does; ``suspended`` sets ``suspensionReason``), delete (also drops its
  memberships), signOut (needs ``admin.directory.user.security``; counted in state ``sign_outs``).
  Passwords are kept only as a SHA-256 hash (state ``password_hashes``), never returned.
- **"User creation is not complete."**: for ``Credentials.extra["google_user_creation_seconds"]``
  (default 0.5 s) after an insert, patch/update/delete of the new user and members.insert of it
  answer **412 ``conditionNotMet``**, the status and reason the real API is reported to send
  (clients retry it).
- **groups**: get by id or email, list (``customer``/``domain``, or ``userKey`` for a user's
  direct groups; ``maxResults`` 1-200, default 200, paging). **members**: insert by ``email`` or
  ``id`` (400 "Missing required field: memberKey", 409 "Member already exists.", 404 for an
  unknown user of the domain; addresses of other domains become external members), get,
  hasMember, delete (404 "Resource Not Found: memberKey" when not a member), list (paging).
- Errors have Google's shape: ``{"error": {"code", "message", "errors": [{"message", "domain",
  "reason"}], "status"}}``; injected 429s say ``rateLimitExceeded``.
- **Calendar API v3** (``/calendar/v3/...``): see :mod:`sandbox.google.calendar`.
- Seed: the admin ``admin@<google_domain>`` (the delegation subject), the people team's
  ``people.manager@<google_domain>`` (approves and meets hires that name no manager, as in Slack's
  seed), and every Google group of include/identity/groups.yaml, with ids derived from their emails
  (stable across resets).

Modules: :mod:`~sandbox.google.common` (constants, error shape, ids, request helpers; imports no other
part), :mod:`~sandbox.google.oauth` (token endpoint, service account, connection),
:mod:`~sandbox.google.directory` (Directory API, seed) and :mod:`~sandbox.google.calendar`; this package
mounts their routers on one service.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.core import Service
from sandbox.google import calendar, directory, oauth
from sandbox.google.common import SCOPE, SERVICE, render_error
from sandbox.google.directory import seed
from sandbox.google.oauth import provision_credentials, service_account_key

router = APIRouter()
router.include_router(oauth.router)
router.include_router(directory.router)
router.include_router(calendar.router)  # Calendar shares the token endpoint, the users and the state

service = Service(SERVICE, router, render_error, seed)

__all__ = ["SCOPE", "SERVICE", "provision_credentials", "router", "seed", "service", "service_account_key"]
