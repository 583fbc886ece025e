"""Google Workspace accounts through the Admin SDK Directory API (google-api-python-client).

:class:`GoogleDirectoryHook` implements :class:`include.officeflow.identity.IdentityClient` on an
Airflow ``google_cloud_platform`` connection, read by the Google provider's ``GoogleBaseHook``:

- ``extra.keyfile_dict`` (or ``key_path``): the service-account key. Its ``token_uri`` is where
  access tokens come from (Google's by default; the sandbox's in dev mode and tests);
- ``extra.subject``: the Workspace admin the service account acts as (domain-wide delegation),
  required: the Directory API answers only to an admin;
- ``extra.api_endpoint`` (optional): the Admin SDK's root URL, ``https://admin.googleapis.com/``
  by default; dev mode and tests point it at the sandbox (``<sandbox>/google/``);
- ``extra.scope`` (optional, comma-separated): overrides :data:`SCOPES`; the admin console's
  domain-wide delegation entry of the service account must grant them.

HTTP failures become the identity errors (401/403 -> :class:`IdentityAuthError`, 400 ->
:class:`IdentityInputError`, 404 -> :class:`IdentityNotFound` or None for lookups (a 404 without
Google's error body means a wrong ``api_endpoint``: :class:`IdentityAuthError`), 409 ->
:class:`IdentityConflict`, 429 and 403 ``rateLimitExceeded`` -> :class:`IdentityRateLimited`,
412 "User creation is not complete." and 5xx/network -> retryable :class:`IdentityError`).
Calls are made once (``num_retries=0``): the operators' ``with_retries`` owns the retry policy,
so a 429's ``Retry-After`` is honoured. Passwords never reach a log or an error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

from include.officeflow.identity import (
    DEFAULT_CONN_IDS,
    Account,
    IdentityAuthError,
    IdentityConflict,
    IdentityError,
    IdentityInputError,
    IdentityNotFound,
    IdentityRateLimited,
    Person,
    parse_retry_after,
)

log = logging.getLogger(__name__)

SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.security",  # users.signOut
    "https://www.googleapis.com/auth/admin.directory.group",
    "https://www.googleapis.com/auth/admin.directory.group.member",
)
#: 403 reasons with which the Admin SDK signals quota exhaustion rather than missing rights.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
PAGE_SIZE = 200


class GoogleDirectoryHook(GoogleBaseHook):
    """Identity client for Google Workspace (Admin SDK Directory v1, domain-wide delegation)."""

    hook_name = "OfficeFlow Google Workspace Directory"
    default_conn_name = DEFAULT_CONN_IDS["google"]
    provider = "google"
    #: The discovery API (name, version) :meth:`get_directory` builds; subclasses for other Google APIs
    #: with the same connection (operators/hooks/google_calendar.py) change it.
    api: tuple[str, str] = ("admin", "directory_v1")

    def __init__(self, conn_id: str = DEFAULT_CONN_IDS["google"]) -> None:
        from airflow.exceptions import AirflowNotFoundException

        self.conn_id = conn_id
        try:
            super().__init__(gcp_conn_id=conn_id)
        except AirflowNotFoundException:
            raise IdentityAuthError(f"Airflow connection {conn_id!r} is not defined; create it "
                                    "(google_cloud_platform, service-account key + extra.subject)") from None
        self._service: Any = None

    # --- connection --------------------------------------------------------------------------------
    @property
    def scopes(self) -> list[str]:
        """Directory scopes, unless the connection's ``scope`` extra names its own."""
        configured = self._get_field("scope", None)
        return [s.strip() for s in configured.split(",") if s.strip()] if configured else list(SCOPES)

    @property
    def subject(self) -> str:
        subject = self._get_field("subject", None) or self._get_field("delegate_to", None)
        if not subject:
            raise IdentityAuthError(f"connection {self.conn_id!r} has no extra.subject: set it to a Workspace "
                                    "admin the service account acts as (domain-wide delegation)")
        return str(subject)

    def api_endpoint(self) -> str | None:
        """The API's base URL from ``extra.api_endpoint`` (None: the discovery document's own)."""
        endpoint = self._get_field("api_endpoint", None)
        return str(endpoint) if endpoint else None

    def get_directory(self) -> Any:
        """The :attr:`api` client (``admin``/``directory_v1``), built once from the connection (static discovery)."""
        if self._service is not None:
            return self._service
        from googleapiclient.discovery import build

        try:
            credentials = self.get_credentials()
        except Exception as exc:  # malformed key JSON/PEM, unsupported key type, ...
            raise IdentityAuthError(f"connection {self.conn_id!r}: cannot load the service-account key "
                                    f"({type(exc).__name__}); check keyfile_dict / key_path") from None
        if not hasattr(credentials, "with_subject"):
            raise IdentityAuthError(f"connection {self.conn_id!r} must hold a service-account key "
                                    "(keyfile_dict or key_path): domain-wide delegation needs one")
        credentials = credentials.with_subject(self.subject)
        endpoint = self.api_endpoint()
        self._service = build(*self.api, credentials=credentials,
                              client_options={"api_endpoint": endpoint} if endpoint else None,
                              static_discovery=True, cache_discovery=False)
        return self._service

    # --- calls ---------------------------------------------------------------------------------------
    def _execute(self, describe: str, make_request: Any) -> Any:
        """Build the request with the client and run it once, mapping failures to identity errors."""
        import httplib2
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        try:
            return make_request(self.get_directory()).execute(num_retries=0)
        except HttpError as exc:
            raise self._http_error(describe, exc) from None
        except RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            detail = _refresh_detail(exc)
            if retryable:
                raise IdentityError(f"{describe}: Google's token endpoint failed ({detail}); will retry") from None
            raise IdentityAuthError(f"{describe}: Google refused the service account's token request ({detail}); "
                                    f"check the connection {self.conn_id!r}: key, domain-wide delegation "
                                    "scopes and extra.subject") from None
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise IdentityError(f"{describe}: cannot reach Google ({type(exc).__name__}: {exc})") from None

    def _http_error(self, describe: str, exc: Any) -> IdentityError:
        status = int(exc.resp.status)
        message, reason = _error_detail(exc)
        text = f"{describe}: {message} ({status}{', ' + reason if reason else ''})"
        if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
            return IdentityRateLimited(text, parse_retry_after(exc.resp.get("retry-after")))
        if status in (401, 403):
            return IdentityAuthError(f"{text}; check the connection {self.conn_id!r}: service-account key, "
                                     "domain-wide delegation scopes, that extra.subject is an admin, and that the "
                                     "address's domain belongs to the Workspace account")
        if status in (400, 422):
            return IdentityInputError(text)
        if status == 404 and not reason:
            # Google's own 404s carry a reason; a bare one means the URL is wrong, not the user.
            return IdentityAuthError(f"{text}; no Directory API at that address: check extra.api_endpoint of the "
                                     f"connection {self.conn_id!r}")
        if status == 404:
            return IdentityNotFound(text)
        if status == 409:
            return IdentityConflict(text)
        # 412 "User creation is not complete.": a user created seconds ago; 5xx: Google's trouble.
        return IdentityError(text)

    def _pages(self, describe: str, make_request: Any, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = self._execute(describe, lambda d, t=token: make_request(d, t))
            items += response.get(key, [])
            token = response.get("nextPageToken")
            if not token:
                return items

    # --- IdentityClient --------------------------------------------------------------------------------
    def find_user(self, login: str) -> Account | None:
        login = login.strip().lower()
        try:
            user = self._execute(f"get user {login}", lambda d: d.users().get(userKey=login))
        except IdentityNotFound:
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
        except IdentityNotFound:
            log.info("%s was already deleted", account.login)

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        missing: list[str] = []
        for name in dict.fromkeys(names):
            try:
                group = self._execute(f"get group {name}", lambda d, n=name: d.groups().get(groupKey=n))
            except IdentityNotFound:
                missing.append(name)
                continue
            ids[name] = group["id"]
        if missing:
            raise IdentityNotFound(f"Google groups not found: {', '.join(missing)} (check include/identity/groups.yaml "
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
        except IdentityConflict:
            return False
        return True

    def remove_member(self, account: Account, group_id: str) -> bool:
        try:
            self._execute(f"remove {account.login} from group {group_id}",
                          lambda d: d.members().delete(groupKey=group_id, memberKey=account.id))
        except IdentityNotFound:
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


def _error_detail(exc: Any) -> tuple[str, str]:
    """Google's error message and first reason from an HttpError."""
    message, reason = "", ""
    try:
        data = json.loads(exc.content.decode("utf-8") if isinstance(exc.content, bytes) else exc.content)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            errors = error.get("errors") or []
            if errors and isinstance(errors[0], dict):
                reason = str(errors[0].get("reason") or "")
        elif isinstance(error, str):  # an OAuth-style body
            message = f"{error}: {data.get('error_description', '')}"
    except (ValueError, AttributeError, TypeError):
        pass
    return message or str(getattr(exc, "reason", "") or f"HTTP {exc.resp.status}"), reason


def _refresh_detail(exc: Any) -> str:
    """``error: error_description`` of a token endpoint refusal (never the assertion)."""
    if len(exc.args) > 1 and isinstance(exc.args[1], dict):
        data = exc.args[1]
        return f"{data.get('error', 'error')}: {data.get('error_description', '')}".strip()
    return str(exc.args[0]) if exc.args else type(exc).__name__
