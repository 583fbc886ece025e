"""Google Workspace APIs (Admin SDK Directory, Calendar) through google-api-python-client.

:class:`GoogleWorkspaceHook` is the Google provider's ``GoogleBaseHook`` with what every Workspace API
needs: a service-account key acting as a Workspace user (domain-wide delegation), the discovery client
of one API, requests made once and their failures mapped to :mod:`include.officeflow.errors`. The
API-specific hooks subclass it: ``GoogleDirectoryHook`` (operators/hooks/google_directory.py) and
``GoogleCalendarHook`` (operators/hooks/google_calendar.py).

The Airflow connection (``officeflow_google`` by default, type ``google_cloud_platform``, read by
``GoogleBaseHook``):

- ``extra.keyfile_dict`` (or ``key_path``): the service-account key. Its ``token_uri`` is where
  access tokens come from (Google's by default; the sandbox's in dev mode and tests);
- ``extra.subject``: the Workspace user the service account acts as (domain-wide delegation); the
  Directory API answers only to an admin. The Calendar hook acts as the meeting's organizer instead;
- ``extra.api_endpoint`` (optional): the root URL of Google's APIs, Google's own by default; dev mode
  and tests point it at the sandbox (``<sandbox>/google/``);
- scopes: each API's own, overridable by an extra the subclass names (``scope``, ``calendar_scope``;
  comma-separated); the admin console's domain-wide delegation entry must grant them.

Failures: 401/403 -> :class:`AuthError` (naming what to check), 400/422 -> :class:`InvalidInput`,
404/410 -> :class:`NotFound` (a 404 without Google's error body means a wrong ``api_endpoint``:
:class:`AuthError`), 409 -> :class:`Conflict`, 429 and 403 ``rateLimitExceeded`` & co ->
:class:`RateLimited` with ``Retry-After``, 5xx and network failures -> :class:`Unavailable`, anything
else (412 "User creation is not complete." right after a create) -> a retryable :class:`ServiceError`.
Requests are made once (``num_retries=0``): the operators' ``with_retries`` owns the retry policy, so a
429's ``Retry-After`` is honoured. Passwords never reach a log or an error message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

from include.officeflow import errors
from include.officeflow.identity import DEFAULT_CONN_IDS
from include.officeflow.integration_metrics import external_call
from operators.hooks.closing import ClosingHook

#: 403 reasons with which Google signals quota exhaustion rather than missing rights.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"})

#: Builds one request from the API's discovery client (``lambda d: d.users().get(userKey=…)``).
MakeRequest = Callable[..., Any]


class GoogleWorkspaceHook(ClosingHook, GoogleBaseHook):
    """One Google Workspace API as a Workspace user, on a ``google_cloud_platform`` connection.

    :param conn_id: the Airflow connection (default ``officeflow_google``).
    :param subject: the user to act as; None: the connection's ``extra.subject``.
    """

    hook_name = "OfficeFlow Google Workspace"
    default_conn_name = DEFAULT_CONN_IDS["google"]
    #: The discovery API (name, version) of :meth:`get_service`; each subclass names its own.
    api: ClassVar[tuple[str, str]]
    #: The API's name in messages.
    api_title: ClassVar[str] = "Google API"
    #: The scopes requested unless the connection's :attr:`scope_field` extra names others.
    default_scopes: ClassVar[tuple[str, ...]] = ()
    scope_field: ClassVar[str] = "scope"

    def __init__(self, conn_id: str = DEFAULT_CONN_IDS["google"], *, subject: str | None = None) -> None:
        from airflow.exceptions import AirflowNotFoundException

        self.conn_id = conn_id
        self._subject = subject
        try:
            super().__init__(gcp_conn_id=conn_id)
        except AirflowNotFoundException:
            raise errors.AuthError(f"Airflow connection {conn_id!r} is not defined; create it "
                            "(google_cloud_platform, service-account key + extra.subject)") from None
        self._service: Any = None

    # --- connection ----------------------------------------------------------------------------------
    @property
    def scopes(self) -> list[str]:
        """The API's scopes, unless the connection's :attr:`scope_field` extra names its own."""
        configured = self._get_field(self.scope_field, None)
        return [s.strip() for s in configured.split(",") if s.strip()] if configured else list(self.default_scopes)

    @property
    def subject(self) -> str:
        """The Workspace user the service account acts as."""
        subject = self._subject or self._get_field("subject", None) or self._get_field("delegate_to", None)
        if not subject:
            raise errors.AuthError(f"connection {self.conn_id!r} has no extra.subject: set it to a Workspace "
                            "admin the service account acts as (domain-wide delegation)")
        return str(subject)

    def api_endpoint(self) -> str | None:
        """The API's base URL from ``extra.api_endpoint`` (None: the discovery document's own)."""
        endpoint = self._get_field("api_endpoint", None)
        return str(endpoint) if endpoint else None

    def auth_hint(self) -> str:
        """What to check when Google refuses the credentials (401/403)."""
        return "service-account key, domain-wide delegation scopes and extra.subject"

    def get_service(self) -> Any:
        """The :attr:`api` client, built once from the connection (static discovery, delegated credentials)."""
        if self._service is not None:
            return self._service
        from googleapiclient.discovery import build

        try:
            credentials = self.get_credentials()
        except Exception as exc:  # malformed key JSON/PEM, unsupported key type, ...
            raise errors.AuthError(f"connection {self.conn_id!r}: cannot load the service-account key "
                            f"({type(exc).__name__}); check keyfile_dict / key_path") from None
        if not hasattr(credentials, "with_subject"):
            raise errors.AuthError(f"connection {self.conn_id!r} must hold a service-account key "
                            "(keyfile_dict or key_path): domain-wide delegation needs one")
        credentials = credentials.with_subject(self.subject)
        endpoint = self.api_endpoint()
        self._service = build(*self.api, credentials=credentials,
                              client_options={"api_endpoint": endpoint} if endpoint else None,
                              static_discovery=True, cache_discovery=False)
        return self._service

    def close(self) -> None:
        """Close the client's HTTP connections; the next call builds a new client."""
        if self._service is not None:
            self._service.close()
            self._service = None


    # --- requests ------------------------------------------------------------------------------------
    def _execute(self, describe: str, make_request: MakeRequest) -> Any:
        """Build the request with the client and run it once, mapping failures to the service errors."""
        with external_call("google_workspace"):
            return self._execute_once(describe, make_request)

    def _execute_once(self, describe: str, make_request: MakeRequest) -> Any:
        import httplib2
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        try:
            return make_request(self.get_service()).execute(num_retries=0)
        except HttpError as exc:
            raise self._http_error(describe, exc) from None
        except RefreshError as exc:
            detail = _refresh_detail(exc)
            if getattr(exc, "retryable", False):
                raise errors.Unavailable(f"{describe}: Google's token endpoint failed ({detail}); will retry") from None
            raise errors.AuthError(f"{describe}: Google refused the service account's token request ({detail}); "
                            f"check the connection {self.conn_id!r}: key, domain-wide delegation "
                            "scopes and extra.subject") from None
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise errors.Unavailable(f"{describe}: cannot reach Google ({type(exc).__name__}: {exc})") from None

    def _http_error(self, describe: str, exc: Any) -> errors.ServiceError:
        status = int(exc.resp.status)
        message, reason = _error_detail(exc)
        text = f"{describe}: {message} ({status}{', ' + reason if reason else ''})"
        if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
            return errors.RateLimited(text, errors.parse_retry_after(exc.resp.get("retry-after")))
        if status in (401, 403):
            return errors.AuthError(f"{text}; check the connection {self.conn_id!r}: {self.auth_hint()}")
        if status in (400, 422):
            return errors.InvalidInput(text)
        if status == 404 and not reason:
            # Google's own 404s carry a reason; a bare one means the URL is wrong, not the object.
            return errors.AuthError(f"{text}; no {self.api_title} at that address: check extra.api_endpoint of the "
                             f"connection {self.conn_id!r}")
        if status in (404, 410):  # 410: "Resource has been deleted"
            return errors.NotFound(text)
        if status == 409:
            return errors.Conflict(text)
        if status >= 500:
            return errors.Unavailable(text)
        # 412 "User creation is not complete.": a user created seconds ago; worth another try.
        return errors.ServiceError(text)

    def _pages(self, describe: str, make_request: MakeRequest, key: str) -> list[dict[str, Any]]:
        """Every item under ``key`` of a listing, following ``nextPageToken`` (``make_request(client, token)``)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = self._execute(describe, lambda d, t=token: make_request(d, t))
            items += response.get(key, [])
            token = response.get("nextPageToken")
            if not token:
                return items


def _error_detail(exc: Any) -> tuple[str, str]:
    """Google's error message and first reason from an ``HttpError``."""
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
