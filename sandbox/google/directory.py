"""Admin SDK Directory API v1 (``/google/admin/directory/v1/...``): users, groups, members, and the seed.

Tokens come from :mod:`sandbox.google.oauth`; what each call checks is described in the package's
docstring (:mod:`sandbox.google`).
"""

from __future__ import annotations

import copy
import hashlib
import re
import shlex
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.core import Credentials, SandboxError
from sandbox.google.common import (
    EMAIL,
    NOT_AUTHORIZED,
    SCOPE,
    bearer_grant,
    customer_id,
    etag,
    group_by_key,
    in_domain,
    invalid,
    no_content,
    not_found,
    now_iso,
    page_params,
    paged,
    read_json,
    required,
    stable_group_id,
    stable_user_id,
    state_of,
    user_by_key,
)
from sandbox.groups import managed_groups

DIRECTORY = "/admin/directory/v1"
USER_READ = (f"{SCOPE}admin.directory.user", f"{SCOPE}admin.directory.user.readonly")
USER_WRITE = (f"{SCOPE}admin.directory.user",)
USER_SECURITY = (f"{SCOPE}admin.directory.user.security",)
GROUP_READ = (f"{SCOPE}admin.directory.group", f"{SCOPE}admin.directory.group.readonly")
MEMBER_READ = (*GROUP_READ, f"{SCOPE}admin.directory.group.member", f"{SCOPE}admin.directory.group.member.readonly")
MEMBER_WRITE = (f"{SCOPE}admin.directory.group", f"{SCOPE}admin.directory.group.member")
CREATION_WINDOW = 0.5  # seconds; Credentials.extra["google_user_creation_seconds"] overrides

router = APIRouter(tags=["google"])


# --- seed -------------------------------------------------------------------------------------------

def _user_resource(user_id: str, email: str, given: str, family: str, domain: str, *,
                   admin: bool = False) -> dict[str, Any]:
    return {
        "kind": "admin#directory#user", "id": user_id, "primaryEmail": email,
        "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}"},
        "isAdmin": admin, "isDelegatedAdmin": False, "lastLoginTime": "1970-01-01T00:00:00.000Z",
        "creationTime": now_iso(), "agreedToTerms": admin, "suspended": False, "archived": False,
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
    domain = credentials.google_domain.lower()
    admin_email = f"admin@{domain}"
    admin = _user_resource(stable_user_id(admin_email), admin_email, "Workspace", "Admin", domain, admin=True)
    people_email = f"people.manager@{domain}"
    people = _user_resource(stable_user_id(people_email), people_email, "People", "Manager", domain)
    for user in (admin, people):
        user["etag"] = etag(user)
    state.update(users={admin["id"]: admin, people["id"]: people}, groups={}, members={}, password_hashes={},
                 sign_outs={}, pending_creation={})
    for email in sorted(managed_groups("google")):
        group = _group_resource(email.lower())
        group["etag"] = etag(group)
        state["groups"][group["id"]] = group
        state["members"][group["id"]] = {}


# --- request helpers --------------------------------------------------------------------------------

def _authorize(request: Request, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The grant of the request's token: 401 without a valid one, 403 without an admin subject or scope."""
    sandbox, svc, _ = state_of(request)
    grant = bearer_grant(request)
    with sandbox.lock:
        subject = user_by_key(svc, grant["sub"]) if grant.get("sub") else None
    if subject is None or not subject.get("isAdmin") or subject.get("suspended"):
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
    if not set(scopes) & set(grant.get("scopes", ())):
        raise SandboxError(403, "Request had insufficient authentication scopes.", reason="insufficientPermissions")
    return grant


def _user(svc: dict[str, Any], key: str, credentials: Credentials) -> dict[str, Any]:
    user = user_by_key(svc, key)
    if user is None:
        if "@" in key and not in_domain(key, credentials):
            raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
        raise not_found("userKey")
    return user


def _group(svc: dict[str, Any], key: str) -> dict[str, Any]:
    group = group_by_key(svc, key)
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


def _check_scope_of_listing(request: Request, credentials: Credentials, *, user_key_ok: bool = False) -> None:
    customer = request.query_params.get("customer")
    domain = request.query_params.get("domain")
    if not customer and not domain and not (user_key_ok and request.query_params.get("userKey")):
        raise SandboxError(400, "Bad Request", reason="badRequest")
    if customer and customer not in ("my_customer", customer_id(credentials.google_domain.lower())):
        raise SandboxError(400, "Bad Request", reason="badRequest")
    if domain and domain.lower() != credentials.google_domain.lower():
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")


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
    body = await read_json(request)
    sandbox, svc, credentials = state_of(request)
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
    if not in_domain(email, credentials):
        raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
    with sandbox.lock:
        if user_by_key(svc, email) is not None or group_by_key(svc, email) is not None:
            raise SandboxError(409, "Entity already exists.", reason="duplicate")
        user_id = f"1{sandbox.next_id():020d}"
        user = _user_resource(user_id, email.lower(), body["name"]["givenName"], body["name"]["familyName"],
                              credentials.google_domain.lower())
        user["agreedToTerms"] = False
        user["isMailboxSetup"] = False
        _merge_user(user, {k: v for k, v in body.items() if k not in ("primaryEmail", "name")}, svc)
        user["etag"] = etag(user)
        svc["users"][user_id] = user
        window = float(credentials.extra.get("google_user_creation_seconds", CREATION_WINDOW))
        if window > 0:
            svc["pending_creation"][user_id] = time.time() + window
        return JSONResponse(copy.deepcopy(user))


@router.get(f"{DIRECTORY}/users/{{user_key}}")
async def users_get(user_key: str, request: Request) -> JSONResponse:
    _authorize(request, USER_READ)
    sandbox, svc, credentials = state_of(request)
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
    sandbox, svc, credentials = state_of(request)
    _check_scope_of_listing(request, credentials)
    offset, limit = page_params(request, default=100, maximum=500)
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
        return JSONResponse(paged("admin#directory#users", "users", users, offset, limit))


async def _users_modify(user_key: str, request: Request) -> JSONResponse:
    _authorize(request, USER_WRITE)
    body = await read_json(request)
    sandbox, svc, credentials = state_of(request)
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
            if not in_domain(new_email, credentials):
                raise SandboxError(403, NOT_AUTHORIZED, reason="forbidden")
            other = user_by_key(svc, new_email)
            if (other is not None and other["id"] != user["id"]) or group_by_key(svc, new_email) is not None:
                raise SandboxError(409, "Entity already exists.", reason="duplicate")
        _merge_user(user, body, svc)
        user["etag"] = etag(user)
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
    sandbox, svc, credentials = state_of(request)
    with sandbox.lock:
        user = _user(svc, user_key, credentials)
        _creation_complete(svc, user["id"])
        del svc["users"][user["id"]]
        svc["password_hashes"].pop(user["id"], None)
        for group_id, members in svc["members"].items():
            if members.pop(user["id"], None) is not None:
                _count_members(svc, group_id)
    return no_content()


@router.post(f"{DIRECTORY}/users/{{user_key}}/signOut")
async def users_sign_out(user_key: str, request: Request) -> Response:
    _authorize(request, USER_SECURITY)
    sandbox, svc, credentials = state_of(request)
    with sandbox.lock:
        user = _user(svc, user_key, credentials)
        svc["sign_outs"][user["id"]] = svc["sign_outs"].get(user["id"], 0) + 1
    return no_content()


# --- groups and members ------------------------------------------------------------------------------

def _count_members(svc: dict[str, Any], group_id: str) -> None:
    group = svc["groups"][group_id]
    group["directMembersCount"] = str(len(svc["members"][group_id]))
    group["etag"] = etag(group)


@router.get(f"{DIRECTORY}/groups/{{group_key}}")
async def groups_get(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, GROUP_READ)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        return JSONResponse(copy.deepcopy(_group(svc, group_key)))


@router.get(f"{DIRECTORY}/groups")
async def groups_list(request: Request) -> JSONResponse:
    _authorize(request, GROUP_READ)
    sandbox, svc, credentials = state_of(request)
    _check_scope_of_listing(request, credentials, user_key_ok=True)
    offset, limit = page_params(request, default=200, maximum=200)
    user_key = request.query_params.get("userKey")
    with sandbox.lock:
        groups = list(svc["groups"].values())
        if user_key:
            member = user_by_key(svc, user_key) or group_by_key(svc, user_key)
            if member is None:
                if in_domain(user_key, credentials) or "@" not in user_key:
                    raise not_found("userKey")
                member_id = stable_user_id(user_key)  # an external member's id
            else:
                member_id = member["id"]
            groups = [g for g in groups if member_id in svc["members"][g["id"]]]
        groups.sort(key=lambda g: g["email"])
        return JSONResponse(paged("admin#directory#groups", "groups", groups, offset, limit))


@router.get(f"{DIRECTORY}/groups/{{group_key}}/members")
async def members_list(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_READ)
    sandbox, svc, _ = state_of(request)
    offset, limit = page_params(request, default=200, maximum=200)
    roles = {r.strip().upper() for r in request.query_params.get("roles", "").split(",") if r.strip()}
    with sandbox.lock:
        group = _group(svc, group_key)
        members = [m for m in svc["members"][group["id"]].values() if not roles or m["role"] in roles]
        members.sort(key=lambda m: m["email"])
        return JSONResponse(paged("admin#directory#members", "members", members, offset, limit))


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
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        return JSONResponse(copy.deepcopy(_member(svc, _group(svc, group_key), member_key)))


@router.get(f"{DIRECTORY}/groups/{{group_key}}/hasMember/{{member_key}}")
async def members_has_member(group_key: str, member_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_READ)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        group = _group(svc, group_key)
        try:
            _member(svc, group, member_key)
        except SandboxError:
            if user_by_key(svc, member_key) is None:
                raise not_found("memberKey") from None
            return JSONResponse({"isMember": False})
        return JSONResponse({"isMember": True})


@router.post(f"{DIRECTORY}/groups/{{group_key}}/members")
async def members_insert(group_key: str, request: Request) -> JSONResponse:
    _authorize(request, MEMBER_WRITE)
    body = await read_json(request)
    sandbox, svc, credentials = state_of(request)
    key = body.get("email") or body.get("id")
    if not key or not isinstance(key, str):
        raise required("memberKey")
    role = str(body.get("role") or "MEMBER").upper()
    if role not in ("MEMBER", "MANAGER", "OWNER"):
        raise invalid("role")
    with sandbox.lock:
        group = _group(svc, group_key)
        user = user_by_key(svc, key)
        nested = group_by_key(svc, key) if user is None else None
        if user is not None:
            _creation_complete(svc, user["id"])
            member = {"id": user["id"], "email": user["primaryEmail"], "type": "USER",
                      "status": "SUSPENDED" if user.get("suspended") else "ACTIVE"}
        elif nested is not None:
            member = {"id": nested["id"], "email": nested["email"], "type": "GROUP"}
        elif "@" in key and not in_domain(key, credentials) and EMAIL.match(key):
            member = {"id": stable_user_id(key), "email": key.lower(), "type": "USER", "status": "ACTIVE"}
        else:
            raise not_found("memberKey")
        members = svc["members"][group["id"]]
        if member["id"] in members:
            raise SandboxError(409, "Member already exists.", reason="duplicate")
        member = {"kind": "admin#directory#member", **member, "role": role, "delivery_settings": "ALL_MAIL"}
        member["etag"] = etag(member)
        members[member["id"]] = member
        _count_members(svc, group["id"])
        return JSONResponse(copy.deepcopy(member))


@router.delete(f"{DIRECTORY}/groups/{{group_key}}/members/{{member_key}}")
async def members_delete(group_key: str, member_key: str, request: Request) -> Response:
    _authorize(request, MEMBER_WRITE)
    sandbox, svc, _ = state_of(request)
    with sandbox.lock:
        group = _group(svc, group_key)
        member = _member(svc, group, member_key)
        del svc["members"][group["id"]][member["id"]]
        _count_members(svc, group["id"])
    return no_content()
