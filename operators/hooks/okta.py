"""Okta hook: :class:`~include.officeflow.identity.IdentityClient` over the Okta Management API.

The Okta SDK is not a dependency; this is an ``httpx`` client sending ``Authorization: SSWS <token>``
(what the issue allows: "Okta via its official SDK or an httpx hook with the SSWS token").

Connection (``officeflow_okta`` by default, conn_type ``http``):

- ``host``: the org URL, ``https://acme.okta.com`` (a bare host name gets ``https://``; ``schema``
  and ``port`` are used when given);
- ``password``: an Okta API token (Security > API > Tokens) of an admin allowed to manage users
  and groups.

Mapping to the provider-neutral model:

- ``Account.id`` is the Okta user id, ``login`` is ``profile.login``, ``status`` Okta's status.
- ``enabled`` is True for ACTIVE, PROVISIONED (activated, waiting for the user to set a password),
  RECOVERY, PASSWORD_EXPIRED and LOCKED_OUT: every status in which the account is live (or will be
  after the user acts) and which offboarding must therefore deactivate. STAGED (never activated),
  SUSPENDED and DEPROVISIONED are not enabled.
- "Suspend" is Okta's ``lifecycle/deactivate`` (status DEPROVISIONED; sessions end, the user
  cannot sign in). Deactivation is not idempotent at Okta (a second call is an error), so the
  current status is read first.
- Delete is Okta's two-step delete: deactivate (if needed), then ``DELETE /users/{id}``.
- Groups are matched on ``profile.name``. Only OKTA_GROUP groups are managed: ``user_groups`` leaves
  out ``Everyone`` (BUILT_IN) and app-imported groups, whose memberships Okta does not let the API change.
- New accounts get the temporary password with ``nextLogin=changePassword``: the user must change
  it at first sign-in.

HTTP failures become the errors of :mod:`include.officeflow.errors` (401 / permission 403 -> AuthError;
400 -> InvalidInput, or Conflict for a login that already exists; 404 -> NotFound; 429 -> RateLimited
with the wait from ``Retry-After`` or ``X-Rate-Limit-Reset``; 5xx / network -> Unavailable). Each call
is made once: the operators' ``with_retries`` owns the retry policy.
Paging follows ``Link: <…>; rel="next"`` (only within the org URL). The token and passwords are
never logged or put in error messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from airflow.sdk import BaseHook

from include.officeflow import errors
from include.officeflow.identity import DEFAULT_CONN_IDS, Account, Person
from include.officeflow.integration_metrics import external_call
from operators.hooks.closing import ClosingHook

API = "/api/v1"
ENABLED_STATUSES = frozenset({"ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"})
#: 403s that are about the user's state, not the token's permissions.
STATE_ERRORS = frozenset({"E0000038", "E0000016"})
PAGE_SIZE = 200


class OktaHook(ClosingHook, BaseHook):
    """Okta users, lifecycle and groups through the Management API with an SSWS token."""

    conn_name_attr = "okta_conn_id"
    default_conn_name = DEFAULT_CONN_IDS["okta"]
    conn_type = "http"
    hook_name = "OfficeFlow Okta"
    provider = "okta"

    def __init__(self, okta_conn_id: str = DEFAULT_CONN_IDS["okta"], *, timeout: float = 30.0) -> None:
        super().__init__()
        self.okta_conn_id = okta_conn_id
        self.timeout = timeout
        self.org_url, token = self._read_connection()
        self._headers = {"Authorization": f"SSWS {token}", "Accept": "application/json",
                         "Content-Type": "application/json", "User-Agent": "officeflow-okta-hook"}
        self._http: httpx.Client | None = None

    def _read_connection(self) -> tuple[str, str]:
        try:
            conn = self.get_connection(self.okta_conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends
            raise errors.AuthError(f"Okta connection {self.okta_conn_id!r} is not defined ({exc.__class__.__name__}); "
                            "create it with host = org URL and password = API token") from None
        host = (conn.host or "").strip().rstrip("/")
        token = (conn.password or "").strip()
        if not host or not token:
            raise errors.AuthError(f"Okta connection {self.okta_conn_id!r} needs host (the org URL, "
                            "https://<org>.okta.com) and password (an API token)")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")
        return host, token

    def get_conn(self) -> httpx.Client:
        """The HTTP client of the org URL, with the token; built on first use (again after :meth:`close`)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.org_url, timeout=self.timeout, follow_redirects=False,
                                      headers=self._headers)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


    # --- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                 json: dict[str, Any] | None = None) -> httpx.Response:
        with external_call("okta"):
            try:
                response = self.get_conn().request(method, url, params=params, json=json)
            except httpx.HTTPError as exc:
                raise errors.Unavailable(f"Okta {method} {urlsplit(str(url)).path} failed: "
                                         f"{exc.__class__.__name__}: {exc}") from None
            if response.is_success:
                return response
            raise self._error(method, response)

    def _error(self, method: str, response: httpx.Response) -> errors.ServiceError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = str(body.get("errorCode") or "")
        summary = str(body.get("errorSummary") or response.reason_phrase or "error")
        causes = [str(c.get("errorSummary")) for c in body.get("errorCauses") or [] if isinstance(c, dict)]
        detail = f"{summary}" + (f" ({'; '.join(causes)})" if causes else "")
        where = f"{method} {response.request.url.path}"
        message = f"Okta {status}{' ' + code if code else ''} on {where}: {detail}"
        if status == 401:
            return errors.AuthError(f"{message}; check the connection {self.okta_conn_id!r} "
                             "(host = org URL, password = a valid API token)")
        if status == 403 and code not in STATE_ERRORS:
            return errors.AuthError(f"{message}; check that the API token of connection {self.okta_conn_id!r} "
                             "belongs to an admin allowed to manage users and groups")
        if status == 429:
            return errors.RateLimited(message, retry_after=errors.parse_retry_after(
                response.headers.get("Retry-After"), reset_epoch=response.headers.get("X-Rate-Limit-Reset")))
        if status == 409 or (status == 400 and any("already exists" in c for c in causes)):
            return errors.Conflict(message)
        if status == 404:
            return errors.NotFound(message)
        if 400 <= status < 500:
            return errors.InvalidInput(message)
        return errors.Unavailable(message) if status >= 500 else errors.ServiceError(message)

    def _pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``Link: rel="next"`` (only within the org URL: the
        token is never sent elsewhere)."""
        response = self._request("GET", path, params=params)
        while True:
            items = response.json()
            if not isinstance(items, list):
                raise errors.ServiceError(f"Okta GET {path}: expected a list, got {type(items).__name__}")
            yield from items
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            if not next_url.startswith(self.org_url + "/"):
                raise errors.ServiceError(f"Okta paging link {next_url!r} is outside the org URL {self.org_url!r}")
            response = self._request("GET", next_url)

    def _get_user(self, key: str) -> dict[str, Any] | None:
        try:
            user: dict[str, Any] = self._request("GET", f"{API}/users/{quote(key, safe='@')}").json()
        except errors.NotFound:
            return None
        return user

    # --- model -----------------------------------------------------------------------------------

    def _account(self, user: dict[str, Any]) -> Account:
        status = str(user.get("status") or "")
        return Account(provider=self.provider, id=str(user["id"]), login=str(user.get("profile", {}).get("login", "")),
                       enabled=status in ENABLED_STATUSES, status=status, raw=user)

    def _profile(self, person: Person) -> dict[str, Any]:
        profile: dict[str, Any] = {"firstName": person.given_name, "lastName": person.family_name,
                                   "displayName": person.display_name}
        for key, value in (("department", person.department), ("title", person.job_title),
                           ("employeeNumber", person.employee_id), ("secondEmail", person.personal_email)):
            if value:
                profile[key] = value
        if person.manager_email:
            manager = self.find_user(person.manager_email)
            if manager is not None:
                manager_profile = manager.raw.get("profile", {})
                profile["managerId"] = manager.id
                profile["manager"] = manager_profile.get("displayName") or \
                    f"{manager_profile.get('firstName', '')} {manager_profile.get('lastName', '')}".strip()
            else:
                self.log.warning("Okta: manager %s has no account; managerId not set", person.manager_email)
        return profile

    # --- IdentityClient --------------------------------------------------------------------------

    def find_user(self, login: str) -> Account | None:
        """By login (Okta matches it case-insensitively, any status), else by primary email."""
        wanted = login.strip().casefold()
        user = self._get_user(wanted)
        if user is not None and str(user.get("profile", {}).get("login", "")).casefold() == wanted:
            return self._account(user)
        escaped = wanted.replace("\\", "\\\\").replace('"', '\\"')
        matches = list(self._pages(f"{API}/users", {"search": f'profile.email eq "{escaped}"', "limit": PAGE_SIZE}))
        if len(matches) == 1:
            return self._account(matches[0])
        if len(matches) > 1:
            raise errors.Conflict(f"Okta: {len(matches)} users have the email {login}; resolve the duplicates")
        return None

    def create_user(self, person: Person, password: str) -> Account:
        body = {"profile": {**self._profile(person), "login": person.email, "email": person.email},
                "credentials": {"password": {"value": password}}}
        user = self._request("POST", f"{API}/users", params={"activate": "true", "nextLogin": "changePassword"},
                             json=body).json()
        return self._account(user)

    def update_user(self, account: Account, person: Person) -> Account:
        """Partial update (Okta's POST): attributes OfficeFlow does not know are kept."""
        user = self._request("POST", f"{API}/users/{account.id}", json={"profile": self._profile(person)}).json()
        return self._account(user)

    def suspend_user(self, account: Account) -> Account:
        current = self._get_user(account.id)
        if current is None:
            raise errors.NotFound(f"Okta user {account.id} ({account.login}) no longer exists")
        if current.get("status") == "DEPROVISIONED":
            return self._account(current)
        self._request("POST", f"{API}/users/{account.id}/lifecycle/deactivate", params={"sendEmail": "false"})
        after = self._get_user(account.id)
        if after is None:
            raise errors.NotFound(f"Okta user {account.id} ({account.login}) disappeared while deactivating")
        return self._account(after)

    def revoke_sessions(self, account: Account) -> None:
        self._request("DELETE", f"{API}/users/{account.id}/sessions", params={"oauthTokens": "true"})

    def delete_user(self, account: Account) -> None:
        current = self._get_user(account.id)
        if current is None:
            return
        if current.get("status") != "DEPROVISIONED":
            try:
                self._request("POST", f"{API}/users/{account.id}/lifecycle/deactivate", params={"sendEmail": "false"})
            except errors.NotFound:
                return
        try:
            self._request("DELETE", f"{API}/users/{account.id}", params={"sendEmail": "false"})
        except errors.NotFound:
            return

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for name in dict.fromkeys(names):
            candidates = list(self._pages(f"{API}/groups", {"q": name, "limit": PAGE_SIZE}))
            exact = [g for g in candidates if g.get("profile", {}).get("name") == name] or \
                [g for g in candidates if str(g.get("profile", {}).get("name", "")).casefold() == name.casefold()]
            if not exact:
                missing.append(name)
                continue
            group = exact[0]
            if group.get("type") != "OKTA_GROUP":
                raise errors.InvalidInput(f"Okta group {name!r} is a {group.get('type')} group; its members are "
                                   "managed by Okta or an app, not by OfficeFlow")
            resolved[name] = str(group["id"])
        if missing:
            raise errors.NotFound(f"Okta groups not found: {', '.join(missing)}")
        return resolved

    def _all_groups(self, account: Account) -> list[dict[str, Any]]:
        return list(self._pages(f"{API}/users/{account.id}/groups"))

    def user_groups(self, account: Account) -> dict[str, str]:
        return {str(g["id"]): str(g.get("profile", {}).get("name", "")) for g in self._all_groups(account)
                if g.get("type") == "OKTA_GROUP"}

    def add_member(self, account: Account, group_id: str) -> bool:
        if any(g["id"] == group_id for g in self._all_groups(account)):
            return False
        self._request("PUT", f"{API}/groups/{group_id}/users/{account.id}")
        return True

    def remove_member(self, account: Account, group_id: str) -> bool:
        if not any(g["id"] == group_id for g in self._all_groups(account)):
            return False
        self._request("DELETE", f"{API}/groups/{group_id}/users/{account.id}")
        return True
