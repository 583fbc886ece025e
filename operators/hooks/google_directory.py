"""Google Workspace accounts through the Admin SDK Directory API: :class:`GoogleDirectoryHook`.

Implements :class:`include.officeflow.identity.IdentityClient` for ``provider="google"`` on
:class:`operators.hooks.google_workspace.GoogleWorkspaceHook` (connection, domain-wide delegation,
client, error mapping: see there). It acts as the connection's ``extra.subject``, a Workspace admin
(the Directory API answers only to one), with the :data:`SCOPES` below unless ``extra.scope``
(comma-separated) names others. A ``users.get`` answered for an alias is not the login's account;
a group that does not exist is a :class:`NotFound` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from include.officeflow.errors import Conflict, NotFound
from include.officeflow.identity import Account, Person
from operators.hooks.google_workspace import GoogleWorkspaceHook

log = logging.getLogger(__name__)

SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.security",  # users.signOut
    "https://www.googleapis.com/auth/admin.directory.group",
    "https://www.googleapis.com/auth/admin.directory.group.member",
)
PAGE_SIZE = 200


class GoogleDirectoryHook(GoogleWorkspaceHook):
    """Identity client for Google Workspace (Admin SDK Directory v1, domain-wide delegation).

    :param conn_id: the ``google_cloud_platform`` connection (default ``officeflow_google``).
    """

    hook_name = "OfficeFlow Google Workspace Directory"
    provider = "google"
    api = ("admin", "directory_v1")
    api_title = "Directory API"
    default_scopes = SCOPES

    def auth_hint(self) -> str:
        return ("service-account key, domain-wide delegation scopes, that extra.subject is an admin, and that the "
                "address's domain belongs to the Workspace account")

    # --- IdentityClient --------------------------------------------------------------------------------
    def find_user(self, login: str) -> Account | None:
        login = login.strip().lower()
        try:
            user = self._execute(f"get user {login}", lambda d: d.users().get(userKey=login))
        except NotFound:
            return None
        if user.get("primaryEmail", "").lower() != login:
            # users.get also resolves aliases: that is another person's account, not this login's.
            log.warning("%s is an alias of %s, not an account of its own", login, user.get("primaryEmail"))
            return None
        return _account(user)

    def create_user(self, person: Person, password: str) -> Account:
        body = {"primaryEmail": person.email, "name": {"givenName": person.given_name,
                                                       "familyName": person.family_name},
                "password": password, "changePasswordAtNextLogin": True, **_profile(person, {})}
        user = self._execute(f"create user {person.email}", lambda d: d.users().insert(body=body))
        return _account(user)

    def update_user(self, account: Account, person: Person) -> Account:
        body = {"name": {"givenName": person.given_name, "familyName": person.family_name},
                **_profile(person, account.raw)}
        user = self._execute(f"update user {account.login}",
                             lambda d: d.users().patch(userKey=account.id, body=body))
        return _account(user)

    def suspend_user(self, account: Account) -> Account:
        current = self._execute(f"get user {account.login}", lambda d: d.users().get(userKey=account.id))
        if current.get("suspended"):
            return _account(current)
        user = self._execute(f"suspend user {account.login}",
                             lambda d: d.users().patch(userKey=account.id, body={"suspended": True}))
        return _account(user)

    def revoke_sessions(self, account: Account) -> None:
        self._execute(f"sign out {account.login}", lambda d: d.users().signOut(userKey=account.id))

    def delete_user(self, account: Account) -> None:
        try:
            self._execute(f"delete user {account.login}", lambda d: d.users().delete(userKey=account.id))
        except NotFound:
            log.info("%s was already deleted", account.login)

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        missing: list[str] = []
        for name in dict.fromkeys(names):
            try:
                group = self._execute(f"get group {name}", lambda d, n=name: d.groups().get(groupKey=n))
            except NotFound:
                missing.append(name)
                continue
            ids[name] = group["id"]
        if missing:
            raise NotFound(f"Google groups not found: {', '.join(missing)} (check include/identity/groups.yaml "
                           "against the Workspace's groups)")
        return ids

    def user_groups(self, account: Account) -> dict[str, str]:
        groups = self._pages(f"list groups of {account.login}",
                             lambda d, token: d.groups().list(userKey=account.id, maxResults=PAGE_SIZE,
                                                              pageToken=token),
                             "groups")
        return {group["id"]: group["email"] for group in groups}

    def add_member(self, account: Account, group_id: str) -> bool:
        try:
            self._execute(f"add {account.login} to group {group_id}",
                          lambda d: d.members().insert(groupKey=group_id,
                                                       body={"email": account.login, "role": "MEMBER"}))
        except Conflict:
            return False
        return True

    def remove_member(self, account: Account, group_id: str) -> bool:
        try:
            self._execute(f"remove {account.login} from group {group_id}",
                          lambda d: d.members().delete(groupKey=group_id, memberKey=account.id))
        except NotFound:
            return False
        return True


# --- helpers ---------------------------------------------------------------------------------------------

def _account(user: dict[str, Any]) -> Account:
    suspended = bool(user.get("suspended"))
    status = "ARCHIVED" if user.get("archived") else "SUSPENDED" if suspended else "ACTIVE"
    return Account(provider="google", id=str(user["id"]), login=str(user["primaryEmail"]).lower(),
                   enabled=not suspended and not user.get("archived"), status=status, raw=user)


def _profile(person: Person, current: dict[str, Any]) -> dict[str, Any]:
    """Department/title (primary organization), manager (relations), employee id (externalIds),
    recovery email from ``person``, keeping the other entries ``current`` has."""
    body: dict[str, Any] = {}
    if person.department or person.job_title or person.location:
        organizations = [dict(o) for o in current.get("organizations") or []]
        primary = next((o for o in organizations if o.get("primary")), None)
        if primary is None:
            primary = {"primary": True, "customType": ""}
            organizations.insert(0, primary)
        for key, value in (("department", person.department), ("title", person.job_title),
                           ("location", person.location)):
            if value:
                primary[key] = value
        body["organizations"] = organizations
    if person.manager_email:
        relations = [r for r in current.get("relations") or [] if r.get("type") != "manager"]
        body["relations"] = [{"type": "manager", "value": person.manager_email}, *relations]
    if person.employee_id:
        external = [e for e in current.get("externalIds") or [] if e.get("type") != "organization"]
        body["externalIds"] = [{"type": "organization", "value": person.employee_id}, *external]
    if person.personal_email:
        body["recoveryEmail"] = person.personal_email
    return body
