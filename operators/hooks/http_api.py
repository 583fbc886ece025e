"""An HR system's read API over the HTTP provider's :class:`~airflow.providers.http.hooks.http.HttpHook`: the
connection check, the error mapping and a bounded retry that BambooHR's employee API and Workday's worker report
share (operators/hooks/bamboohr.py, operators/hooks/workday.py).

Failures become :mod:`include.officeflow.errors`: 401/403 -> ``AuthError`` naming the connection and how to fix
it, 404 -> ``NotFound``, 429 (and 503 with ``Retry-After``) -> ``RateLimited``, other 5xx and network errors ->
``Unavailable``. A call is retried when the error is retryable, at most ``max_attempts`` times and never waiting
longer than ``max_wait`` seconds at once (a longer ``Retry-After`` is raised, for the caller to come back later).
Credentials are never logged or put in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from requests import RequestException, Response

from include.officeflow import errors
from include.officeflow.integration_metrics import external_call


class HrApiHook(HttpHook):
    """GET requests to an HR system, retried and mapped to OfficeFlow's errors.

    Subclasses set Airflow's ``conn_name_attr`` / ``default_conn_name``, ``service`` (its name in messages),
    ``system`` (its name in the integration metrics), ``error_header`` (where the system puts an error's reason, if
    anywhere), ``connection_fix`` (what a working connection holds) and their default timeout and longest wait.

    :param conn_id: the Airflow connection (default: ``default_conn_name``).
    :param timeout: seconds for one request (connect and read).
    :param max_attempts: tries of one call on 429, 503 and other retryable failures.
    :param max_wait: the longest wait between tries; a ``Retry-After`` beyond it is raised at once.
    """

    service = "HR system"
    system = "hr"
    error_header: str | None = None
    connection_fix = "set the connection's host and login"
    credentials_name = "credentials"
    default_timeout = 10.0
    default_max_wait = 30.0

    def __init__(self, conn_id: str | None = None, *, timeout: float | None = None, max_attempts: int = 3,
                 max_wait: float | None = None, sleep: Callable[[float], Any] = time.sleep) -> None:
        conn_id = conn_id or self.default_conn_name
        super().__init__(method="GET", http_conn_id=conn_id)
        setattr(self, self.conn_name_attr, conn_id)  # e.g. ``bamboohr_conn_id``, as Airflow's hooks name it
        self.timeout = self.default_timeout if timeout is None else timeout
        self.max_attempts = max(1, max_attempts)
        self.max_wait = self.default_max_wait if max_wait is None else max_wait
        self._sleep = sleep

    def _call(self, endpoint: str, params: dict[str, str]) -> Response:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._once(endpoint, params)
            except errors.ServiceError as exc:
                wait = getattr(exc, "retry_after", None)
                wait = min(2.0 ** (attempt - 1), self.max_wait) if wait is None else wait
                if not exc.retryable or attempt == self.max_attempts or wait > self.max_wait:
                    raise
                self.log.warning("%s GET %s: %s; retrying in %.1f s (attempt %d/%d)", self.service, endpoint or "/",
                                 exc, wait, attempt, self.max_attempts)
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, endpoint: str, params: dict[str, str]) -> Any:
        """The JSON answer of ``GET endpoint``; ``Unavailable`` when the answer is not JSON."""
        response = self._call(endpoint, params)
        try:
            return response.json()
        except ValueError:
            raise errors.Unavailable(f"{self.service} GET {endpoint or '/'}: the answer is not JSON") from None

    def _once(self, endpoint: str, params: dict[str, str]) -> Response:
        with external_call(self.system):
            self._check_connection()
            try:
                response = self.run(endpoint, data=params, headers={"Accept": "application/json"},
                                    extra_options={"check_response": False, "timeout": self.timeout,
                                                   "allow_redirects": False})
            except RequestException as exc:
                raise errors.Unavailable(f"{self.service} GET {endpoint or '/'} failed: {type(exc).__name__}") \
                    from None
            if response.ok:
                return response
            raise self._error(endpoint, response)

    def _check_connection(self) -> None:
        try:
            conn = self.get_connection(self.http_conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends
            raise errors.AuthError(f"{self.service} connection {self.http_conn_id!r} is not defined "
                                   f"({type(exc).__name__}); {self.connection_fix}") from None
        if not (conn.host or "").strip() or not (conn.login or "").strip():
            raise errors.AuthError(f"{self.service} connection {self.http_conn_id!r} needs a host and a login; "
                                   f"{self.connection_fix}")

    def connection_exists(self) -> bool:
        """Whether the connection is defined (an undefined one: the system is not set up here)."""
        try:
            self.get_connection(self.http_conn_id)
        except Exception:  # AirflowNotFoundException and friends
            return False
        return True

    def _not_found(self, message: str) -> str:
        """A 404's message: what it means for this system."""
        return message

    def _error(self, endpoint: str, response: Response) -> errors.ServiceError:
        status = response.status_code
        reason = (response.headers.get(self.error_header) if self.error_header else None) or response.reason or "error"
        message = f"{self.service} {status} on GET {endpoint or '/'}: {reason}"
        retry_after = errors.parse_retry_after(response.headers.get("Retry-After"))
        if status == 404:
            return errors.NotFound(self._not_found(message))
        if status == 503:
            return errors.RateLimited(message, retry_after) if retry_after is not None else errors.Unavailable(message)
        return errors.for_status(status, message, retry_after=retry_after, auth_hint=(
            f"; check the {self.credentials_name} of connection {self.http_conn_id!r} ({self.connection_fix})"))
