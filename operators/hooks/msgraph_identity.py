"""Microsoft Entra ID accounts through Microsoft Graph: :class:`MicrosoftGraphIdentityHook`.

Implements :class:`include.officeflow.identity.IdentityClient` for ``provider="microsoft"`` on
:class:`operators.hooks.msgraph.MicrosoftGraphHook` (the ``msgraph`` connection, token, requests,
paging and error mapping: see there). The app registration needs the ``User.ReadWrite.All`` and
``GroupMember.ReadWrite.All`` application permissions (admin-consented).

``Account.id`` is the object id, ``login`` the userPrincipalName, ``enabled`` ``accountEnabled``
(status ``ENABLED``/``DISABLED``). Lookups ``$select`` the properties they need (Graph's default user
representation has neither accountEnabled nor department); a work address that is not a
userPrincipalName is looked up as a ``mail``. An existing userPrincipalName on create is a
:class:`Conflict`; a 404 is None or False where the contract says so. Passwords are never logged or
put in messages. Not covered: the manager reference (``/users/{id}/manager/$ref``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from include.officeflow.errors import InvalidInput, NotFound
from include.officeflow.identity import Account, Person
from operators.hooks.msgraph import MicrosoftGraphHook

USER_SELECT = ("id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,department,jobTitle,"
               "employeeId,officeLocation")
GROUP_FILTER_CHUNK = 15  # Graph allows at most 15 values in a $filter 'in' list
MEMBER_EXISTS_MARKER = "added object references already exist"
_NICKNAME_DROP = re.compile(r"[^A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]")


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mail_nickname(person: Person) -> str:
    """The mail alias Graph requires on create: the login's local part without the characters it refuses."""
    nickname = _NICKNAME_DROP.sub("", person.local_part).strip(".")[:64]
    return nickname or f"user{person.employee_id or secrets.token_hex(4)}"


class MicrosoftGraphIdentityHook(MicrosoftGraphHook):
    """Entra ID users and group memberships through Microsoft Graph (see the module docstring).

    :param conn_id: the ``msgraph`` connection (default ``officeflow_microsoft``).
    :param timeout: seconds per request (default: ``extra.timeout``, else 30).
    """

    hook_name = "OfficeFlow Microsoft Graph identity"
    permissions = "User.ReadWrite.All and GroupMember.ReadWrite.All application permissions"

    # --- model -----------------------------------------------------------------------------------------

    def _account(self, user: dict[str, Any]) -> Account:
        enabled = bool(user.get("accountEnabled"))
        return Account(provider=self.provider, id=str(user["id"]), login=str(user.get("userPrincipalName") or ""),
                       enabled=enabled, status="ENABLED" if enabled else "DISABLED", raw=user)

    @staticmethod
    def _profile(person: Person) -> dict[str, Any]:
        fields: dict[str, Any] = {"givenName": person.given_name, "surname": person.family_name,
                                  "displayName": person.display_name}
        optional = {"department": person.department, "jobTitle": person.job_title,
                    "employeeId": person.employee_id, "officeLocation": person.location}
        fields.update({k: v for k, v in optional.items() if v is not None})
        return fields

    # --- IdentityClient ----------------------------------------------------------------------------------

    def find_user(self, login: str) -> Account | None:
        login = login.strip()
        response = self._send("GET", f"users/{quote(login, safe='@')}", params={"$select": USER_SELECT})
        if response.is_success:
            return self._account(response.json())
        if response.status_code != 404:
            raise self._error(response, f"look-up of {login}")
        # Not a userPrincipalName: the work address may be the mail of an account whose UPN differs.
        found = self._call("GET", "users", f"look-up of {login}",
                           params={"$filter": f"mail eq {_odata_string(login)}", "$select": USER_SELECT}).json()
        users = found.get("value", [])
        return self._account(users[0]) if users else None

    def create_user(self, person: Person, password: str) -> Account:
        body = {
            "accountEnabled": True,
            "userPrincipalName": person.email,
            "mailNickname": mail_nickname(person),
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": True},
            **self._profile(person),
        }
        user = self._call("POST", "users", f"creation of {person.email}", body=body).json()
        user.pop("@odata.context", None)
        user.setdefault("accountEnabled", True)
        for key in ("department", "employeeId"):  # not in the representation Graph answers with
            user.setdefault(key, body.get(key))
        return self._account(user)

    def update_user(self, account: Account, person: Person) -> Account:
        wanted = self._profile(person)
        changes = {k: v for k, v in wanted.items() if account.raw.get(k) != v}
        if not changes:
            return account
        self._call("PATCH", f"users/{account.id}", f"update of {account.login}", body=changes)
        return self._account({**account.raw, **changes, "id": account.id})

    def suspend_user(self, account: Account) -> Account:
        current = self._call("GET", f"users/{account.id}", f"look-up of {account.login}",
                             params={"$select": USER_SELECT}).json()
        current.pop("@odata.context", None)
        if not current.get("accountEnabled"):
            return self._account(current)
        self._call("PATCH", f"users/{account.id}", f"suspension of {account.login}", body={"accountEnabled": False})
        return self._account({**current, "accountEnabled": False})

    def revoke_sessions(self, account: Account) -> None:
        self._call("POST", f"users/{account.id}/revokeSignInSessions", f"session revocation of {account.login}")

    def delete_user(self, account: Account) -> None:
        response = self._send("DELETE", f"users/{account.id}")
        if response.is_success or response.status_code == 404:
            return
        raise self._error(response, f"deletion of {account.login}")

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, list[str]] = {}
        for start in range(0, len(wanted), GROUP_FILTER_CHUNK):
            chunk = wanted[start:start + GROUP_FILTER_CHUNK]
            expression = f"displayName in ({', '.join(_odata_string(n) for n in chunk)})"
            for group in self._pages("groups", {"$filter": expression, "$select": "id,displayName", "$top": 999},
                                     "group look-up"):
                found.setdefault(str(group.get("displayName", "")).casefold(), []).append(str(group["id"]))
        ids: dict[str, str] = {}
        missing, ambiguous = [], []
        for name in wanted:
            matches = found.get(name.casefold(), [])
            if not matches:
                missing.append(name)
            elif len(matches) > 1:
                ambiguous.append(name)
            else:
                ids[name] = matches[0]
        if missing:
            raise NotFound(f"Microsoft Graph: no group named {', '.join(repr(n) for n in missing)}")
        if ambiguous:
            raise InvalidInput(f"Microsoft Graph: several groups are named "
                               f"{', '.join(repr(n) for n in ambiguous)}; group displayNames in the "
                               "mapping must be unique")
        return ids

    def user_groups(self, account: Account) -> dict[str, str]:
        return {str(item["id"]): str(item.get("displayName") or "")
                for item in self._pages(f"users/{account.id}/memberOf", {"$select": "id,displayName", "$top": 999},
                                        f"group list of {account.login}")
                if item.get("@odata.type", "#microsoft.graph.group") == "#microsoft.graph.group"}

    def add_member(self, account: Account, group_id: str) -> bool:
        reference = {"@odata.id": f"{self.settings().graph_base}/directoryObjects/{account.id}"}
        response = self._send("POST", f"groups/{group_id}/members/$ref", body=reference)
        if response.is_success:
            return True
        if response.status_code == 400 and MEMBER_EXISTS_MARKER in self._graph_error(response)[1]:
            return False
        raise self._error(response, f"adding {account.login} to group {group_id}")

    def remove_member(self, account: Account, group_id: str) -> bool:
        response = self._send("DELETE", f"groups/{group_id}/members/{account.id}/$ref")
        if response.is_success:
            return True
        if response.status_code == 404:
            return False
        raise self._error(response, f"removing {account.login} from group {group_id}")
