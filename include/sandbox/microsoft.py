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
include/sandbox/microsoft_calendar.py.

Seed: every Microsoft group of include/identity/groups.yaml (by displayName) with a stable GUID.
State (``GET /_sandbox/state/microsoft``): ``users`` and ``groups`` by id (a group's ``members`` is a
list of user ids), ``deletedItems`` by id. Passwords are never stored, only that one was set.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from include.sandbox.core import (
    Credentials,
    SandboxError,
    SandboxState,
    Service,
    bearer_token,
    issue_token,
    service_root,
)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TOKEN_TTL = 3599
_NAMESPACE = uuid.UUID("6f1c1f5e-4f7e-4d53-9a55-0ff1cef10f00")

USER_DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                       "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
USER_PROPERTIES = frozenset({*USER_DEFAULT_SELECT, "accountEnabled", "department", "employeeId", "mailNickname",
                             "createdDateTime", "signInSessionsValidFromDateTime", "lastPasswordChangeDateTime",
                             "usageLocation", "companyName", "city", "country", "userType", "passwordProfile"})
USER_WRITABLE = frozenset({"accountEnabled", "department", "jobTitle", "givenName", "surname", "displayName",
                           "employeeId", "officeLocation", "mobilePhone", "businessPhones", "usageLocation",
                           "companyName", "city", "country", "mail", "mailNickname", "passwordProfile",
                           "preferredLanguage", "userPrincipalName"})
USER_FILTERABLE = frozenset({"id", "userPrincipalName", "mail", "displayName", "mailNickname", "employeeId",
                             "accountEnabled"})
GROUP_DEFAULT_SELECT = ("id", "displayName", "description", "mail", "mailEnabled", "mailNickname",
                        "securityEnabled", "groupTypes", "createdDateTime", "visibility")
GROUP_PROPERTIES = frozenset(GROUP_DEFAULT_SELECT)
GROUP_FILTERABLE = frozenset({"id", "displayName", "mailNickname", "mail"})
MAIL_NICKNAME_FORBIDDEN = set('@()\\[]";:<>, ')
MEMBER_EXISTS = ("One or more added object references already exist for the following modified properties: "
                 "'members'.")

router = APIRouter(tags=["microsoft"])


# --- error shapes -------------------------------------------------------------------------------

_GRAPH_CODES = {400: "Request_BadRequest", 401: "InvalidAuthenticationToken", 403: "Authorization_RequestDenied",
                404: "Request_ResourceNotFound", 405: "Request_BadRequest", 409: "Request_BadRequest",
                429: "TooManyRequests", 500: "generalException", 502: "badGateway", 503: "serviceNotAvailable",
                504: "gatewayTimeout"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    """Graph's error shape, unless the route built the body itself (the token endpoint's AAD shape)."""
    if exc.body is not None:
        return exc.body, {}
    code = exc.reason if exc.reason and exc.reason != "injected" else _GRAPH_CODES.get(exc.status, "UnknownError")
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": exc.message,
                      "innerError": {"date": _now(), "request-id": request_id, "client-request-id": request_id}}}
    headers = {"request-id": request_id}
    if exc.status == 401:
        headers["WWW-Authenticate"] = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                       f'common/oauth2/authorize", client_id="{GRAPH_APP_ID}"')
    return body, headers


def aad_error(status: int, error: str, code: int, description: str) -> SandboxError:
    trace = str(uuid.uuid4())
    correlation = str(uuid.uuid4())
    text = (f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}")
    body = {"error": error, "error_description": text, "error_codes": [code], "timestamp": _now().replace("T", " "),
            "trace_id": trace, "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    return SandboxError(status, text, reason=error, body=body)


# --- identity platform ----------------------------------------------------------------------------

def _tenant_ok(tenant: str, credentials: Credentials) -> bool:
    return tenant.lower() in {credentials.microsoft_tenant.lower(), credentials.microsoft_domain.lower()}


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str, request: Request) -> dict[str, Any]:
    credentials: Credentials = request.app.state.credentials
    if not _tenant_ok(tenant, credentials):
        raise aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have "
                        "the correct tenant ID and are signing into the correct cloud.")
    base = f"{service_root(request, 'microsoft')}/{credentials.microsoft_tenant}"
    return {
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }


@router.post("/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> dict[str, Any]:
    """The client-credentials grant, checked against ``credentials.microsoft_clients``."""
    credentials: Credentials = request.app.state.credentials
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'grant_type'.")
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise aad_error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                            "required for the 'client_credentials' grant type.") from None
        client_id, client_secret = unquote(user), unquote(password)
    if not _tenant_ok(tenant, credentials):
        raise aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you have "
                        "the correct tenant ID and are signing into the correct cloud.")
    grant_type = fields.get("grant_type")
    if not grant_type:
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'grant_type'.")
    if grant_type != "client_credentials":
        raise aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                        f"'{grant_type}'.")
    if not client_id:
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'client_id'.")
    if client_id not in credentials.microsoft_clients:
        raise aad_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not "
                        f"found in the directory '{credentials.microsoft_domain}'. This can happen if the "
                        "application has not been installed by the administrator of the tenant or consented to "
                        "by any user in the tenant. You may have sent your authentication request to the wrong "
                        "tenant.")
    if not client_secret:
        raise aad_error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                        "required for the 'client_credentials' grant type.")
    if not secrets.compare_digest(client_secret, credentials.microsoft_clients[client_id]):
        raise aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                        "sent in the request is the client secret value, not the client secret ID, for a secret "
                        f"added to app '{client_id}'.")
    scope = fields.get("scope")
    if not scope:
        raise aad_error(400, "invalid_request", 90014, "The required field 'scope' is missing from the credential. "
                        "Ensure that you have all the necessary parameters for the login request.")
    if scope.strip() != GRAPH_SCOPE:
        raise aad_error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client "
                        "credential flows must have a scope value with /.default suffixed to the resource "
                        "identifier (application ID URI).")
    state: SandboxState = request.app.state.sandbox
    access_token = issue_token(state, {"service": "microsoft", "client_id": client_id,
                                       "tenant": credentials.microsoft_tenant, "scope": scope}, ttl=TOKEN_TTL)
    return {"token_type": "Bearer", "expires_in": TOKEN_TTL, "ext_expires_in": TOKEN_TTL,
            "access_token": access_token}


# --- Graph: plumbing ------------------------------------------------------------------------------

def _authorize(request: Request) -> dict[str, Any]:
    state: SandboxState = request.app.state.sandbox
    token_value = bearer_token(request)
    if not token_value:
        raise SandboxError(401, "Access token is empty.")
    with state.lock:
        grant = state.tokens.get(token_value)
    if grant is None:
        raise SandboxError(401, "Access token validation failure. Invalid audience.")
    if grant["expires_at"] < datetime.now(UTC).timestamp():
        raise SandboxError(401, "Lifetime validation failed, the token is expired.")
    if grant.get("service") != "microsoft":
        raise SandboxError(401, "Access token validation failure. Invalid audience.")
    return grant


def _ms(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    _authorize(request)
    state: SandboxState = request.app.state.sandbox
    data = state.of("microsoft")
    data.setdefault("users", {})
    data.setdefault("groups", {})
    data.setdefault("deletedItems", {})
    return state, data


def _graph_base(request: Request) -> str:
    return f"{service_root(request, 'microsoft')}/v1.0"


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        raise SandboxError(400, "Empty Payload. JSON content expected.")
    try:
        body = json.loads(raw)
    except ValueError:
        raise SandboxError(400, "Unable to read JSON request payload. Please ensure Content-Type header is set "
                           "and payload is of valid JSON format.") from None
    if not isinstance(body, dict):
        raise SandboxError(400, "Unable to read JSON request payload. Please ensure Content-Type header is set "
                           "and payload is of valid JSON format.")
    return body


def _find_user(data: dict[str, Any], key: str) -> dict[str, Any]:
    """By object id or userPrincipalName (case-insensitive), as ``/users/{id | userPrincipalName}``."""
    users: dict[str, dict[str, Any]] = data["users"]
    if key in users:
        return users[key]
    folded = key.casefold()
    for user in users.values():
        if user["id"].casefold() == folded or user["userPrincipalName"].casefold() == folded:
            return user
    raise SandboxError(404, f"Resource '{key}' does not exist or one of its queried reference-property objects "
                       "are not present.")


def _find_group(data: dict[str, Any], group_id: str) -> dict[str, Any]:
    group = data["groups"].get(group_id) or next(
        (g for g in data["groups"].values() if g["id"].casefold() == group_id.casefold()), None)
    if group is None:
        raise SandboxError(404, f"Resource '{group_id}' does not exist or one of its queried reference-property "
                           "objects are not present.")
    return group  # type: ignore[no-any-return]


_EQ = re.compile(r"^\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(true|false))\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*(\w+)\s+in\s+\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _parse_filter(expression: str, filterable: frozenset[str], resource: str) -> tuple[str, list[Any]]:
    """``prop eq 'v'``, ``prop eq true`` or ``prop in ('a', 'b')``: the subset OfficeFlow relies on."""
    if match := _EQ.match(expression):
        prop, text, boolean = match.groups()
        values: list[Any] = [text.replace("''", "'")] if text is not None else [boolean.lower() == "true"]
    elif match := _IN.match(expression):
        prop = match.group(1)
        inner = match.group(2)
        values = [v.replace("''", "'") for v in _QUOTED.findall(inner)]
        if not values or _QUOTED.sub("", inner).replace(",", "").strip():
            raise SandboxError(400, f"Invalid filter clause: syntax error in '{expression}'.")
    else:
        raise SandboxError(400, f"Invalid filter clause: the sandbox supports 'eq' and 'in' only ('{expression}').",
                           reason="Request_UnsupportedQuery")
    canonical = {p.lower(): p for p in filterable}
    if prop.lower() not in canonical:
        raise SandboxError(400, f"Unsupported or invalid query filter clause specified for property '{prop}' of "
                           f"resource '{resource}'.", reason="Request_UnsupportedQuery")
    return canonical[prop.lower()], values


def _matches(item: dict[str, Any], prop: str, values: list[Any]) -> bool:
    current = item.get(prop)
    if isinstance(current, bool) or current is None:
        return current in values
    return str(current).casefold() in {str(v).casefold() for v in values}


def _select(request: Request, known: frozenset[str], default: tuple[str, ...], type_name: str) -> tuple[str, ...]:
    raw = request.query_params.get("$select")
    if not raw:
        return default
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    canonical = {k.lower(): k for k in known}
    for name in names:
        if name.lower() not in canonical:
            raise SandboxError(400, f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.")
    return tuple(dict.fromkeys(["id", *(canonical[n.lower()] for n in names)]))


def _project(item: dict[str, Any], fields: tuple[str, ...], odata_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.type": odata_type} if odata_type else {}
    for name in fields:
        value = item.get(name)
        if name == "passwordProfile":
            value = None  # write-only
        out[name] = value
    return out


def _skip_offset(request: Request) -> int:
    token_value = request.query_params.get("$skiptoken")
    if not token_value:
        return 0
    try:
        padded = token_value + "=" * (-len(token_value) % 4)
        offset = int(json.loads(base64.urlsafe_b64decode(padded))["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SandboxError(400, "'$skiptoken' is invalid.") from None
    return max(0, offset)


def _top(request: Request, default: int = 100, maximum: int = 999) -> int:
    raw = request.query_params.get("$top")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxError(400, f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} "
                           "inclusive.") from None
    if not 1 <= value <= maximum:
        raise SandboxError(400, f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.")
    return value


def _collection(request: Request, items: list[dict[str, Any]], *, context: str,
                fields: tuple[str, ...] | None, odata_type: str | None = None) -> dict[str, Any]:
    """One page of ``items`` with ``@odata.nextLink`` (the query plus an opaque ``$skiptoken``)."""
    offset, limit = _skip_offset(request), _top(request)
    chunk = items[offset:offset + limit]
    body: dict[str, Any] = {"@odata.context": f"{_graph_base(request)}/$metadata#{context}"}
    nxt = offset + limit
    if nxt < len(items):
        params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
        params["$skiptoken"] = base64.urlsafe_b64encode(json.dumps({"o": nxt}).encode()).decode().rstrip("=")
        path = request.url.path.removeprefix("/microsoft")
        body["@odata.nextLink"] = f"{service_root(request, 'microsoft')}{path}?{urlencode(params, safe='$,()')}"
    body["value"] = [_project(i, fields, odata_type) if fields else i for i in chunk]
    return body


# --- Graph: users -----------------------------------------------------------------------------------

def _complex_password(password: str) -> bool:
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    return 8 <= len(password) <= 256 and sum(classes) >= 3


@router.post("/v1.0/users", status_code=201)
async def create_user(request: Request) -> JSONResponse:
    state, data = _ms(request)
    credentials: Credentials = request.app.state.credentials
    body = await _json_body(request)
    for key in body:
        if key not in USER_WRITABLE and not key.startswith("@"):
            raise SandboxError(400, f"Property '{key}' does not exist as a declared property or extension property.")
    for name in ("accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName"):
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise SandboxError(400, f"Property {name} value is required but is empty or missing.")
    profile = body["passwordProfile"]
    if not isinstance(profile, dict) or not str(profile.get("password") or "").strip():
        raise SandboxError(400, "Property passwordProfile.password value is required but is empty or missing.")
    if not isinstance(body["accountEnabled"], bool):
        raise SandboxError(400, "Invalid value specified for property 'accountEnabled' of resource 'User'.")
    upn = str(body["userPrincipalName"])
    local, at, domain = upn.rpartition("@")
    if not at or not local or domain.lower() != credentials.microsoft_domain.lower():
        raise SandboxError(400, "The domain portion of the userPrincipalName property is invalid. You must use one "
                           "of the verified domain names in your organization.")
    nickname = str(body["mailNickname"])
    if any(c in MAIL_NICKNAME_FORBIDDEN or ord(c) > 127 for c in nickname) or len(nickname) > 64:
        raise SandboxError(400, "Invalid value specified for property 'mailNickname' of resource 'User'.")
    if not _complex_password(str(profile["password"])):
        raise SandboxError(400, "The specified password does not comply with password complexity requirements. "
                           "Please provide a different password.")
    with state.lock:
        if any(u["userPrincipalName"].casefold() == upn.casefold() for u in data["users"].values()):
            raise SandboxError(400, "Another object with the same value for property userPrincipalName already "
                               "exists.")
        now = _now()
        user: dict[str, Any] = {name: None for name in USER_DEFAULT_SELECT}
        user.update({"businessPhones": [], "department": None, "employeeId": None, "mail": None, "userType": "Member",
                     "usageLocation": None, "companyName": None, "city": None, "country": None})
        user.update({k: v for k, v in body.items() if k in USER_WRITABLE and k != "passwordProfile"})
        user.update({"id": str(uuid.uuid4()), "userPrincipalName": upn, "createdDateTime": now,
                     "lastPasswordChangeDateTime": now, "signInSessionsValidFromDateTime": now,
                     "passwordProfile": {"forceChangePasswordNextSignIn":
                                         bool(profile.get("forceChangePasswordNextSignIn", True))}})
        data["users"][user["id"]] = user
    payload = {"@odata.context": f"{_graph_base(request)}/$metadata#users/$entity",
               **_project(user, USER_DEFAULT_SELECT)}
    return JSONResponse(status_code=201, content=payload,
                        headers={"Location": f"{_graph_base(request)}/users/{user['id']}"})


@router.get("/v1.0/users")
def list_users(request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        users = list(data["users"].values())  # creation order, stable across pages
        if expression := request.query_params.get("$filter"):
            prop, values = _parse_filter(expression, USER_FILTERABLE, "User")
            users = [u for u in users if _matches(u, prop, values)]
        return _collection(request, users, context="users", fields=fields)


@router.get("/v1.0/users/{key}")
def get_user(key: str, request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        user = _find_user(data, key)
        return {"@odata.context": f"{_graph_base(request)}/$metadata#users/$entity", **_project(user, fields)}


@router.patch("/v1.0/users/{key}", status_code=204)
async def update_user(key: str, request: Request) -> Response:
    state, data = _ms(request)
    body = await _json_body(request)
    for name, value in body.items():
        if name not in USER_WRITABLE:
            raise SandboxError(400, f"Property '{name}' does not exist as a declared property or extension property.")
        if name == "accountEnabled" and not isinstance(value, bool):
            raise SandboxError(400, "Invalid value specified for property 'accountEnabled' of resource 'User'.")
        if name in ("displayName", "userPrincipalName", "mailNickname") and not str(value or "").strip():
            raise SandboxError(400, f"Invalid value specified for property '{name}' of resource 'User'.")
    with state.lock:
        user = _find_user(data, key)
        if "userPrincipalName" in body and any(
                u["userPrincipalName"].casefold() == str(body["userPrincipalName"]).casefold() and u is not user
                for u in data["users"].values()):
            raise SandboxError(400, "Another object with the same value for property userPrincipalName already "
                               "exists.")
        profile = body.pop("passwordProfile", None)
        user.update(body)
        if isinstance(profile, dict) and profile.get("password"):
            user["lastPasswordChangeDateTime"] = _now()
            user["passwordProfile"] = {"forceChangePasswordNextSignIn":
                                       bool(profile.get("forceChangePasswordNextSignIn", True))}
    return Response(status_code=204)


@router.delete("/v1.0/users/{key}", status_code=204)
def delete_user(key: str, request: Request) -> Response:
    state, data = _ms(request)
    with state.lock:
        user = _find_user(data, key)
        del data["users"][user["id"]]
        for group in data["groups"].values():
            if user["id"] in group["members"]:
                group["members"].remove(user["id"])
        data["deletedItems"][user["id"]] = {**user, "deletedDateTime": _now()}
    return Response(status_code=204)


@router.post("/v1.0/users/{key}/revokeSignInSessions")
def revoke_sign_in_sessions(key: str, request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    with state.lock:
        user = _find_user(data, key)
        user["signInSessionsValidFromDateTime"] = _now()
        user["revokeSignInSessionsCount"] = user.get("revokeSignInSessionsCount", 0) + 1
    return {"@odata.context": f"{_graph_base(request)}/$metadata#Edm.Boolean", "value": True}


@router.get("/v1.0/users/{key}/memberOf")
def member_of(key: str, request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        user = _find_user(data, key)
        groups = sorted((g for g in data["groups"].values() if user["id"] in g["members"]),
                        key=lambda g: (g["displayName"].casefold(), g["id"]))
        return _collection(request, groups, context="directoryObjects", fields=fields,
                           odata_type="#microsoft.graph.group")


# --- Graph: groups ----------------------------------------------------------------------------------

@router.get("/v1.0/groups")
def list_groups(request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        groups = sorted(data["groups"].values(), key=lambda g: (g["displayName"].casefold(), g["id"]))
        if expression := request.query_params.get("$filter"):
            prop, values = _parse_filter(expression, GROUP_FILTERABLE, "Group")
            groups = [g for g in groups if _matches(g, prop, values)]
        return _collection(request, groups, context="groups", fields=fields)


@router.post("/v1.0/groups", status_code=201)
async def create_group(request: Request) -> JSONResponse:
    """A security group (tests use it for groups outside the mapping)."""
    state, data = _ms(request)
    body = await _json_body(request)
    for name in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise SandboxError(400, f"Property {name} value is required but is empty or missing.")
    for key in body:
        if (key not in GROUP_PROPERTIES and not key.startswith("@")) or key in ("id", "createdDateTime"):
            raise SandboxError(400, f"Property '{key}' does not exist as a declared property or extension property.")
    with state.lock:
        group: dict[str, Any] = {name: None for name in GROUP_DEFAULT_SELECT}
        group.update({"groupTypes": [], **body, "id": str(uuid.uuid4()), "createdDateTime": _now(), "members": []})
        data["groups"][group["id"]] = group
    return JSONResponse(status_code=201, content={"@odata.context": f"{_graph_base(request)}/$metadata#groups/$entity",
                                                  **_project(group, GROUP_DEFAULT_SELECT)})


@router.get("/v1.0/groups/{group_id}")
def get_group(group_id: str, request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        group = _find_group(data, group_id)
        return {"@odata.context": f"{_graph_base(request)}/$metadata#groups/$entity", **_project(group, fields)}


@router.get("/v1.0/groups/{group_id}/members")
def group_members(group_id: str, request: Request) -> dict[str, Any]:
    state, data = _ms(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        group = _find_group(data, group_id)
        users = [data["users"][uid] for uid in group["members"] if uid in data["users"]]
        return _collection(request, users, context="directoryObjects", fields=fields,
                           odata_type="#microsoft.graph.user")


_REF = re.compile(r"/(?:directoryObjects|users)/([^/?#]+)/?$", re.IGNORECASE)


@router.post("/v1.0/groups/{group_id}/members/$ref", status_code=204)
async def add_member(group_id: str, request: Request) -> Response:
    state, data = _ms(request)
    body = await _json_body(request)
    reference = body.get("@odata.id")
    match = _REF.search(str(reference or ""))
    if not reference or not match:
        raise SandboxError(400, "Invalid object identifier '" + str(reference or "") + "'.")
    member_id = unquote(match.group(1))
    with state.lock:
        group = _find_group(data, group_id)
        user = data["users"].get(member_id)
        if user is None:
            raise SandboxError(404, f"Resource '{member_id}' does not exist or one of its queried reference-property "
                               "objects are not present.")
        if user["id"] in group["members"]:
            raise SandboxError(400, MEMBER_EXISTS)
        group["members"].append(user["id"])
    return Response(status_code=204)


@router.delete("/v1.0/groups/{group_id}/members/{member_id}/$ref", status_code=204)
def remove_member(group_id: str, member_id: str, request: Request) -> Response:
    state, data = _ms(request)
    with state.lock:
        group = _find_group(data, group_id)
        if member_id not in group["members"]:
            raise SandboxError(404, f"Resource '{member_id}' does not exist or one of its queried reference-property "
                               "objects are not present.")
        group["members"].remove(member_id)
    return Response(status_code=204)


# --- seed, credentials --------------------------------------------------------------------------------

def group_id_for(display_name: str) -> str:
    """The seeded group's stable object id."""
    return str(uuid.uuid5(_NAMESPACE, f"group:{display_name}"))


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    from include.officeflow.identity import DEFAULT_GROUPS_FILE, load_group_mapping

    names = sorted(load_group_mapping(DEFAULT_GROUPS_FILE).of("microsoft").managed())
    data["users"] = {}
    data["deletedItems"] = {}
    data["groups"] = {}
    for name in names:
        nickname = re.sub(r"[^A-Za-z0-9]", "", name).lower() or "group"
        group_id = group_id_for(name)
        data["groups"][group_id] = {
            "id": group_id, "displayName": name, "description": f"{name} (OfficeFlow sandbox)", "mail": None,
            "mailEnabled": False, "mailNickname": nickname, "securityEnabled": True, "groupTypes": [],
            "createdDateTime": "2024-01-01T00:00:00Z", "visibility": None, "members": [],
        }


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """An app registration (client id + secret) in a tenant; the msgraph connection that uses it.

    The connection is the microsoft-azure provider's ``msgraph`` type, pointed at the sandbox's TLS
    listener (azure-identity refuses non-https authorities), where this service is also served at the
    root: authority ``<tls base>`` (token endpoint ``<tls base>/{tenant}/oauth2/v2.0/token``, as msal's
    token cache expects the tenant first in the path), Graph base URL ``<tls base>/v1.0/``, ``verify`` =
    the sandbox CA, instance discovery off (there is no ``login.microsoftonline.com`` to ask), and the
    token sent only to the sandbox host.
    """
    if not credentials.tls_base_url or not credentials.tls_ca_file:
        raise ValueError("the Microsoft emulation needs the sandbox's TLS listener: generate the credentials "
                         "with a TLS base URL (--tls-base-url) and start the sandbox with --tls-port")
    client_id = str(uuid.uuid4())
    secret = secrets.token_urlsafe(30)
    credentials.microsoft_tenant = str(uuid.uuid5(_NAMESPACE, f"tenant:{base_url}"))
    credentials.microsoft_clients[client_id] = secret
    root = credentials.tls_base_url  # Microsoft is served at the root of the TLS listener
    return {"officeflow_microsoft": {
        "conn_type": "msgraph",
        "login": client_id,
        "password": secret,
        "extra": {
            "tenant_id": credentials.microsoft_tenant,
            "authority": root,
            "disable_instance_discovery": True,
            "api_version": "v1.0",
            "base_url": f"{root}/v1.0/",
            "scopes": GRAPH_SCOPE,
            "verify": credentials.tls_ca_file,
            "allowed_hosts": urlsplit(root).hostname,
        },
    }}


# Calendar (include/sandbox/microsoft_calendar.py): same token endpoint, auth, state and TLS root.
from include.sandbox.microsoft_calendar import router as _calendar_router  # noqa: E402

router.include_router(_calendar_router)

service = Service("microsoft", router, render_error, seed)
