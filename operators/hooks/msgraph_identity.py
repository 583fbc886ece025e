"""Microsoft Entra ID accounts through Microsoft Graph: :class:`MicrosoftGraphIdentityHook`.

Implements :class:`include.officeflow.identity.IdentityClient` for ``provider="microsoft"``.

**Connection** (``officeflow_microsoft``): the microsoft-azure provider's ``msgraph`` connection type
and field names, so the same connection also serves the provider's ``KiotaRequestAdapterHook``:

- ``login``: application (client) id; ``password``: client secret;
- ``extra.tenant_id``: directory (tenant) id or verified domain (required);
- ``extra.authority``: identity platform host, default ``https://login.microsoftonline.com``; the
  token endpoint is ``{authority}/{tenant_id}/oauth2/v2.0/token`` unless ``extra.token_endpoint``
  names it outright;
- Graph base: ``extra.base_url`` (e.g. ``https://graph.microsoft.com/v1.0/``), else ``host`` (with
  ``schema``/``port`` when given) + ``extra.api_version`` (default ``v1.0``), else
  ``https://graph.microsoft.com/v1.0``;
- ``extra.scopes`` (default ``https://graph.microsoft.com/.default``), ``extra.verify`` (TLS
  verification, default true), ``extra.trust_env`` (proxy variables, default true), ``extra.timeout``.

The app registration needs the ``User.ReadWrite.All`` and ``GroupMember.ReadWrite.All`` application
permissions (admin-consented). Against production nothing is set beyond login, password and tenant_id.

**Libraries, and why not the provider hook.** The provider's ``KiotaRequestAdapterHook`` gets its
tokens from azure-identity's ``ClientSecretCredential``, and both azure-identity and msal refuse any
authority that is not ``https://`` ("The value must be a TLS protected (https) URL", msal's
``canonicalize``), so neither can be pointed at a local http sandbox through connection fields, and
a hook that works with one token client in production and another in development would leave the
production path untested. This hook therefore uses authlib's OAuth 2.0 client (``OAuth2Client``, an
httpx client; the client-credentials grant with ``client_secret_post``, the same form fields msal
sends, renewed automatically on expiry) for the token and the Graph calls. It accepts https
authorities and plain http only on loopback addresses, so the same code path runs against
``login.microsoftonline.com``/``graph.microsoft.com`` and against the sandbox (include/sandbox/microsoft.py).

**Behaviour.** ``Account.id`` is the object id, ``login`` the userPrincipalName, ``enabled``
``accountEnabled`` (status ``ENABLED``/``DISABLED``). Lookups ``$select`` the properties they need
(Graph's default user representation has neither accountEnabled nor department). Errors map to the
identity errors: 401/403 and token endpoint refusals -> :class:`IdentityAuthError`, 400 ->
:class:`IdentityInputError` (an existing userPrincipalName -> :class:`IdentityConflict`), 404 ->
:class:`IdentityNotFound` (None / False where the contract says so), 429 ->
:class:`IdentityRateLimited` with ``Retry-After``, 5xx and network failures -> retryable
:class:`IdentityError`. Passwords and secrets are never logged or put in messages.
Not covered: the manager reference (``/users/{id}/manager/$ref``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from airflow.sdk import BaseHook
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from include.officeflow.identity import (
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

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_HOST = "https://graph.microsoft.com"
DEFAULT_API_VERSION = "v1.0"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
USER_SELECT = ("id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,department,jobTitle,"
               "employeeId,officeLocation")
GROUP_FILTER_CHUNK = 15  # Graph allows at most 15 values in a $filter 'in' list
CONFLICT_MARKERS = ("same value for property userPrincipalName", "same value for property proxyAddresses")
MEMBER_EXISTS_MARKER = "added object references already exist"
_NICKNAME_DROP = re.compile(r"[^A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]")


@dataclass(frozen=True)
class GraphSettings:
    """What the hook reads from the Airflow connection."""

    client_id: str
    client_secret: str
    tenant_id: str
    token_endpoint: str
    graph_base: str
    scope: str
    verify: bool
    trust_env: bool
    timeout: float


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"https://{url}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mail_nickname(person: Person) -> str:
    """The mail alias Graph requires on create: the login's local part without the characters it refuses."""
    nickname = _NICKNAME_DROP.sub("", person.local_part).strip(".")[:64]
    return nickname or f"user{person.employee_id or secrets.token_hex(4)}"


class MicrosoftGraphIdentityHook(BaseHook):
    """Entra ID users and group memberships through Microsoft Graph (see the module docstring)."""

    conn_name_attr = "conn_id"
    default_conn_name = "officeflow_microsoft"
    conn_type = "msgraph"
    hook_name = "OfficeFlow Microsoft Graph identity"
    provider = "microsoft"

    def __init__(self, conn_id: str = default_conn_name, timeout: float | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self._timeout = timeout
        self._settings: GraphSettings | None = None
        self._client: OAuth2Client | None = None

    # --- connection and session ---------------------------------------------------------------------

    def settings(self) -> GraphSettings:
        if self._settings is None:
            self._settings = self._read_settings()
        return self._settings

    def _read_settings(self) -> GraphSettings:
        try:
            conn = self.get_connection(self.conn_id)
        except Exception as exc:  # AirflowNotFoundException and secrets-backend failures alike
            raise IdentityAuthError(f"Airflow connection {self.conn_id!r} is not available: {exc}") from exc
        extra = conn.extra_dejson
        tenant = str(extra.get("tenant_id") or extra.get("tenantId") or "").strip()
        missing = [name for name, value in (("login (client id)", conn.login), ("password (client secret)",
                                            conn.password), ("extra.tenant_id", tenant)) if not value]
        if missing:
            raise IdentityAuthError(f"Airflow connection {self.conn_id!r} lacks {', '.join(missing)}; check the "
                                    "connection")
        authority = _with_scheme(str(extra.get("authority") or DEFAULT_AUTHORITY).strip()).rstrip("/")
        token_endpoint = str(extra.get("token_endpoint") or f"{authority}/{tenant}/oauth2/v2.0/token")
        api_version = str(extra.get("api_version") or DEFAULT_API_VERSION).strip("/")
        if extra.get("base_url"):
            graph_base = _with_scheme(str(extra["base_url"]).strip()).rstrip("/")
        elif conn.host:
            host = conn.host.strip().rstrip("/")
            if "://" not in host:
                if conn.port:
                    head, sep, tail = host.partition("/")
                    host = f"{head}:{conn.port}{sep}{tail}"
                host = f"{conn.schema or 'https'}://{host}"
            graph_base = f"{host}/{api_version}"
        else:
            graph_base = f"{DEFAULT_GRAPH_HOST}/{api_version}"
        scopes = extra.get("scopes") or DEFAULT_SCOPE
        scope = " ".join(scopes) if isinstance(scopes, list) else " ".join(s.strip() for s in str(scopes).split(","))
        timeout = float(self._timeout or extra.get("timeout") or 30)
        return GraphSettings(client_id=str(conn.login), client_secret=str(conn.password), tenant_id=tenant,
                             token_endpoint=token_endpoint, graph_base=graph_base, scope=scope,
                             verify=_flag(extra.get("verify"), True), trust_env=_flag(extra.get("trust_env"), True),
                             timeout=timeout)

    def _session(self) -> OAuth2Client:
        """The OAuth client with a token (fetched on first use, renewed by authlib when it expires)."""
        if self._client is None:
            settings = self.settings()
            client = OAuth2Client(
                client_id=settings.client_id, client_secret=settings.client_secret, scope=settings.scope,
                token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
                token_endpoint=settings.token_endpoint,
                grant_type="client_credentials", timeout=settings.timeout, verify=settings.verify,
                trust_env=settings.trust_env, headers={"Accept": "application/json"},
            )
            client.register_compliance_hook("access_token_response", self._check_token_response)
            self._client = client
        if not self._client.token:
            self._fetch_token()
        return self._client

    def _fetch_token(self) -> None:
        assert self._client is not None
        settings = self.settings()
        try:
            self._client.fetch_token(settings.token_endpoint, grant_type="client_credentials")
        except OAuthError as exc:
            detail = (exc.description or "").split(" Trace ID:", 1)[0].strip()
            raise IdentityAuthError(
                f"Microsoft identity platform refused the client credentials of connection {self.conn_id!r} "
                f"({exc.error}: {detail}); check the connection's login (client id), password (client secret) "
                "and extra.tenant_id") from None
        except httpx2.HTTPError as exc:
            raise IdentityError(f"Microsoft identity platform token request failed: {type(exc).__name__}: "
                                f"{exc}") from None

    def _check_token_response(self, response: httpx2.Response) -> httpx2.Response:
        """Throttling, outages and non-OAuth answers of the token endpoint, before authlib parses it."""
        if response.status_code == 429:
            raise IdentityRateLimited("Microsoft identity platform throttled the token request (429)",
                                      parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise IdentityError(f"Microsoft identity platform token endpoint answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        ok = isinstance(body, dict) and (isinstance(body.get("error"), str) or
                                         (response.is_success and body.get("access_token")))
        if not ok:
            raise IdentityAuthError(
                f"{self.settings().token_endpoint} answered {response.status_code} without an OAuth token "
                f"response; check the connection {self.conn_id!r} (extra.authority, extra.tenant_id)")
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> MicrosoftGraphIdentityHook:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        """Graph URL of ``path``; absolute links (``@odata.nextLink``) only to the Graph host itself, as
        the bearer token goes with them."""
        if path.startswith(("http://", "https://")):
            if _origin(path) != _origin(self.settings().graph_base):
                raise IdentityInputError(f"refusing to follow a Graph link to another host: {urlsplit(path).netloc}")
            return path
        return f"{self.settings().graph_base}/{path.lstrip('/')}"

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None) -> httpx2.Response:
        """One Graph request; a 401 on a cached token gets one new token and one more try."""
        fresh = self._client is None or not self._client.token
        for attempt in (1, 2):
            client = self._session()
            try:
                response = client.request(method, self._url(path), params=params, json=body)
            except OAuthError as exc:  # renewing an expired token failed
                raise IdentityAuthError(f"Microsoft identity platform refused to renew the token of connection "
                                        f"{self.conn_id!r} ({exc.error}); check the connection") from None
            except httpx2.HTTPError as exc:
                raise IdentityError(f"Microsoft Graph {method} {path}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 401 and not fresh and attempt == 1:
                self._fetch_token()  # revoked or expired early: get another one
                fresh = True
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, response: httpx2.Response, what: str) -> IdentityError:
        status = response.status_code
        code, message = self._graph_error(response)
        detail = f"{code}: {message}" if code else message
        if status == 429:
            return IdentityRateLimited(f"Microsoft Graph throttled {what} ({detail})",
                                       parse_retry_after(response.headers.get("Retry-After")))
        if status == 401:
            return IdentityAuthError(f"Microsoft Graph rejected the token for {what} ({detail}); check the "
                                     f"connection {self.conn_id!r} (client id, secret, tenant_id)")
        if status == 403:
            return IdentityAuthError(
                f"Microsoft Graph denied {what} ({detail}); check that the app registration of connection "
                f"{self.conn_id!r} has the User.ReadWrite.All and GroupMember.ReadWrite.All application "
                "permissions with admin consent")
        if status == 404:
            return IdentityNotFound(f"Microsoft Graph: {what}: {detail}")
        if status == 409 or (status == 400 and any(m in message for m in CONFLICT_MARKERS)):
            return IdentityConflict(f"Microsoft Graph: {what}: {message}")
        if 400 <= status < 500:
            return IdentityInputError(f"Microsoft Graph refused {what}: {detail}")
        request_id = response.headers.get("request-id")
        suffix = f" (request-id {request_id})" if request_id else ""
        return IdentityError(f"Microsoft Graph answered {status} to {what}: {detail}{suffix}")

    @staticmethod
    def _graph_error(response: httpx2.Response) -> tuple[str, str]:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            return str(error.get("code") or ""), str(error.get("message") or response.reason_phrase)
        return "", response.text[:300] or response.reason_phrase

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx2.Response:
        response = self._send(method, path, **kwargs)
        if response.is_success:
            return response
        raise self._error(response, what)

    def _pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink``."""
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            page = self._call("GET", url, what, params=query).json()
            yield from page.get("value", [])
            url, query = page.get("@odata.nextLink"), None  # the link carries the query and $skiptoken

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
            raise IdentityNotFound(f"Microsoft Graph: no group named {', '.join(repr(n) for n in missing)}")
        if ambiguous:
            raise IdentityInputError(f"Microsoft Graph: several groups are named "
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
