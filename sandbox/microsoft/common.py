"""What the Microsoft emulation's parts share: constants, the error shapes (Graph's and the identity
platform's), Graph's auth, and request and paging helpers.

Imported by :mod:`sandbox.microsoft.oauth`, :mod:`sandbox.microsoft.directory` and
:mod:`sandbox.microsoft.calendar`; it imports none of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from sandbox.core import SandboxError, SandboxState, bearer_token, service_root

SERVICE = "microsoft"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
NAMESPACE = uuid.UUID("6f1c1f5e-4f7e-4d53-9a55-0ff1cef10f00")


# --- error shapes -------------------------------------------------------------------------------

_GRAPH_CODES = {400: "Request_BadRequest", 401: "InvalidAuthenticationToken", 403: "Authorization_RequestDenied",
                404: "Request_ResourceNotFound", 405: "Request_BadRequest", 409: "Request_BadRequest",
                429: "TooManyRequests", 500: "generalException", 502: "badGateway", 503: "serviceNotAvailable",
                504: "gatewayTimeout"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    """Graph's error shape, unless the route built the body itself (the token endpoint's AAD shape)."""
    if exc.body is not None:
        return exc.body, {}
    code = exc.reason if exc.reason and exc.reason != "injected" else _GRAPH_CODES.get(exc.status, "UnknownError")
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": exc.message,
                      "innerError": {"date": now_iso(), "request-id": request_id, "client-request-id": request_id}}}
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
    body = {"error": error, "error_description": text, "error_codes": [code], "timestamp": now_iso().replace("T", " "),
            "trace_id": trace, "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    return SandboxError(status, text, reason=error, body=body)


# --- Graph: plumbing ------------------------------------------------------------------------------

def authorize(request: Request) -> dict[str, Any]:
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


def graph_state(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    authorize(request)
    state: SandboxState = request.app.state.sandbox
    data = state.of("microsoft")
    data.setdefault("users", {})
    data.setdefault("groups", {})
    data.setdefault("deletedItems", {})
    return state, data


def graph_base(request: Request) -> str:
    return f"{service_root(request, 'microsoft')}/v1.0"


async def read_json(request: Request) -> dict[str, Any]:
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


def find_user(data: dict[str, Any], key: str) -> dict[str, Any]:
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


def find_group(data: dict[str, Any], group_id: str) -> dict[str, Any]:
    group = data["groups"].get(group_id) or next(
        (g for g in data["groups"].values() if g["id"].casefold() == group_id.casefold()), None)
    if group is None:
        raise SandboxError(404, f"Resource '{group_id}' does not exist or one of its queried reference-property "
                           "objects are not present.")
    return group  # type: ignore[no-any-return]

def project(item: dict[str, Any], fields: tuple[str, ...], odata_type: str | None = None) -> dict[str, Any]:
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


def collection(request: Request, items: list[dict[str, Any]], *, context: str,
                fields: tuple[str, ...] | None, odata_type: str | None = None) -> dict[str, Any]:
    """One page of ``items`` with ``@odata.nextLink`` (the query plus an opaque ``$skiptoken``)."""
    offset, limit = _skip_offset(request), _top(request)
    chunk = items[offset:offset + limit]
    body: dict[str, Any] = {"@odata.context": f"{graph_base(request)}/$metadata#{context}"}
    nxt = offset + limit
    if nxt < len(items):
        params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
        params["$skiptoken"] = base64.urlsafe_b64encode(json.dumps({"o": nxt}).encode()).decode().rstrip("=")
        path = request.url.path.removeprefix("/microsoft")
        body["@odata.nextLink"] = f"{service_root(request, 'microsoft')}{path}?{urlencode(params, safe='$,()')}"
    body["value"] = [project(i, fields, odata_type) if fields else i for i in chunk]
    return body
