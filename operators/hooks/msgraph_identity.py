"""Microsoft Entra ID accounts through Microsoft Graph: :class:`MicrosoftGraphIdentityHook`.

Implements :class:`include.officeflow.identity.IdentityClient` for ``provider="microsoft"``.

**Client.** The microsoft-azure provider's ``KiotaRequestAdapterHook`` (msgraph-core / kiota over
httpx for Graph, azure-identity's ``ClientSecretCredential`` for the client-credentials token, cached
and renewed by azure-identity). Everything it needs comes from the connection; this hook adds the
identity semantics on top: error mapping, paging, idempotency. The provider hook is async; this
hook's methods are sync (the ``IdentityClient`` contract), so each one runs on an event loop the hook
owns, and the provider's request adapter (cached per hook instance, bound to that loop) lives until
:meth:`close`.

**Connection** (``officeflow_microsoft``): the provider's ``msgraph`` connection as it documents it:

- ``login``: application (client) id; ``password``: client secret;
- ``extra.tenant_id``: directory (tenant) id or verified domain (required);
- ``extra.authority``: identity platform host, default ``https://login.microsoftonline.com`` (the token
  endpoint is ``{authority}/{tenant_id}/oauth2/v2.0/token``; azure-identity accepts only https);
- Graph base: ``extra.base_url`` (e.g. ``https://graph.microsoft.com/v1.0/``), else ``schema://host`` +
  ``extra.api_version`` (default ``v1.0``), else ``https://graph.microsoft.com/v1.0/``;
- optional: ``extra.scopes`` (default ``https://graph.microsoft.com/.default``), ``extra.verify`` (true,
  false or a CA bundle path, for both the token and the Graph requests), ``extra.disable_instance_discovery``,
  ``extra.allowed_hosts`` (hosts the token may be sent to; needed with a custom ``authority``),
  ``extra.proxies``, ``extra.trust_env``, ``extra.timeout`` (seconds per request, default 30).

Against production only login, password and tenant_id are set. The sandbox connection
(include/sandbox/microsoft.py) points authority and base_url at the sandbox's TLS listener, with
``verify`` = the sandbox CA and instance discovery off. The app registration needs the
``User.ReadWrite.All`` and ``GroupMember.ReadWrite.All`` application permissions (admin-consented).

**Behaviour.** ``Account.id`` is the object id, ``login`` the userPrincipalName, ``enabled``
``accountEnabled`` (status ``ENABLED``/``DISABLED``). Lookups ``$select`` the properties they need
(Graph's default user representation has neither accountEnabled nor department). Collections follow
``@odata.nextLink``, only to hosts the provider allows (``assert_allowed_host``). Retries are left to
the caller (``with_retries`` honours ``Retry-After``): kiota's retry handler is switched off per request
and token requests are not retried by azure-core. A Graph 401 on a cached token gets one new token
and one more try. Errors map to the identity errors: 401/403 and token endpoint refusals ->
:class:`IdentityAuthError`, 400 -> :class:`IdentityInputError` (an existing userPrincipalName ->
:class:`IdentityConflict`), 404 -> :class:`IdentityNotFound` (None / False where the contract says
so), 409 -> :class:`IdentityConflict`, 429 -> :class:`IdentityRateLimited` with ``Retry-After``, 5xx and
network failures -> retryable :class:`IdentityError`. Passwords and secrets are never logged or put in
messages. Not covered: the manager reference (``/users/{id}/manager/$ref``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from airflow.providers.microsoft.azure.hooks.msgraph import CachedAsyncTokenCredential, KiotaRequestAdapterHook
from airflow.sdk import BaseHook
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.identity import AzureAuthorityHosts
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.response_handler import ResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

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

DEFAULT_TIMEOUT = 30.0
USER_SELECT = ("id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,department,jobTitle,"
               "employeeId,officeLocation")
GROUP_FILTER_CHUNK = 15  # Graph allows at most 15 values in a $filter 'in' list
CONFLICT_MARKERS = ("same value for property userPrincipalName", "same value for property proxyAddresses")
MEMBER_EXISTS_MARKER = "added object references already exist"
_NICKNAME_DROP = re.compile(r"[^A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]")
T = TypeVar("T")


@dataclass(frozen=True)
class GraphSettings:
    """What the connection resolves to (for messages and checks; the provider hook builds the clients)."""

    client_id: str
    tenant_id: str
    authority: str
    token_endpoint: str
    graph_base: str
    timeout: float


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mail_nickname(person: Person) -> str:
    """The mail alias Graph requires on create: the login's local part without the characters it refuses."""
    nickname = _NICKNAME_DROP.sub("", person.local_part).strip(".")[:64]
    return nickname or f"user{person.employee_id or secrets.token_hex(4)}"


# --- the provider hook, as this hook uses it -----------------------------------------------------------

class _RawResponse(ResponseHandler):  # type: ignore[misc]
    """Hands the httpx response back as it is (status, headers, body): the provider's default handler
    turns errors into exceptions that keep neither the status code nor ``Retry-After``."""

    async def handle_response_async(self, response: Any, error_map: Any) -> Any:
        return response


class _TokenRequestNotRetried(CachedAsyncTokenCredential):  # type: ignore[misc]
    """The provider's credential wrapper; token requests go out once (no azure-core retry policy
    sleeping inside the call) and with the hook's timeout."""

    def __init__(self, credential: Any, timeout: float) -> None:
        super().__init__(credential)
        self._timeout = timeout

    async def get_token(self, *args: Any, **kwargs: Any) -> AccessToken:
        return await self._credential.get_token(*args, retry_total=0, connection_timeout=self._timeout,
                                                read_timeout=self._timeout, **kwargs)


class GraphAdapterHook(KiotaRequestAdapterHook):  # type: ignore[misc]
    """``KiotaRequestAdapterHook`` with a request adapter of its own (not shared through the class-wide
    cache: the adapter is bound to the event loop it was built on), raw responses and kiota's retry
    handler switched off."""

    def __init__(self, conn_id: str, timeout: float) -> None:
        super().__init__(conn_id=conn_id, timeout=timeout)
        self.cached_request_adapters = {}  # instance-level, shadows the class-wide cache

    def get_credentials(self, *args: Any, **kwargs: Any) -> Any:
        credential = super().get_credentials(*args, **kwargs)
        assert isinstance(credential, CachedAsyncTokenCredential)
        return _TokenRequestNotRetried(credential._credential, float(self.timeout or DEFAULT_TIMEOUT))

    def request_information(self, *args: Any, **kwargs: Any) -> RequestInformation:
        info = super().request_information(*args, **kwargs)
        info.request_options[ResponseHandlerOption.get_key()] = ResponseHandlerOption(response_handler=_RawResponse())
        info.request_options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=0, should_retry=False)
        return info

    @property
    def has_adapter(self) -> bool:
        return self.conn_id in self.cached_request_adapters


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
        self._graph: GraphAdapterHook | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- connection, provider hook, event loop -----------------------------------------------------------

    def settings(self) -> GraphSettings:
        if self._settings is None:
            self._settings = self._read_settings()
        return self._settings

    def _read_settings(self) -> GraphSettings:
        """Checks the connection before the provider hook uses it, so a gap is a clear error."""
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
        timeout = float(self._timeout or extra.get("timeout") or DEFAULT_TIMEOUT)
        graph = GraphAdapterHook(self.conn_id, timeout)  # its own rules for host, api_version and base_url
        base = graph.get_base_url(graph.get_host(conn), graph.get_api_version(extra), extra).rstrip("/")
        authority = str(extra.get("authority") or f"https://{AzureAuthorityHosts.AZURE_PUBLIC_CLOUD}").rstrip("/")
        return GraphSettings(client_id=str(conn.login), tenant_id=tenant, authority=authority,
                             token_endpoint=f"{authority}/{tenant}/oauth2/v2.0/token", graph_base=base,
                             timeout=timeout)

    def _provider_hook(self) -> GraphAdapterHook:
        if self._graph is None:
            self._graph = GraphAdapterHook(self.conn_id, self.settings().timeout)
        return self._graph

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Close the provider's request adapter and credential, then the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            try:
                if self._graph is not None:
                    self._loop.run_until_complete(self._graph.close())
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()
        self._loop = None
        self._graph = None

    def __enter__(self) -> MicrosoftGraphIdentityHook:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """One Graph request (``path`` relative to the Graph base, or a link the provider allows); a 401
        on a cached token gets one new token (a new adapter and credential) and one more try."""
        self.settings()
        graph = self._provider_hook()
        for attempt in (1, 2):
            fresh = not graph.has_adapter  # the adapter, and with it the credential, is built by this call
            try:
                if path.startswith(("http://", "https://")):
                    self._run(graph.assert_allowed_host(path))
                response = self._run(graph.run(url=path, method=method, query_parameters=params, data=body,
                                                   headers=headers))
            except ValueError as exc:
                if "pagination link" in str(exc):
                    raise IdentityInputError(f"refusing to follow a Graph link to another host: {exc}") from None
                raise IdentityError(f"Microsoft Graph {method} {path}: {exc}") from None
            except HttpResponseError as exc:  # the token request
                raise self._token_error(exc) from None
            except AzureError as exc:  # the token request did not get an answer
                raise self._network_error("Microsoft identity platform token request", exc) from None
            except httpx.HTTPError as exc:
                raise self._network_error(f"Microsoft Graph {method} {path}", exc) from None
            if not isinstance(response, httpx.Response):  # pragma: no cover - the raw handler always answers one
                raise IdentityError(f"Microsoft Graph {method} {path}: unexpected answer {type(response).__name__}")
            if response.status_code == 401 and not fresh and attempt == 1:
                self._run(graph.close())  # revoked or expired early: the next call builds a new credential
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _token_error(self, exc: HttpResponseError) -> IdentityError:
        response = exc.response
        status = response.status_code if response is not None else None
        if status == 429:
            headers = getattr(response, "headers", None) or {}
            return IdentityRateLimited("Microsoft identity platform throttled the token request (429)",
                                       parse_retry_after(headers.get("Retry-After")))
        if status is not None and status >= 500:
            return IdentityError(f"Microsoft identity platform token endpoint answered {status}")
        detail = str(exc.message or exc).split(" Trace ID:", 1)[0].strip()
        if isinstance(exc, ClientAuthenticationError) and "AADSTS" in detail:
            return IdentityAuthError(
                f"Microsoft identity platform refused the client credentials of connection {self.conn_id!r} "
                f"({detail}); check the connection's login (client id), password (client secret) and "
                "extra.tenant_id")
        return IdentityAuthError(
            f"{self.settings().token_endpoint} answered {status} without an OAuth token response ({detail[:200]}); "
            f"check the connection {self.conn_id!r} (extra.authority, extra.tenant_id)")

    def _network_error(self, what: str, exc: Exception) -> IdentityError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return IdentityAuthError(f"{what}: the server's TLS certificate is not trusted ({exc}); check the "
                                     f"connection {self.conn_id!r} (extra.verify: a CA bundle path)")
        return IdentityError(f"{what}: {type(exc).__name__}: {exc}")

    def _error(self, response: httpx.Response, what: str) -> IdentityError:
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
    def _graph_error(response: httpx.Response) -> tuple[str, str]:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            return str(error.get("code") or ""), str(error.get("message") or response.reason_phrase)
        return "", response.text[:300] or response.reason_phrase

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
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
