"""Okta emulation: the parts of the Okta Management API (``/api/v1``) that OfficeFlow calls.

Mounted under ``/okta``, so the org URL is ``<sandbox>/okta`` and paths are Okta's own
(``/okta/api/v1/users`` …). What it covers, and how closely:

- **Auth**: ``Authorization: SSWS <token>`` against ``Credentials.okta_tokens``; anything else is
  401 ``E0000011 Invalid token provided``.
- **Errors** in Okta's shape ``{errorCode, errorSummary, errorLink, errorId, errorCauses}``:
  E0000001 (validation, with ``errorCauses``; a duplicate login is ``login: An object with this
  field already exists in the current organization``), E0000003 (malformed body), E0000007 (not
  found), E0000011 (token), E0000016 (already active), E0000031 (bad search), E0000038 (not allowed
  in the user's current status), E0000047 (rate limit).
- **Rate limits**: ``X-Rate-Limit-Limit/-Remaining/-Reset`` (epoch seconds) on every response,
  counted per endpoint bucket per minute as Okta does; exceeding one answers 429 E0000047.
  ``Credentials.extra["okta_rate_limit_per_minute"]`` overrides every bucket's limit.
- **Users**: create (``activate``, ``nextLogin=changePassword``, ``credentials.password.value``
  checked against the default password policy, ``groupIds``; required ``login/email/firstName/
  lastName``, email-shaped login and email, Okta's base-profile attributes only, length limits);
  get by id, login (case-insensitive) or login short name; list with ``q`` (starts-with on
  firstName/lastName/email), ``search`` / ``filter`` (``eq``/``sw`` clauses joined by ``and``/``or``)
  and ``limit`` + ``after`` cursor paging through ``Link: <…>; rel="next"`` headers (a plain list and
  ``q`` leave DEPROVISIONED users out, as Okta does); partial update (POST) and replace (PUT),
  refused on DEPROVISIONED users (E0000038).
- **Lifecycle**: activate (STAGED/DEPROVISIONED → ACTIVE with a password, PROVISIONED without),
  deactivate (any status but DEPROVISIONED), suspend (ACTIVE only), unsuspend (SUSPENDED only);
  DELETE deactivates a user that is not DEPROVISIONED and deletes one that is (Okta's two-step
  delete); DELETE ``/users/{id}/sessions`` (recorded under ``session_revocations``).
- **Groups**: every Okta group of include/identity/groups.yaml is seeded as OKTA_GROUP with a
  stable id, plus the BUILT_IN ``Everyone`` group every user belongs to (its membership cannot be
  changed). List with ``q`` (starts-with on profile.name) / ``search`` and paging; get; create;
  a group's members; a user's groups; PUT/DELETE membership (204, idempotent; OKTA_GROUP only).

Not covered: OAuth 2.0 access tokens, factors, apps, group rules, the Events/System Log APIs,
asynchronous deactivation (``transitioningToStatus``), and e-mail delivery (``sendEmail`` only
changes the response body of activate).

State (``GET /_sandbox/state/okta``): ``users`` (id -> Okta user object), ``groups`` (id -> Okta
group object), ``memberships`` (group id -> user ids), ``session_revocations``, ``rate_limits``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from sandbox.core import Credentials, SandboxError, SandboxState, Service
from sandbox.groups import managed_groups

API = "/api/v1"
EVERYONE = "Everyone"
USERS_MAX_LIMIT = 200
GROUPS_MAX_LIMIT = 10_000

#: Okta's base user profile (Universal Directory); other attributes are refused.
BASE_PROFILE = frozenset({
    "login", "email", "secondEmail", "firstName", "lastName", "middleName", "honorificPrefix",
    "honorificSuffix", "title", "displayName", "nickName", "profileUrl", "primaryPhone", "mobilePhone",
    "streetAddress", "city", "state", "zipCode", "countryCode", "postalAddress", "preferredLanguage",
    "locale", "timezone", "userType", "employeeNumber", "costCenter", "organization", "division",
    "department", "managerId", "manager",
})
REQUIRED_PROFILE = ("login", "email", "firstName", "lastName")
MAX_LENGTH = {"login": 100, "email": 100, "secondEmail": 100, "firstName": 50, "lastName": 50}
EMAIL_ATTRIBUTES = ("login", "email", "secondEmail")
EMAIL_RE = re.compile(r"^[^@\s\"<>]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
                      r"[A-Za-z0-9])?)+$")
POLICY_MESSAGE = (
    "Password requirements were not met. Password requirements: at least 8 characters, "
    "a lowercase letter, an uppercase letter, a number, no parts of your username.")

#: Per-minute limits by endpoint bucket (Okta's defaults for a workforce org, rounded).
RATE_LIMITS: dict[str, int] = {
    "POST /api/v1/users": 600,
    "GET /api/v1/users": 600,
    "/api/v1/users/{id}": 600,
    "/api/v1/users/{id}/lifecycle": 600,
    "/api/v1/users/{id}/sessions": 600,
    "/api/v1/groups": 500,
    "/api/v1": 1200,
}

#: Okta's errorSummary for an error raised with a bare HTTP status (auth, injected faults).
DEFAULT_CODES: dict[int, tuple[str, str]] = {
    400: ("E0000001", "Api validation failed"),
    401: ("E0000011", "Invalid token provided"),
    403: ("E0000006", "You do not have permission to perform the requested action"),
    404: ("E0000007", "Not found: Resource not found"),
    405: ("E0000022", "The endpoint does not support the provided HTTP method"),
    429: ("E0000047", "API call exceeded rate limit due to too many requests."),
    500: ("E0000009", "Internal Server Error"),
}


# --- errors -------------------------------------------------------------------------------------

def okta_error(status: int, code: str, summary: str, causes: list[str] | None = None,
               headers: dict[str, str] | None = None) -> SandboxError:
    """An error Okta would answer: ``code`` is the errorCode, ``causes`` the errorCauses' summaries."""
    return SandboxError(status, summary, reason=code, headers=headers,
                        body={"errorCauses": [{"errorSummary": c} for c in causes or []]})


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    code, default_summary = DEFAULT_CODES.get(exc.status, ("E0000009", "Internal Server Error"))
    if exc.reason and exc.reason.startswith("E0"):
        code, summary = exc.reason, exc.message
    elif exc.status in (401, 429):
        summary = default_summary  # Okta's own words, also for injected faults
    else:
        summary = exc.message or default_summary
    body = {"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(16).replace("-", "A").replace("_", "b")[:22],
            "errorCauses": (exc.body or {}).get("errorCauses", [])}
    headers: dict[str, str] = {}
    if exc.status == 429 and "X-Rate-Limit-Reset" not in exc.headers:
        wait = exc.headers.get("Retry-After", "60")
        try:
            reset = int(time.time() + float(wait)) + 1
        except ValueError:
            reset = int(time.time()) + 60
        headers = {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)}
    return body, headers


def not_found(what: str, kind: str) -> SandboxError:
    return okta_error(404, "E0000007", f"Not found: Resource not found: {what} ({kind})")


def validation(field: str, *causes: str) -> SandboxError:
    return okta_error(400, "E0000001", f"Api validation failed: {field}", list(causes))


def not_allowed_in_status() -> SandboxError:
    return okta_error(403, "E0000038", "This operation is not allowed in the user's current status.")


# --- the route class: auth, rate limits, Okta-shaped errors on every answer ----------------------

def _bucket(method: str, path: str) -> str:
    if path == f"{API}/users":
        return f"{method} {API}/users"
    for prefix in (f"{API}/users/{{user_id}}/lifecycle", f"{API}/users/{{user_id}}/sessions"):
        if path.startswith(prefix):
            return prefix.replace("{user_id}", "{id}")
    if path.startswith(f"{API}/users/{{user_id}}"):
        return f"{API}/users/{{id}}"
    if path.startswith(f"{API}/groups"):
        return f"{API}/groups"
    return API


def _consume(request: Request, bucket: str) -> tuple[dict[str, str], bool]:
    """Count one call in ``bucket``'s current minute; the headers and whether the limit is exceeded."""
    sandbox: SandboxState = request.app.state.sandbox
    credentials: Credentials = request.app.state.credentials
    override = credentials.extra.get("okta_rate_limit_per_minute")
    limit = int(override) if override else RATE_LIMITS.get(bucket, RATE_LIMITS[API])
    now = time.time()
    window = int(now // 60) * 60
    with sandbox.lock:
        counters = sandbox.of("okta").setdefault("rate_limits", {})
        counter = counters.get(bucket)
        if counter is None or counter["window"] != window:
            counter = counters[bucket] = {"window": window, "used": 0, "limit": limit}
        exceeded = counter["used"] >= limit
        if not exceeded:
            counter["used"] += 1
        remaining = max(0, limit - counter["used"])
    return ({"X-Rate-Limit-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining),
             "X-Rate-Limit-Reset": str(window + 60)}, exceeded)


def _authenticate(request: Request) -> None:
    credentials: Credentials = request.app.state.credentials
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "SSWS" or not token.strip() or not any(
            secrets.compare_digest(token.strip(), accepted) for accepted in credentials.okta_tokens):
        raise okta_error(401, "E0000011", "Invalid token provided")


class OktaRoute(APIRoute):
    """Every Okta route: the rate limit (every call counts, as at Okta), SSWS auth, then the handler;
    errors in Okta's shape and the rate-limit headers on every response (as Okta sends them)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        path = self.path[max(0, self.path.find(API)):]  # the route template without the /okta mount prefix

        async def okta_handler(request: Request) -> Response:
            limit_headers: dict[str, str] = {}
            try:
                limit_headers, exceeded = _consume(request, _bucket(request.method, path))
                if exceeded:
                    raise okta_error(429, "E0000047", DEFAULT_CODES[429][1], headers=limit_headers)
                _authenticate(request)
                response = await handler(request)
            except SandboxError as exc:
                body, headers = render_error(exc)
                response = JSONResponse(status_code=exc.status, content=body, headers={**headers, **exc.headers})
            for name, value in limit_headers.items():
                response.headers.setdefault(name, value)
            return response

        return okta_handler


router = APIRouter(route_class=OktaRoute)


# --- helpers ------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"


def _new_id(prefix: str, request: Request) -> str:
    """A 20-character Okta-style id that sorts in creation order (the paging cursor relies on it)."""
    sandbox: SandboxState = request.app.state.sandbox
    alphabet = string.ascii_letters + string.digits
    return f"{prefix}{sandbox.next_id():07d}" + "".join(secrets.choice(alphabet) for _ in range(10))


def _stable_group_id(name: str) -> str:
    return "00g" + hashlib.sha256(name.encode()).hexdigest()[:17]


def _state(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox, sandbox.of("okta")


def _org(request: Request) -> str:
    """The org URL as the client sees it (``http://host:port/okta``)."""
    return str(request.base_url).rstrip("/") + "/okta"


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise okta_error(400, "E0000003", "The request body was not well-formed.") from None
    if not isinstance(data, dict):
        raise okta_error(400, "E0000003", "The request body was not well-formed.")
    return data


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


def _limit(request: Request, maximum: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return maximum
    try:
        value = int(raw)
    except ValueError:
        raise okta_error(400, "E0000001", "Api validation failed: limit", ["limit: must be an integer"]) from None
    return max(1, min(value, maximum))


def _paged(request: Request, items: list[dict[str, Any]], maximum: int) -> JSONResponse:
    """Okta's cursor paging: items sorted by id, ``after`` = the last id of the previous page, and
    ``Link: <…>; rel="self"`` / ``<…>; rel="next"`` headers."""
    limit = _limit(request, maximum)
    after = request.query_params.get("after")
    ordered = sorted(items, key=lambda item: item["id"])
    if after:
        ordered = [item for item in ordered if item["id"] > after]
    chunk = ordered[:limit]
    base = str(request.base_url).rstrip("/") + request.url.path
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    links = [f'<{base}?{urlencode(list(request.query_params.multi_items()))}>; rel="self"'
             if request.query_params else f'<{base}>; rel="self"']
    if len(ordered) > limit:
        links.append(f'<{base}?{urlencode([*params, ("after", chunk[-1]["id"])])}>; rel="next"')
    response = JSONResponse(content=[_public(request, item) for item in chunk])
    for link in links:
        response.headers.append("Link", link)
    return response


def _public(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """A stored object as Okta returns it (with ``_links``)."""
    kind = "users" if item["id"].startswith("00u") else "groups"
    return {**item, "_links": {"self": {"href": f"{_org(request)}{API}/{kind}/{item['id']}"}}}


# --- search expressions -------------------------------------------------------------------------

CLAUSE = re.compile(r'\s*([A-Za-z][\w.]*)\s+(eq|sw|ne)\s+"((?:[^"\\]|\\.)*)"\s*', re.IGNORECASE)


def _parse_search(expression: str) -> tuple[str, list[tuple[str, str, str]]]:
    """``attr op "value" (and|or attr op "value")*`` -> (joiner, clauses). Okta's search grammar is
    richer (parentheses, gt/lt, pr); these are the forms OfficeFlow and its tests use."""
    clauses: list[tuple[str, str, str]] = []
    joiners: set[str] = set()
    rest = expression.strip()
    while True:
        match = CLAUSE.match(rest)
        if not match:
            raise okta_error(400, "E0000031", "Invalid search criteria.")
        clauses.append((match.group(1), match.group(2).lower(), re.sub(r"\\(.)", r"\1", match.group(3))))
        rest = rest[match.end():]
        if not rest:
            break
        joiner = re.match(r"(and|or)\s+", rest, re.IGNORECASE)
        if not joiner:
            raise okta_error(400, "E0000031", "Invalid search criteria.")
        joiners.add(joiner.group(1).lower())
        rest = rest[joiner.end():]
    if len(joiners) > 1:
        raise okta_error(400, "E0000031", "Invalid search criteria.")
    return (joiners.pop() if joiners else "and"), clauses


def _attribute(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(item: dict[str, Any], expression: str) -> bool:
    joiner, clauses = _parse_search(expression)
    results = []
    for attr, op, wanted in clauses:
        actual = _attribute(item, attr)
        actual_text = "" if actual is None else str(actual).casefold()
        if op == "eq":
            results.append(actual is not None and actual_text == wanted.casefold())
        elif op == "ne":
            results.append(actual_text != wanted.casefold())
        else:
            results.append(actual is not None and actual_text.startswith(wanted.casefold()))
    return all(results) if joiner == "and" else any(results)


# --- users --------------------------------------------------------------------------------------

def _find_user(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    """By id, login (case-insensitive) or the login's short name (the part before @), as Okta does."""
    users: dict[str, dict[str, Any]] = data.setdefault("users", {})
    if key in users:
        return users[key]
    folded = key.casefold()
    for user in users.values():
        if user["profile"]["login"].casefold() == folded:
            return user
    short = [u for u in users.values() if u["profile"]["login"].casefold().split("@", 1)[0] == folded]
    return short[0] if len(short) == 1 else None


def _user_or_404(data: dict[str, Any], key: str) -> dict[str, Any]:
    user = _find_user(data, key)
    if user is None:
        raise not_found(key, "User")
    return user


def _check_profile(data: dict[str, Any], profile: Any, *, user_id: str | None) -> dict[str, Any]:
    """Validate a complete profile the way Okta's Universal Directory does."""
    if not isinstance(profile, dict):
        raise validation("profile", "profile: The field cannot be left blank")
    causes: list[str] = []
    fields: list[str] = []

    def problem(field: str, cause: str) -> None:
        fields.append(field)
        causes.append(f"{field}: {cause}")

    for name in sorted(set(profile) - BASE_PROFILE):
        problem(name, f"Property name '{name}' is not defined in profile")
    for name in REQUIRED_PROFILE:
        value = profile.get(name)
        if value is None or not str(value).strip():
            problem(name, "The field cannot be left blank")
    for name, value in profile.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            problem(name, "Does not match required type")
    for name in EMAIL_ATTRIBUTES:
        value = profile.get(name)
        if isinstance(value, str) and value.strip() and not EMAIL_RE.match(value):
            problem(name, "Username must be in the form of an email address" if name == "login"
                    else "Does not match required pattern")
    for name, maximum in MAX_LENGTH.items():
        value = profile.get(name)
        if isinstance(value, str) and len(value) > maximum:
            problem(name, f"The field must be no more than {maximum} characters long")
    if not causes and isinstance(profile.get("login"), str):
        existing = _find_user(data, profile["login"])
        if existing is not None and existing["id"] != user_id \
                and existing["profile"]["login"].casefold() == profile["login"].casefold():
            problem("login", "An object with this field already exists in the current organization")
    if causes:
        raise validation(fields[0], *causes)
    return {k: v for k, v in profile.items() if v is not None}


def _check_password(password: Any, profile: dict[str, Any]) -> None:
    if not isinstance(password, str):
        raise validation("password", "password: The field cannot be left blank")
    username_parts = {part for part in re.split(r"[@.\-_+]", profile.get("login", "").casefold()) if len(part) >= 3}
    if (len(password) < 8 or not any(c.islower() for c in password) or not any(c.isupper() for c in password)
            or not any(c.isdigit() for c in password)
            or any(part in password.casefold() for part in username_parts - {"com", "org", "net", "test"})):
        raise validation("password", f"password: {POLICY_MESSAGE}")


def _set_status(user: dict[str, Any], status: str) -> None:
    now = _now()
    user["status"] = status
    user["statusChanged"] = now
    user["lastUpdated"] = now
    if status in ("ACTIVE", "PROVISIONED", "PASSWORD_EXPIRED") and user.get("activated") is None:
        user["activated"] = now


def _everyone_id(data: dict[str, Any]) -> str | None:
    for group in data.get("groups", {}).values():
        if group["type"] == "BUILT_IN" and group["profile"]["name"] == EVERYONE:
            return str(group["id"])
    return None


@router.post(f"{API}/users")
async def create_user(request: Request) -> Response:
    body = await _body(request)
    activate = _flag(request.query_params.get("activate"), True)
    next_login = request.query_params.get("nextLogin")
    sandbox, data = _state(request)
    with sandbox.lock:
        profile = _check_profile(data, body.get("profile"), user_id=None)
        password = ((body.get("credentials") or {}).get("password") or {}).get("value") \
            if isinstance(body.get("credentials"), dict) else None
        if password is not None:
            _check_password(password, profile)
        if next_login is not None and (next_login != "changePassword" or not activate):
            raise validation("nextLogin", "nextLogin: changePassword is only valid with activate=true")
        group_ids = body.get("groupIds") or []
        groups = data.setdefault("groups", {})
        for gid in group_ids:
            if gid not in groups:
                raise not_found(gid, "UserGroup")
            if groups[gid]["type"] != "OKTA_GROUP":
                raise validation("groupIds", f"groupIds: {gid} is not an OKTA_GROUP")
        now = _now()
        user: dict[str, Any] = {
            "id": _new_id("00u", request), "status": "STAGED", "created": now, "activated": None,
            "statusChanged": None, "lastLogin": None, "lastUpdated": now,
            "passwordChanged": now if password is not None else None,
            "type": {"id": "oty00000000000000000"}, "profile": profile,
            "credentials": {"emails": [{"value": profile["email"], "status": "VERIFIED", "type": "PRIMARY"}],
                            "provider": {"type": "OKTA", "name": "OKTA"},
                            **({"password": {}} if password is not None else {})},
        }
        if activate:
            if password is None:
                _set_status(user, "PROVISIONED")
            else:
                _set_status(user, "PASSWORD_EXPIRED" if next_login == "changePassword" else "ACTIVE")
        data.setdefault("users", {})[user["id"]] = user
        memberships = data.setdefault("memberships", {})
        for gid in [g for g in (_everyone_id(data),) if g] + list(group_ids):
            members = memberships.setdefault(gid, [])
            if user["id"] not in members:
                members.append(user["id"])
        return JSONResponse(_public(request, user))


@router.get(f"{API}/users")
async def list_users(request: Request) -> Response:
    query = request.query_params
    sandbox, data = _state(request)
    with sandbox.lock:
        users = list(data.setdefault("users", {}).values())
        if query.get("search") or query.get("filter"):
            for expression in (query.get("search"), query.get("filter")):
                if expression:
                    users = [u for u in users if _matches(u, expression)]
        else:
            users = [u for u in users if u["status"] != "DEPROVISIONED"]
            if query.get("q"):
                prefix = query["q"].casefold()
                users = [u for u in users if any(str(u["profile"].get(attr, "")).casefold().startswith(prefix)
                                                 for attr in ("firstName", "lastName", "email", "login"))]
        return _paged(request, users, USERS_MAX_LIMIT)


@router.get(API + "/users/{user_id}")
async def get_user(request: Request, user_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        return JSONResponse(_public(request, _user_or_404(data, user_id)))


async def _update(request: Request, user_id: str, *, partial: bool) -> Response:
    body = await _body(request)
    sandbox, data = _state(request)
    with sandbox.lock:
        user = _user_or_404(data, user_id)
        if user["status"] == "DEPROVISIONED":
            raise not_allowed_in_status()
        changes = body.get("profile")
        if changes is not None and not isinstance(changes, dict):
            raise validation("profile", "profile: Does not match required type")
        profile = {**user["profile"], **(changes or {})} if partial else changes
        checked = _check_profile(data, profile, user_id=user["id"])
        password = ((body.get("credentials") or {}).get("password") or {}).get("value") \
            if isinstance(body.get("credentials"), dict) else None
        if password is not None:
            _check_password(password, checked)
            user["credentials"]["password"] = {}
            user["passwordChanged"] = _now()
        user["profile"] = checked
        user["credentials"]["emails"] = [{"value": checked["email"], "status": "VERIFIED", "type": "PRIMARY"}]
        user["lastUpdated"] = _now()
        return JSONResponse(_public(request, user))


@router.post(API + "/users/{user_id}")
async def update_user_partial(request: Request, user_id: str) -> Response:
    """Okta's POST is a partial update: attributes not sent keep their values (null clears one)."""
    return await _update(request, user_id, partial=True)


@router.put(API + "/users/{user_id}")
async def replace_user(request: Request, user_id: str) -> Response:
    """Okta's PUT replaces the whole profile: attributes not sent are removed."""
    return await _update(request, user_id, partial=False)


@router.post(API + "/users/{user_id}/lifecycle/{operation}")
async def lifecycle(request: Request, user_id: str, operation: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        user = _user_or_404(data, user_id)
        status = user["status"]
        if operation == "activate":
            if status not in ("STAGED", "DEPROVISIONED"):
                raise okta_error(403, "E0000016", "Activation failed because the user is already active")
            _set_status(user, "ACTIVE" if "password" in user["credentials"] else "PROVISIONED")
            if _flag(request.query_params.get("sendEmail"), True):
                return JSONResponse({})
            token = secrets.token_urlsafe(15)
            return JSONResponse({"activationUrl": f"{_org(request)}/welcome/{token}", "activationToken": token})
        if operation == "deactivate":
            if status == "DEPROVISIONED":
                raise not_allowed_in_status()
            _set_status(user, "DEPROVISIONED")
        elif operation == "suspend":
            if status != "ACTIVE":
                raise validation("status", "Cannot suspend a user that is not active")
            _set_status(user, "SUSPENDED")
        elif operation == "unsuspend":
            if status != "SUSPENDED":
                raise validation("status", "Cannot unsuspend a user that is not suspended")
            _set_status(user, "ACTIVE")
        else:
            raise okta_error(404, "E0000007", f"Not found: Resource not found: {operation} (Operation)")
        return JSONResponse({})


@router.delete(API + "/users/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    """Okta's two-step delete: a user that is not DEPROVISIONED is deactivated; one that is, deleted."""
    sandbox, data = _state(request)
    with sandbox.lock:
        user = _user_or_404(data, user_id)
        if user["status"] != "DEPROVISIONED":
            _set_status(user, "DEPROVISIONED")
        else:
            del data["users"][user["id"]]
            for members in data.setdefault("memberships", {}).values():
                if user["id"] in members:
                    members.remove(user["id"])
        return Response(status_code=204)


@router.delete(API + "/users/{user_id}/sessions")
async def clear_sessions(request: Request, user_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        user = _user_or_404(data, user_id)
        data.setdefault("session_revocations", []).append({
            "userId": user["id"], "oauthTokens": _flag(request.query_params.get("oauthTokens"), False),
            "at": _now()})
        return Response(status_code=204)


@router.get(API + "/users/{user_id}/groups")
async def user_groups(request: Request, user_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        user = _user_or_404(data, user_id)
        groups = data.setdefault("groups", {})
        mine = [groups[gid] for gid, members in data.setdefault("memberships", {}).items()
                if user["id"] in members and gid in groups]
        return _paged(request, mine, GROUPS_MAX_LIMIT)


# --- groups -------------------------------------------------------------------------------------

def _group(gid: str, name: str, description: str, group_type: str) -> dict[str, Any]:
    now = _now()
    object_class = "okta:user_group" if group_type != "APP_GROUP" else "okta:windows_security_principal"
    return {"id": gid, "created": now, "lastUpdated": now, "lastMembershipUpdated": now,
            "objectClass": [object_class], "type": group_type, "profile": {"name": name, "description": description}}


def _group_or_404(data: dict[str, Any], gid: str) -> dict[str, Any]:
    group = data.setdefault("groups", {}).get(gid)
    if group is None:
        raise not_found(gid, "UserGroup")
    return dict(group)


@router.get(f"{API}/groups")
async def list_groups(request: Request) -> Response:
    query = request.query_params
    sandbox, data = _state(request)
    with sandbox.lock:
        groups = list(data.setdefault("groups", {}).values())
        if query.get("q"):
            prefix = query["q"].casefold()
            groups = [g for g in groups if g["profile"]["name"].casefold().startswith(prefix)]
        for expression in (query.get("search"), query.get("filter")):
            if expression:
                groups = [g for g in groups if _matches(g, expression)]
        return _paged(request, groups, GROUPS_MAX_LIMIT)


@router.post(f"{API}/groups")
async def create_group(request: Request) -> Response:
    body = await _body(request)
    raw_profile = body.get("profile")
    profile: dict[str, Any] = raw_profile if isinstance(raw_profile, dict) else {}
    name = profile.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation("name", "name: The field cannot be left blank")
    sandbox, data = _state(request)
    with sandbox.lock:
        groups = data.setdefault("groups", {})
        if any(g["profile"]["name"].casefold() == name.casefold() for g in groups.values()):
            raise validation("name", "name: An object with this field already exists in the current organization")
        group = _group(_new_id("00g", request), name, str(profile.get("description") or ""), "OKTA_GROUP")
        groups[group["id"]] = group
        return JSONResponse(_public(request, group))


@router.get(API + "/groups/{group_id}")
async def get_group(request: Request, group_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        return JSONResponse(_public(request, _group_or_404(data, group_id)))


@router.get(API + "/groups/{group_id}/users")
async def group_members(request: Request, group_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        _group_or_404(data, group_id)
        users = data.setdefault("users", {})
        members = [users[uid] for uid in data.setdefault("memberships", {}).get(group_id, []) if uid in users]
        return _paged(request, members, USERS_MAX_LIMIT)


def _membership_target(data: dict[str, Any], group_id: str, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    group = _group_or_404(data, group_id)
    user = _user_or_404(data, user_id)
    if group["type"] != "OKTA_GROUP":
        # Okta only lets the API change memberships of OKTA_GROUPs (Everyone and app groups are managed
        # by Okta / the app). The exact error code is an approximation.
        raise validation("group", f"Group memberships of {group['type']} groups cannot be changed "
                                  f"({group['profile']['name']}); only OKTA_GROUP memberships can")
    return group, user


@router.put(API + "/groups/{group_id}/users/{user_id}")
async def add_member(request: Request, group_id: str, user_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        group, user = _membership_target(data, group_id, user_id)
        members = data.setdefault("memberships", {}).setdefault(group["id"], [])
        if user["id"] not in members:
            members.append(user["id"])
            data["groups"][group["id"]]["lastMembershipUpdated"] = _now()
        return Response(status_code=204)


@router.delete(API + "/groups/{group_id}/users/{user_id}")
async def remove_member(request: Request, group_id: str, user_id: str) -> Response:
    sandbox, data = _state(request)
    with sandbox.lock:
        group, user = _membership_target(data, group_id, user_id)
        members = data.setdefault("memberships", {}).setdefault(group["id"], [])
        if user["id"] in members:
            members.remove(user["id"])
            data["groups"][group["id"]]["lastMembershipUpdated"] = _now()
        return Response(status_code=204)


@router.api_route(API + "/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                  include_in_schema=False)
async def unknown(request: Request, rest: str) -> Response:
    """Okta answers paths it does not have with E0000007 (registered last, so it only catches those)."""
    raise okta_error(404, "E0000007", f"Not found: Resource not found: {API}/{rest} (path)")


# --- seed and credentials -----------------------------------------------------------------------

def seed(data: dict[str, Any], credentials: Credentials) -> None:
    """Every Okta group named in include/identity/groups.yaml (stable ids), plus ``Everyone``
    (``Credentials.extra["okta_groups_file"]`` names another mapping file)."""
    groups_file = credentials.extra.get("okta_groups_file")
    groups = data.setdefault("groups", {})
    everyone = _group("00g" + "0" * 17, EVERYONE, "All users in your organization", "BUILT_IN")
    groups[everyone["id"]] = everyone
    for name in sorted(managed_groups("okta", groups_file)):
        gid = _stable_group_id(name)
        groups[gid] = _group(gid, name, "Seeded by the OfficeFlow sandbox from include/identity/groups.yaml",
                             "OKTA_GROUP")
    data.setdefault("users", {})
    data.setdefault("memberships", {gid: [] for gid in groups})
    data.setdefault("session_revocations", [])
    data.setdefault("rate_limits", {})


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random SSWS API token; the connection is an HTTP connection whose host is the org URL and
    whose password is the token (what an Okta admin would enter for a real org)."""
    token = "00" + secrets.token_urlsafe(30)
    credentials.okta_tokens.append(token)
    return {"officeflow_okta": {"conn_type": "http", "host": f"{base_url}/okta", "password": token,
                                "description": "Okta org (sandbox): host = org URL, password = SSWS API token"}}


service = Service("okta", router, render_error, seed)
