"""Microsoft Graph, the transport of OfficeFlow's Microsoft hooks: :class:`MicrosoftGraphHook`.

The identity hook (operators/hooks/msgraph_identity.py) and the calendar hook
(operators/hooks/msgraph_calendar.py) subclass :class:`MicrosoftGraphHook`, which owns the connection,
the token, requests, paging and error mapping.

**Client.** The microsoft-azure provider's ``KiotaRequestAdapterHook`` (msgraph-core / kiota over
httpx for Graph, azure-identity's ``ClientSecretCredential`` for the client-credentials token, cached
and renewed by azure-identity), as :class:`GraphAdapterHook`: a request adapter of its own, raw
responses (status and ``Retry-After`` kept), no retries inside a request. The provider hook is async
(its ``run`` and ``close`` are coroutines it awaits itself); OfficeFlow's client contracts are sync,
so :class:`MicrosoftGraphHook` drives it on an event loop it owns rather than overriding those
coroutines, and the request adapter (bound to that loop) lives until :meth:`MicrosoftGraphHook.close`.

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

Against production only login, password and tenant_id are set. The sandbox connection points
authority and base_url at the sandbox's TLS listener, with ``verify`` = the sandbox CA and instance
discovery off. The app registration needs the application permissions each subclass names
(:attr:`MicrosoftGraphHook.permissions`), admin-consented.

**Behaviour.** Collections follow ``@odata.nextLink``, only to hosts the provider allows
(``assert_allowed_host``). Retries are left to the caller (``with_retries`` honours ``Retry-After``):
kiota's retry handler is switched off per request and token requests are not retried by azure-core.
A Graph 401 on a cached token gets one new token and one more try. Errors map to
:mod:`include.officeflow.errors`: 401/403 and token endpoint refusals -> :class:`AuthError`, 400 ->
:class:`InvalidInput` (an existing userPrincipalName -> :class:`Conflict`), 404 -> :class:`NotFound`,
409 -> :class:`Conflict`, 429 -> :class:`RateLimited` with ``Retry-After``, 5xx and network failures ->
:class:`Unavailable`. Secrets are never logged or put in messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
from airflow.providers.microsoft.azure.hooks.msgraph import CachedAsyncTokenCredential, KiotaRequestAdapterHook
from airflow.sdk import BaseHook
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.identity import AzureAuthorityHosts
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.response_handler import ResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

from include.officeflow import errors
from include.officeflow.identity import DEFAULT_CONN_IDS
from include.officeflow.integration_metrics import external_call
from operators.hooks.closing import ClosingHook

DEFAULT_TIMEOUT = 30.0
#: 400s with which Graph says the object already exists.
CONFLICT_MARKERS = ("same value for property userPrincipalName", "same value for property proxyAddresses")
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


class MicrosoftGraphHook(ClosingHook, BaseHook):
    """Microsoft Graph requests on an ``msgraph`` connection (see the module docstring).

    :param conn_id: the Airflow connection (default ``officeflow_microsoft``).
    :param timeout: seconds per request (default: ``extra.timeout``, else 30).
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_IDS["microsoft"]
    conn_type = "msgraph"
    hook_name = "OfficeFlow Microsoft Graph"
    provider = "microsoft"
    #: The application permissions the app registration needs (named when Graph answers 403).
    permissions: ClassVar[str] = "application permissions"

    def __init__(self, conn_id: str = DEFAULT_CONN_IDS["microsoft"], timeout: float | None = None) -> None:
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
            raise errors.AuthError(f"Airflow connection {self.conn_id!r} is not available: {exc}") from exc
        extra = conn.extra_dejson
        tenant = str(extra.get("tenant_id") or extra.get("tenantId") or "").strip()
        missing = [name for name, value in (("login (client id)", conn.login), ("password (client secret)",
                                            conn.password), ("extra.tenant_id", tenant)) if not value]
        if missing:
            raise errors.AuthError(f"Airflow connection {self.conn_id!r} lacks {', '.join(missing)}; "
                                   "check the connection")
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
                    raise errors.InvalidInput(f"refusing to follow a Graph link to another host: {exc}") from None
                raise errors.ServiceError(f"Microsoft Graph {method} {path}: {exc}") from None
            except HttpResponseError as exc:  # the token request
                raise self._token_error(exc) from None
            except AzureError as exc:  # the token request did not get an answer
                raise self._network_error("Microsoft identity platform token request", exc) from None
            except httpx.HTTPError as exc:
                raise self._network_error(f"Microsoft Graph {method} {path}", exc) from None
            if not isinstance(response, httpx.Response):  # pragma: no cover - the raw handler always answers one
                raise errors.ServiceError(f"Microsoft Graph {method} {path}: unexpected answer "
                                          f"{type(response).__name__}")
            if response.status_code == 401 and not fresh and attempt == 1:
                self._run(graph.close())  # revoked or expired early: the next call builds a new credential
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _token_error(self, exc: HttpResponseError) -> errors.ServiceError:
        response = exc.response
        status = response.status_code if response is not None else None
        if status == 429:
            headers = getattr(response, "headers", None) or {}
            return errors.RateLimited("Microsoft identity platform throttled the token request (429)",
                               errors.parse_retry_after(headers.get("Retry-After")))
        if status is not None and status >= 500:
            return errors.Unavailable(f"Microsoft identity platform token endpoint answered {status}")
        detail = str(exc.message or exc).split(" Trace ID:", 1)[0].strip()
        if isinstance(exc, ClientAuthenticationError) and "AADSTS" in detail:
            return errors.AuthError(
                f"Microsoft identity platform refused the client credentials of connection {self.conn_id!r} "
                f"({detail}); check the connection's login (client id), password (client secret) and "
                "extra.tenant_id")
        return errors.AuthError(
            f"{self.settings().token_endpoint} answered {status} without an OAuth token response ({detail[:200]}); "
            f"check the connection {self.conn_id!r} (extra.authority, extra.tenant_id)")

    def _network_error(self, what: str, exc: Exception) -> errors.ServiceError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return errors.AuthError(f"{what}: the server's TLS certificate is not trusted ({exc}); check the "
                             f"connection {self.conn_id!r} (extra.verify: a CA bundle path)")
        return errors.Unavailable(f"{what}: {type(exc).__name__}: {exc}")

    def _error(self, response: httpx.Response, what: str) -> errors.ServiceError:
        status = response.status_code
        code, message = self._graph_error(response)
        detail = f"{code}: {message}" if code else message
        if status == 429:
            return errors.RateLimited(f"Microsoft Graph throttled {what} ({detail})",
                               errors.parse_retry_after(response.headers.get("Retry-After")))
        if status == 401:
            return errors.AuthError(f"Microsoft Graph rejected the token for {what} ({detail}); check the "
                             f"connection {self.conn_id!r} (client id, secret, tenant_id)")
        if status == 403:
            return errors.AuthError(f"Microsoft Graph denied {what} ({detail}); check that the app registration of "
                             f"connection {self.conn_id!r} has the {self.permissions} with admin consent")
        if status == 404:
            return errors.NotFound(f"Microsoft Graph: {what}: {detail}")
        if status == 409 or (status == 400 and any(m in message for m in CONFLICT_MARKERS)):
            return errors.Conflict(f"Microsoft Graph: {what}: {message}")
        if 400 <= status < 500:
            return errors.InvalidInput(f"Microsoft Graph refused {what}: {detail}")
        request_id = response.headers.get("request-id")
        suffix = f" (request-id {request_id})" if request_id else ""
        text = f"Microsoft Graph answered {status} to {what}: {detail}{suffix}"
        return errors.Unavailable(text) if status >= 500 else errors.ServiceError(text)

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
        with external_call("microsoft_graph"):
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
