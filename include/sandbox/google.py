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
- **Calendar API v3** (``/calendar/v3/...``): see include/sandbox/google_calendar.py.
- Seed: the admin ``admin@<google_domain>`` (the delegation subject), the people team's
  ``people.manager@<google_domain>`` (approves and meets hires that name no manager, as in Slack's
  seed), and every Google group of include/identity/groups.yaml, with ids derived from their emails
  (stable across resets).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from include.sandbox.core import Credentials, SandboxError, SandboxState, Service, bearer_token, grant_for, issue_token

SERVICE = "google"
DIRECTORY = "/admin/directory/v1"
SCOPE = "https://www.googleapis.com/auth/"
USER_READ = (f"{SCOPE}admin.directory.user", f"{SCOPE}admin.directory.user.readonly")
USER_WRITE = (f"{SCOPE}admin.directory.user",)
USER_SECURITY = (f"{SCOPE}admin.directory.user.security",)
GROUP_READ = (f"{SCOPE}admin.directory.group", f"{SCOPE}admin.directory.group.readonly")
MEMBER_READ = (*GROUP_READ, f"{SCOPE}admin.directory.group.member", f"{SCOPE}admin.directory.group.member.readonly")
MEMBER_WRITE = (f"{SCOPE}admin.directory.group", f"{SCOPE}admin.directory.group.member")
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CREATION_WINDOW = 0.5  # seconds; Credentials.extra["google_user_creation_seconds"] overrides
CLOCK_SKEW = 300
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")

router = APIRouter(tags=["google"])

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


# --- ids and seed -----------------------------------------------------------------------------------

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


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _etag(resource: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in resource.items() if k != "etag"}, sort_keys=True).encode()
    return '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode() + '"'


def _user_resource(user_id: str, email: str, given: str, family: str, domain: str, *,
                   admin: bool = False) -> dict[str, Any]:
    return {
        "kind": "admin#directory#user", "id": user_id, "primaryEmail": email,
        "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}"},
        "isAdmin": admin, "isDelegatedAdmin": False, "lastLoginTime": "1970-01-01T00:00:00.000Z",
        "creationTime": _now_iso(), "agreedToTerms": admin, "suspended": False, "archived": False,
        "changePasswordAtNextLogin": False, "ipWhitelisted": False,
        "emails": [{"address": email, "primary": True}], "customerId": customer_id(domain), "orgUnitPath": "/",
        "isMailboxSetup": True, "isEnrolledIn2Sv": False, "isEnforcedIn2Sv": False,
        "includeInGlobalAddressList": True,
    }


def _group_resource(email: str) -> dict[str, Any]:
    local = email.split("@", 1)[0]
    return {"kind": "admin#directory#group", "id": stable_group_id(email), "email": email,
            "name": local.replace("-", " ").replace(".", " ").title(), "description": "",
            "directMembersCount": "0", "adminCreated": True, "nonEditableAliases": []}


def seed(state: dict[str, Any], credentials: Credentials) -> None:
    from include.officeflow.identity import DEFAULT_GROUPS_FILE, load_group_mapping

    domain = credentials.google_domain.lower()
    admin_email = f"admin@{domain}"
    admin = _user_resource(stable_user_id(admin_email), admin_email, "Workspace", "Admin", domain, admin=True)
    people_email = f"people.manager@{domain}"
    people = _user_resource(stable_user_id(people_email), people_email, "People", "Manager", domain)
    for user in (admin, people):
        user["etag"] = _etag(user)
    state.update(users={admin["id"]: admin, people["id"]: people}, groups={}, members={}, password_hashes={},
                 sign_outs={}, pending_creation={})
    for email in sorted(load_group_mapping(DEFAULT_GROUPS_FILE).of("google").managed()):
        group = _group_resource(email.lower())
        group["etag"] = _etag(group)
        state["groups"][group["id"]] = group
        state["members"][group["id"]] = {}


# --- request helpers --------------------------------------------------------------------------------

def _sandbox(request: Request) -> tuple[SandboxState, dict[str, Any], Credentials]:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox, sandbox.of(SERVICE), request.app.state.credentials


async def _json(request: Request) -> dict[str, Any]:
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
    sandbox, _, _ = _sandbox(request)
    token = bearer_token(request)
    if token is None:
        raise SandboxError(401, "Request is missing required authentication credential. Expected OAuth 2 access "
                           "token, login cookie or other valid authentication credential.", reason="required")
    grant = grant_for(sandbox, token)
    if grant is None or grant.get("service") != SERVICE:
        raise SandboxError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                           "login cookie or other valid authentication credential.", reason="authError")
    return grant


def _authorize(request: Request, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The grant of the request's token: 401 without a valid one, 403 without an admin subject or scope."""
    sandbox, svc, _ = _sandbox(request)
    grant = bearer_grant(request)
    with sandbox.lock:
        subject = _user_by_key(svc, grant["sub"]) if grant.get("sub") else None
    if subject is None or not subject.get("isAdmin") or subject.get("suspended"):
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
    if not set(scopes) & set(grant.get("scopes", ())):
        raise SandboxError(403, "Request had insufficient authentication scopes.", reason="insufficientPermissions")
    return grant


def _in_domain(email: str, credentials: Credentials) -> bool:
    return email.rpartition("@")[2].lower() == credentials.google_domain.lower()


def _user_by_key(svc: dict[str, Any], key: str) -> dict[str, Any] | None:
    users: dict[str, dict[str, Any]] = svc["users"]
    if key in users:
        return users[key]
    folded = key.lower()
    for user in users.values():
        if user["primaryEmail"].lower() == folded or folded in (a.lower() for a in user.get("aliases", [])):
            return user
    return None


def _user(svc: dict[str, Any], key: str, credentials: Credentials) -> dict[str, Any]:
    user = _user_by_key(svc, key)
    if user is None:
        if "@" in key and not _in_domain(key, credentials):
            raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
        raise not_found("userKey")
    return user


def _group_by_key(svc: dict[str, Any], key: str) -> dict[str, Any] | None:
    groups: dict[str, dict[str, Any]] = svc["groups"]
    if key in groups:
        return groups[key]
    folded = key.lower()
    for group in groups.values():
        if group["email"].lower() == folded or folded in (a.lower() for a in group.get("aliases", [])):
            return group
    return None


def _group(svc: dict[str, Any], key: str) -> dict[str, Any]:
    group = _group_by_key(svc, key)
    if group is None:
        raise not_found("groupKey")
    return group


def _creation_complete(svc: dict[str, Any], user_id: str) -> None:
    ready_at = svc["pending_creation"].get(user_id)
    if ready_at is None:
        return
    if time.time() < ready_at:
        raise SandboxError(412, "User creation is not complete.", reason="conditionNotMet")
    del svc["pending_creation"][user_id]


def _page_params(request: Request, *, default: int, maximum: int) -> tuple[int, int]:
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


def _paged(kind: str, key: str, items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    """A list response as Google sends it: no item key when empty, ``nextPageToken`` while more remain."""
    chunk = items[offset:offset + limit]
    body: dict[str, Any] = {"kind": kind, "etag": _etag({"items": [i.get("etag") for i in chunk]})}
    if chunk:
        body[key] = copy.deepcopy(chunk)
    if offset + limit < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return body


def _check_scope_of_listing(request: Request, credentials: Credentials, *, user_key_ok: bool = False) -> None:
    customer = request.query_params.get("customer")
    domain = request.query_params.get("domain")
    if not customer and not domain and not (user_key_ok and request.query_params.get("userKey")):
        raise SandboxError(400, "Bad Request", reason="badRequest")
    if customer and customer not in ("my_customer", customer_id(credentials.google_domain.lower())):
        raise SandboxError(400, "Bad Request", reason="badRequest")
    if domain and domain.lower() != credentials.google_domain.lower():
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")


def _no_content() -> Response:
    return Response(status_code=204)


# --- OAuth 2.0 token endpoint -----------------------------------------------------------------------

@router.post("/token")
async def token(request: Request) -> JSONResponse:
    """JWT bearer grant (RFC 7523) of a service account, with optional domain-wide delegation."""
    sandbox, svc, credentials = _sandbox(request)
    form = await request.form()
    grant_type = str(form.get("grant_type") or "")
    if grant_type != JWT_BEARER:
        raise oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    assertion = str(form.get("assertion") or "")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT: malformed assertion.") from None
    issuer = str(unverified.get("iss") or "")
    public_key = credentials.google_service_accounts.get(issuer)
    if public_key is None:
        raise oauth_error(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256":
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
    token_uri = str(request.url.replace(query=""))
    try:
        claims = jwt.decode(assertion, public_key, algorithms=["RS256"], audience=[token_uri, GOOGLE_TOKEN_URI],
                            leeway=CLOCK_SKEW, options={"require": ["iss", "aud", "iat", "exp"]})
    except jwt.InvalidSignatureError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.") from None
    except jwt.InvalidAudienceError:
        raise oauth_error(400, "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is "
                          f"{token_uri}") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError,
            jwt.MissingRequiredClaimError):
        raise oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                          "in a reasonable timeframe. Check your iat and exp values in the JWT claim.") from None
    except jwt.PyJWTError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.") from None
    if not 0 < int(claims["exp"]) - int(claims["iat"]) <= 3600:
        raise oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                          "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
    scopes = str(claims.get("scope") or "").split()
    if not scopes:
        raise oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    subject = str(claims.get("sub") or "") or None
    if subject is not None:
        with sandbox.lock:
            user = _user_by_key(svc, subject)
        if user is None or not _in_domain(subject, credentials):
            raise oauth_error(400, "invalid_grant", "Invalid email or User ID")
        delegated = credentials.extra.get("google_delegation_scopes")
        if delegated is not None and not set(scopes) <= set(delegated):
            raise oauth_error(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using "
                              "this method, or client not authorized for any of the scopes requested.")
    access_token = issue_token(sandbox, {"service": SERVICE, "client_email": issuer, "sub": subject,
                                         "scopes": scopes}, ttl=3600)
    return JSONResponse({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"},
                        headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})


# --- users -------------------------------------------------------------------------------------------

NAME_LIMIT = 60


def _validate_name(name: Any, *, creating: bool) -> None:
    if name is None:
        if creating:
            raise required("name")
        return
    if not isinstance(name, dict):
        raise invalid("name")
    for field, label in (("givenName", "GivenName"), ("familyName", "FamilyName")):
        value = name.get(field)
        if value is None and not creating:
            continue
        if not isinstance(value, str) or not value.strip():
            raise required(f"name.{field}") if value in (None, "") else invalid(f"name.{field}")
        if len(value) > NAME_LIMIT or any(ch in value for ch in "<>=") or any(ord(ch) < 32 for ch in value):
            raise SandboxError(400, f"Invalid Given/Family Name: {label}", reason="invalid")


def _validate_lists(body: dict[str, Any]) -> None:
    for field in ("organizations", "relations", "externalIds", "emails", "phones", "addresses", "locations"):
        value = body.get(field)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
            raise invalid(field)
    if "suspended" in body and not isinstance(body["suspended"], bool):
        raise invalid("suspended")
    recovery = body.get("recoveryEmail")
    if recovery not in (None, "") and (not isinstance(recovery, str) or not EMAIL.match(recovery)):
        raise invalid("recovery_email")


def _validate_password(password: Any) -> None:
    if not isinstance(password, str) or not 8 <= len(password) <= 100:
        raise SandboxError(400, "Invalid Password", reason="invalid")


def _hash_password(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _merge_user(user: dict[str, Any], body: dict[str, Any], svc: dict[str, Any]) -> None:
    """Apply a patch/update body: top-level fields replace, ``name`` merges, read-only fields are ignored."""
    read_only = {"kind", "id", "etag", "isAdmin", "isDelegatedAdmin", "lastLoginTime", "creationTime",
                 "customerId", "isMailboxSetup", "nonEditableAliases", "aliases", "password", "hashFunction",
                 "thumbnailPhotoUrl", "suspensionReason", "isEnrolledIn2Sv", "isEnforcedIn2Sv"}
    for key, value in body.items():
        if key in read_only:
            continue
        if key == "name":
            name = {**user["name"], **value}
            name["fullName"] = f"{name['givenName']} {name['familyName']}"
            user["name"] = name
        elif key == "primaryEmail":
            user["primaryEmail"] = value.lower()
            user["emails"] = [{"address": value.lower(), "primary": True},
                              *[e for e in user.get("emails", []) if not e.get("primary")]]
        else:
            user[key] = value
    if "suspended" in body:
        if body["suspended"]:
            user.setdefault("suspensionReason", "ADMIN")
        else:
            user.pop("suspensionReason", None)
    if "password" in body:
        svc["password_hashes"][user["id"]] = _hash_password(body["password"])


@router.post(f"{DIRECTORY}/users")
async def users_insert(request: Request) -> JSONResponse:
    _authorize(request, USER_WRITE)
    body = await _json(request)
    sandbox, svc, credentials = _sandbox(request)
    email = body.get("primaryEmail")
    if email in (None, ""):
        raise required("primaryEmail")
    if not isinstance(email, str) or not EMAIL.match(email):
        raise invalid("primary_user_email")
    _validate_name(body.get("name"), creating=True)
    if body.get("password") in (None, ""):
        raise required("password")
    _validate_password(body["password"])
    _validate_lists(body)
    if not _in_domain(email, credentials):
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
    with sandbox.lock:
        if _user_by_key(svc, email) is not None or _group_by_key(svc, email) is not None:
            raise SandboxError(409, "Entity already exists.", reason="duplicate")
        user_id = f"1{sandbox.next_id():020d}"
        user = _user_resource(user_id, email.lower(), body["name"]["givenName"], body["name"]["familyName"],
                              credentials.google_domain.lower())
        user["agreedToTerms"] = False
        user["isMailboxSetup"] = False
        _merge_user(user, {k: v for k, v in body.items() if k not in ("primaryEmail", "name")}, svc)
        user["etag"] = _etag(user)
        svc["users"][user_id] = user
        window = float(credentials.extra.get("google_user_creation_seconds", CREATION_WINDOW))
        if window > 0:
            svc["pending_creation"][user_id] = time.time() + window
        return JSONResponse(copy.deepcopy(user))


@router.get(f"{DIRECTORY}/users/{{user_key}}")
async def users_get(user_key: str, request: Request) -> JSONResponse:
    _authorize(request, USER_READ)
    sandbox, svc, credentials = _sandbox(request)
    with sandbox.lock:
        return JSONResponse(copy.deepcopy(_user(svc, user_key, credentials)))


def _user_matches(user: dict[str, Any], query: str) -> bool:
    try:
        terms = shlex.split(query)
    except ValueError:
        raise invalid("query") from None
    for term in terms:
        match = re.fullmatch(r"([A-Za-z.]+)\s*([:=])\s*(.*)", term)
        if match is None:
            raise invalid("query")
        field, value = match.group(1), match.group(3).lower()
        org = next((o for o in user.get("organizations", []) if o.get("primary")),
                   (user.get("organizations") or [{}])[0])
        if field == "email":
            candidates = [user["primaryEmail"], *user.get("aliases", [])]
        elif field in ("givenName", "familyName"):
            candidates = [user["name"].get(field, "")]
        elif field == "name":
            candidates = [user["name"].get("fullName", "")]
        elif field == "orgDepartment":
            candidates = [org.get("department") or ""]
        elif field == "orgTitle":
            candidates = [org.get("title") or ""]
        elif field in ("isSuspended", "isAdmin"):
            flag = user.get("suspended" if field == "isSuspended" else "isAdmin", False)
            if value not in ("true", "false"):
                raise invalid("query")
            if flag != (value == "true"):
                return False
            continue
        else:
            raise invalid("query")
        folded = [c.lower() for c in candidates]
        if value.endswith("*"):
            if not any(c.startswith(value[:-1]) for c in folded):
                return False
        elif value not in folded:
            return False
    return True


@router.get(f"{DIRECTORY}/users")
async def users_list(request: Request) -> JSONResponse:
    _authorize(request, USER_READ)
    sandbox, svc, credentials = _sandbox(request)
    _check_scope_of_listing(request, credentials)
    offset, limit = _page_params(request, default=100, maximum=500)
    query = request.query_params.get("query", "")
    order = request.query_params.get("orderBy", "email")
    sort_keys = {"email": lambda u: u["primaryEmail"].lower(),
                 "givenName": lambda u: u["name"]["givenName"].lower(),
                 "familyName": lambda u: u["name"]["familyName"].lower()}
    if order not in sort_keys:
        raise invalid("orderBy")
    with sandbox.lock:
        users = [u for u in svc["users"].values() if not query or _user_matches(u, query)]
        users.sort(key=sort_keys[order], reverse=request.query_params.get("sortOrder", "").upper() == "DESCENDING")
        return JSONResponse(_paged("admin#directory#users", "users", users, offset, limit))


async def _users_modify(user_key: str, request: Request) -> JSONResponse:
    _authorize(request, USER_WRITE)
    body = await _json(request)
    sandbox, svc, credentials = _sandbox(request)
    _validate_name(body.get("name"), creating=False)
    if "password" in body:
        _validate_password(body["password"])
    _validate_lists(body)
    with sandbox.lock:
        user = _user(svc, user_key, credentials)
        _creation_complete(svc, user["id"])
        new_email = body.get("primaryEmail")
        if new_email is not None:
            if not isinstance(new_email, str) or not EMAIL.match(new_email):
                raise invalid("primary_user_email")
            if not _in_domain(new_email, credentials):
                raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
            other = _user_by_key(svc, new_email)
            if (other is not None and other["id"] != user["id"]) or _group_by_key(svc, new_email) is not None:
                raise SandboxError(409, "Entity already exists.", reason="duplicate")
        _merge_user(user, body, svc)
        user["etag"] = _etag(user)
        return JSONResponse(copy.deepcopy(user))


@router.patch(f"{DIRECTORY}/users/{{user_key}}")
async def users_patch(user_key: str, request: Request) -> JSONResponse:
    return await _users_modify(user_key, request)


@router.put(f"{DIRECTORY}/users/{{user_key}}")
async def users_update(user_key: str, request: Request) -> JSONResponse:
    """Google's users.update "supports patch semantics": it merges like patch."""
    return await _users_modify(user_key, request)


@router.delete(f"{DIRECTORY}/users/{{user_key}}")
async def users_delete(user_key: str, request: Request) -> Response:
    _authorize(request, USER_WRITE)
    sandbox, svc, credentials = _sandbox(request)
    with sandbox.lock:
        user = _user(svc, user_key, credentials)
        _creation_complete(svc, user["id"])
        del svc["users"][user["id"]]
        svc["password_hashes"].pop(user["id"], None)
        for group_id, members in svc["members"].items():
            if members.pop(user["id"], None) is not None:
                _count_members(svc, group_id)
    return _no_content()


@router.post(f"{DIRECTORY}/users/{{user_key}}/signOut")
async def users_sign_out(user_key: str, request: Request) -> Response:
    _authorize(request, USER_SECURITY)
    sandbox, svc, credentials = _sandbox(request)
    with sandbox.lock:
        user = _user(svc, user_key, credentials)
        svc["sign_outs"][user["id"]] = svc["sign_outs"].get(user["id"], 0) + 1
    return _no_content()


# --- groups and members ------------------------------------------------------------------------------

def _count_members(svc: dict[str, Any], group_id: str) -> None:
    group = svc["groups"][group_id]
    group["directMembersCount"] = str(len(svc["members"][group_id]))
    group["etag"] = _etag(group)


@router.get(f"{DIRECTORY}/groups/{{group_key}}")
async def groups_get(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, GROUP_READ)
    sandbox, svc, _ = _sandbox(request)
    with sandbox.lock:
        return JSONResponse(copy.deepcopy(_group(svc, group_key)))


@router.get(f"{DIRECTORY}/groups")
async def groups_list(request: Request) -> JSONResponse:
    _authorize(request, GROUP_READ)
    sandbox, svc, credentials = _sandbox(request)
    _check_scope_of_listing(request, credentials, user_key_ok=True)
    offset, limit = _page_params(request, default=200, maximum=200)
    user_key = request.query_params.get("userKey")
    with sandbox.lock:
        groups = list(svc["groups"].values())
        if user_key:
            member = _user_by_key(svc, user_key) or _group_by_key(svc, user_key)
            if member is None:
                if _in_domain(user_key, credentials) or "@" not in user_key:
                    raise not_found("userKey")
                member_id = stable_user_id(user_key)  # an external member's id
            else:
                member_id = member["id"]
            groups = [g for g in groups if member_id in svc["members"][g["id"]]]
        groups.sort(key=lambda g: g["email"])
        return JSONResponse(_paged("admin#directory#groups", "groups", groups, offset, limit))


@router.get(f"{DIRECTORY}/groups/{{group_key}}/members")
async def members_list(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_READ)
    sandbox, svc, _ = _sandbox(request)
    offset, limit = _page_params(request, default=200, maximum=200)
    roles = {r.strip().upper() for r in request.query_params.get("roles", "").split(",") if r.strip()}
    with sandbox.lock:
        group = _group(svc, group_key)
        members = [m for m in svc["members"][group["id"]].values() if not roles or m["role"] in roles]
        members.sort(key=lambda m: m["email"])
        return JSONResponse(_paged("admin#directory#members", "members", members, offset, limit))


def _member(svc: dict[str, Any], group: dict[str, Any], member_key: str) -> dict[str, Any]:
    members: dict[str, dict[str, Any]] = svc["members"][group["id"]]
    if member_key in members:
        return members[member_key]
    for member in members.values():
        if member["email"].lower() == member_key.lower():
            return member
    raise not_found("memberKey")


@router.get(f"{DIRECTORY}/groups/{{group_key}}/members/{{member_key}}")
async def members_get(group_key: str, member_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_READ)
    sandbox, svc, _ = _sandbox(request)
    with sandbox.lock:
        return JSONResponse(copy.deepcopy(_member(svc, _group(svc, group_key), member_key)))


@router.get(f"{DIRECTORY}/groups/{{group_key}}/hasMember/{{member_key}}")
async def members_has_member(group_key: str, member_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_READ)
    sandbox, svc, _ = _sandbox(request)
    with sandbox.lock:
        group = _group(svc, group_key)
        try:
            _member(svc, group, member_key)
        except SandboxError:
            if _user_by_key(svc, member_key) is None:
                raise not_found("memberKey") from None
            return JSONResponse({"isMember": False})
        return JSONResponse({"isMember": True})


@router.post(f"{DIRECTORY}/groups/{{group_key}}/members")
async def members_insert(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_WRITE)
    body = await _json(request)
    sandbox, svc, credentials = _sandbox(request)
    key = body.get("email") or body.get("id")
    if not key or not isinstance(key, str):
        raise required("memberKey")
    role = str(body.get("role") or "MEMBER").upper()
    if role not in ("MEMBER", "MANAGER", "OWNER"):
        raise invalid("role")
    with sandbox.lock:
        group = _group(svc, group_key)
        user = _user_by_key(svc, key)
        nested = _group_by_key(svc, key) if user is None else None
        if user is not None:
            _creation_complete(svc, user["id"])
            member = {"id": user["id"], "email": user["primaryEmail"], "type": "USER",
                      "status": "SUSPENDED" if user.get("suspended") else "ACTIVE"}
        elif nested is not None:
            member = {"id": nested["id"], "email": nested["email"], "type": "GROUP"}
        elif "@" in key and not _in_domain(key, credentials) and EMAIL.match(key):
            member = {"id": stable_user_id(key), "email": key.lower(), "type": "USER", "status": "ACTIVE"}
        else:
            raise not_found("memberKey")
        members = svc["members"][group["id"]]
        if member["id"] in members:
            raise SandboxError(409, "Member already exists.", reason="duplicate")
        member = {"kind": "admin#directory#member", **member, "role": role, "delivery_settings": "ALL_MAIL"}
        member["etag"] = _etag(member)
        members[member["id"]] = member
        _count_members(svc, group["id"])
        return JSONResponse(copy.deepcopy(member))


@router.delete(f"{DIRECTORY}/groups/{{group_key}}/members/{{member_key}}")
async def members_delete(group_key: str, member_key: str, request: Request) -> Response:
    _authorize(request, MEMBER_WRITE)
    sandbox, svc, _ = _sandbox(request)
    with sandbox.lock:
        group = _group(svc, group_key)
        member = _member(svc, group, member_key)
        del svc["members"][group["id"]][member["id"]]
        _count_members(svc, group["id"])
    return _no_content()


# Calendar API v3 (include/sandbox/google_calendar.py) shares this service's token endpoint and state.
from include.sandbox.google_calendar import router as _calendar_router  # noqa: E402

router.include_router(_calendar_router)

service = Service(SERVICE, router, render_error, seed)


# --- credentials ---------------------------------------------------------------------------------------

SERVICE_ACCOUNT = "officeflow-sandbox@officeflow-sandbox.iam.gserviceaccount.com"


def service_account_key(client_email: str, token_uri: str) -> tuple[dict[str, Any], str]:
    """A new RSA service-account key: (the key file Google would hand out, its public PEM)."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    project = client_email.split("@", 1)[1].split(".", 1)[0]
    keyfile = {
        "type": "service_account", "project_id": project, "private_key_id": secrets.token_hex(20),
        "private_key": private_pem, "client_email": client_email, "client_id": stable_user_id(client_email),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    return keyfile, public_pem


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """Register a fresh service account; the connection holds its key file, subject and endpoint."""
    keyfile, public_pem = service_account_key(SERVICE_ACCOUNT, f"{base_url}/{SERVICE}/token")
    credentials.google_service_accounts[SERVICE_ACCOUNT] = public_pem
    return {"officeflow_google": {
        "conn_type": "google_cloud_platform",
        "description": "OfficeFlow sandbox: Google Workspace Admin SDK (domain-wide delegation)",
        "extra": {"keyfile_dict": keyfile, "subject": f"admin@{credentials.google_domain}",
                  "api_endpoint": f"{base_url}/{SERVICE}/"},
    }}
