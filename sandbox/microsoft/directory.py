"""Microsoft Graph v1.0 users and groups (``/v1.0/users``, ``/v1.0/groups``), and the seed.

Tokens come from :mod:`sandbox.microsoft.oauth`; what each call checks is described in the package's
docstring (:mod:`sandbox.microsoft`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.core import Credentials, SandboxError
from sandbox.groups import managed_groups
from sandbox.microsoft.common import (
    NAMESPACE,
    collection,
    find_group,
    find_user,
    graph_base,
    graph_state,
    now_iso,
    project,
    read_json,
)

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


# --- Graph: query options -------------------------------------------------------------------------

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


# --- Graph: users -----------------------------------------------------------------------------------

def _complex_password(password: str) -> bool:
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    return 8 <= len(password) <= 256 and sum(classes) >= 3


@router.post("/v1.0/users", status_code=201)
async def create_user(request: Request) -> JSONResponse:
    state, data = graph_state(request)
    credentials: Credentials = request.app.state.credentials
    body = await read_json(request)
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
        now = now_iso()
        user: dict[str, Any] = {name: None for name in USER_DEFAULT_SELECT}
        user.update({"businessPhones": [], "department": None, "employeeId": None, "mail": None, "userType": "Member",
                     "usageLocation": None, "companyName": None, "city": None, "country": None})
        user.update({k: v for k, v in body.items() if k in USER_WRITABLE and k != "passwordProfile"})
        user.update({"id": str(uuid.uuid4()), "userPrincipalName": upn, "createdDateTime": now,
                     "lastPasswordChangeDateTime": now, "signInSessionsValidFromDateTime": now,
                     "passwordProfile": {"forceChangePasswordNextSignIn":
                                         bool(profile.get("forceChangePasswordNextSignIn", True))}})
        data["users"][user["id"]] = user
    payload = {"@odata.context": f"{graph_base(request)}/$metadata#users/$entity",
               **project(user, USER_DEFAULT_SELECT)}
    return JSONResponse(status_code=201, content=payload,
                        headers={"Location": f"{graph_base(request)}/users/{user['id']}"})


@router.get("/v1.0/users")
def list_users(request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        users = list(data["users"].values())  # creation order, stable across pages
        if expression := request.query_params.get("$filter"):
            prop, values = _parse_filter(expression, USER_FILTERABLE, "User")
            users = [u for u in users if _matches(u, prop, values)]
        return collection(request, users, context="users", fields=fields)


@router.get("/v1.0/users/{key}")
def get_user(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        user = find_user(data, key)
        return {"@odata.context": f"{graph_base(request)}/$metadata#users/$entity", **project(user, fields)}


@router.patch("/v1.0/users/{key}", status_code=204)
async def update_user(key: str, request: Request) -> Response:
    state, data = graph_state(request)
    body = await read_json(request)
    for name, value in body.items():
        if name not in USER_WRITABLE:
            raise SandboxError(400, f"Property '{name}' does not exist as a declared property or extension property.")
        if name == "accountEnabled" and not isinstance(value, bool):
            raise SandboxError(400, "Invalid value specified for property 'accountEnabled' of resource 'User'.")
        if name in ("displayName", "userPrincipalName", "mailNickname") and not str(value or "").strip():
            raise SandboxError(400, f"Invalid value specified for property '{name}' of resource 'User'.")
    with state.lock:
        user = find_user(data, key)
        if "userPrincipalName" in body and any(
                u["userPrincipalName"].casefold() == str(body["userPrincipalName"]).casefold() and u is not user
                for u in data["users"].values()):
            raise SandboxError(400, "Another object with the same value for property userPrincipalName already "
                               "exists.")
        profile = body.pop("passwordProfile", None)
        user.update(body)
        if isinstance(profile, dict) and profile.get("password"):
            user["lastPasswordChangeDateTime"] = now_iso()
            user["passwordProfile"] = {"forceChangePasswordNextSignIn":
                                       bool(profile.get("forceChangePasswordNextSignIn", True))}
    return Response(status_code=204)


@router.delete("/v1.0/users/{key}", status_code=204)
def delete_user(key: str, request: Request) -> Response:
    state, data = graph_state(request)
    with state.lock:
        user = find_user(data, key)
        del data["users"][user["id"]]
        for group in data["groups"].values():
            if user["id"] in group["members"]:
                group["members"].remove(user["id"])
        data["deletedItems"][user["id"]] = {**user, "deletedDateTime": now_iso()}
    return Response(status_code=204)


@router.post("/v1.0/users/{key}/revokeSignInSessions")
def revoke_sign_in_sessions(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    with state.lock:
        user = find_user(data, key)
        user["signInSessionsValidFromDateTime"] = now_iso()
        user["revokeSignInSessionsCount"] = user.get("revokeSignInSessionsCount", 0) + 1
    return {"@odata.context": f"{graph_base(request)}/$metadata#Edm.Boolean", "value": True}


@router.get("/v1.0/users/{key}/memberOf")
def member_of(key: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        user = find_user(data, key)
        groups = sorted((g for g in data["groups"].values() if user["id"] in g["members"]),
                        key=lambda g: (g["displayName"].casefold(), g["id"]))
        return collection(request, groups, context="directoryObjects", fields=fields,
                           odata_type="#microsoft.graph.group")


# --- Graph: groups ----------------------------------------------------------------------------------

@router.get("/v1.0/groups")
def list_groups(request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        groups = sorted(data["groups"].values(), key=lambda g: (g["displayName"].casefold(), g["id"]))
        if expression := request.query_params.get("$filter"):
            prop, values = _parse_filter(expression, GROUP_FILTERABLE, "Group")
            groups = [g for g in groups if _matches(g, prop, values)]
        return collection(request, groups, context="groups", fields=fields)


@router.post("/v1.0/groups", status_code=201)
async def create_group(request: Request) -> JSONResponse:
    """A security group (tests use it for groups outside the mapping)."""
    state, data = graph_state(request)
    body = await read_json(request)
    for name in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise SandboxError(400, f"Property {name} value is required but is empty or missing.")
    for key in body:
        if (key not in GROUP_PROPERTIES and not key.startswith("@")) or key in ("id", "createdDateTime"):
            raise SandboxError(400, f"Property '{key}' does not exist as a declared property or extension property.")
    with state.lock:
        group: dict[str, Any] = {name: None for name in GROUP_DEFAULT_SELECT}
        group.update({"groupTypes": [], **body, "id": str(uuid.uuid4()), "createdDateTime": now_iso(), "members": []})
        data["groups"][group["id"]] = group
    return JSONResponse(status_code=201, content={"@odata.context": f"{graph_base(request)}/$metadata#groups/$entity",
                                                  **project(group, GROUP_DEFAULT_SELECT)})


@router.get("/v1.0/groups/{group_id}")
def get_group(group_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, GROUP_PROPERTIES, GROUP_DEFAULT_SELECT, "group")
    with state.lock:
        group = find_group(data, group_id)
        return {"@odata.context": f"{graph_base(request)}/$metadata#groups/$entity", **project(group, fields)}


@router.get("/v1.0/groups/{group_id}/members")
def group_members(group_id: str, request: Request) -> dict[str, Any]:
    state, data = graph_state(request)
    fields = _select(request, USER_PROPERTIES, USER_DEFAULT_SELECT, "user")
    with state.lock:
        group = find_group(data, group_id)
        users = [data["users"][uid] for uid in group["members"] if uid in data["users"]]
        return collection(request, users, context="directoryObjects", fields=fields,
                           odata_type="#microsoft.graph.user")


_REF = re.compile(r"/(?:directoryObjects|users)/([^/?#]+)/?$", re.IGNORECASE)


@router.post("/v1.0/groups/{group_id}/members/$ref", status_code=204)
async def add_member(group_id: str, request: Request) -> Response:
    state, data = graph_state(request)
    body = await read_json(request)
    reference = body.get("@odata.id")
    match = _REF.search(str(reference or ""))
    if not reference or not match:
        raise SandboxError(400, "Invalid object identifier '" + str(reference or "") + "'.")
    member_id = unquote(match.group(1))
    with state.lock:
        group = find_group(data, group_id)
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
    state, data = graph_state(request)
    with state.lock:
        group = find_group(data, group_id)
        if member_id not in group["members"]:
            raise SandboxError(404, f"Resource '{member_id}' does not exist or one of its queried reference-property "
                               "objects are not present.")
        group["members"].remove(member_id)
    return Response(status_code=204)


# --- seed --------------------------------------------------------------------------------------------------

def group_id_for(display_name: str) -> str:
    """The seeded group's stable object id."""
    return str(uuid.uuid5(NAMESPACE, f"group:{display_name}"))


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    names = sorted(managed_groups("microsoft"))
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
