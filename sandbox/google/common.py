"""What the Google emulation's parts share: constants, Google's error shape, stable ids, request helpers.

Imported by :mod:`sandbox.google.oauth`, :mod:`sandbox.google.directory` and
:mod:`sandbox.google.calendar`; it imports none of them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from sandbox.core import Credentials, SandboxError, SandboxState, bearer_token, grant_for

SERVICE = "google"
SCOPE = "https://www.googleapis.com/auth/"
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
          502: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
REASONS = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 409: "duplicate",
           412: "conditionNotMet", 429: "rateLimitExceeded"}
NOT_AUTHORIZED = "Not Authorized to access this resource/api"


# --- errors -----------------------------------------------------------------------------------------

def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    """Google's JSON error; the token endpoint's OAuth errors come ready-made in ``exc.body``."""
    if exc.body is not None:
        return exc.body, {}
    reason = exc.reason if exc.reason and exc.reason != "injected" else REASONS.get(exc.status, "backendError")
    detail: dict[str, Any] = {"message": exc.message,
                              "domain": "usageLimits" if "RateLimit" in reason or "rateLimit" in reason else "global",
                              "reason": reason}
    headers: dict[str, str] = {}
    if exc.status == 401:
        detail.update(location="Authorization", locationType="header")
        headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    return {"error": {"code": exc.status, "message": exc.message, "errors": [detail],
                      "status": STATUS.get(exc.status, "UNKNOWN")}}, headers


def oauth_error(status: int, error: str, description: str) -> SandboxError:
    return SandboxError(status, description, body={"error": error, "error_description": description})


def not_found(key: str) -> SandboxError:
    return SandboxError(404, f"Resource Not Found: {key}", reason="notFound")


def required(field: str) -> SandboxError:
    return SandboxError(400, f"Missing required field: {field}", reason="required")


def invalid(what: str) -> SandboxError:
    return SandboxError(400, f"Invalid Input: {what}", reason="invalid")


# --- ids ------------------------------------------------------------------------------------------

def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.lower().encode()).digest()[:16], "big")


def stable_user_id(email: str) -> str:
    """Google user ids are 21-digit numbers."""
    return f"1{_digest('user:' + email) % 10**20:020d}"


def stable_group_id(email: str) -> str:
    """Google group ids look like ``03ep43zb1ab2c3d``: 15 lower-case base-36 characters."""
    number, chars = _digest("group:" + email), []
    for _ in range(13):
        number, rest = divmod(number, 36)
        chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[rest])
    return "0" + str(number % 10) + "".join(chars)


def customer_id(domain: str) -> str:
    return f"C0{_digest('customer:' + domain) % 36**7:07x}"[:9]


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def etag(resource: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in resource.items() if k != "etag"}, sort_keys=True).encode()
    return '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode() + '"'


# --- request helpers --------------------------------------------------------------------------------

def state_of(request: Request) -> tuple[SandboxState, dict[str, Any], Credentials]:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox, sandbox.of(SERVICE), request.app.state.credentials


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise SandboxError(400, "Invalid JSON payload received. Unexpected token.", reason="parseError") from None
    if not isinstance(body, dict):
        raise SandboxError(400, "Invalid JSON payload received. Expected an object.", reason="parseError")
    return body


def bearer_grant(request: Request) -> dict[str, Any]:
    """The grant of the request's Google access token; 401 in Google's words without a valid one."""
    sandbox, _, _ = state_of(request)
    token = bearer_token(request)
    if token is None:
        raise SandboxError(401, "Request is missing required authentication credential. Expected OAuth 2 access "
                           "token, login cookie or other valid authentication credential.", reason="required")
    grant = grant_for(sandbox, token)
    if grant is None or grant.get("service") != SERVICE:
        raise SandboxError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                           "login cookie or other valid authentication credential.", reason="authError")
    return grant


def in_domain(email: str, credentials: Credentials) -> bool:
    return email.rpartition("@")[2].lower() == credentials.google_domain.lower()


def user_by_key(svc: dict[str, Any], key: str) -> dict[str, Any] | None:
    users: dict[str, dict[str, Any]] = svc["users"]
    if key in users:
        return users[key]
    folded = key.lower()
    for user in users.values():
        if user["primaryEmail"].lower() == folded or folded in (a.lower() for a in user.get("aliases", [])):
            return user
    return None


def group_by_key(svc: dict[str, Any], key: str) -> dict[str, Any] | None:
    groups: dict[str, dict[str, Any]] = svc["groups"]
    if key in groups:
        return groups[key]
    folded = key.lower()
    for group in groups.values():
        if group["email"].lower() == folded or folded in (a.lower() for a in group.get("aliases", [])):
            return group
    return None


def page_params(request: Request, *, default: int, maximum: int) -> tuple[int, int]:
    raw = request.query_params.get("maxResults")
    try:
        limit = int(raw) if raw is not None else default
    except ValueError:
        raise invalid("maxResults") from None
    if not 1 <= limit <= maximum:
        raise SandboxError(400, f"Invalid value '{raw}'. Values must be within the range: [1, {maximum}]",
                           reason="invalid")
    token = request.query_params.get("pageToken")
    if not token:
        return 0, limit
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid("pageToken") from None
    return offset, limit


def paged(kind: str, key: str, items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    """A list response as Google sends it: no item key when empty, ``nextPageToken`` while more remain."""
    chunk = items[offset:offset + limit]
    body: dict[str, Any] = {"kind": kind, "etag": etag({"items": [i.get("etag") for i in chunk]})}
    if chunk:
        body[key] = copy.deepcopy(chunk)
    if offset + limit < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return body


def no_content() -> Response:
    return Response(status_code=204)
