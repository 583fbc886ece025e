"""BambooHR hook: read an employee's record through BambooHR's REST API.

BambooHR's webhooks often carry ids without values (a ``Deleted`` entry, every event-based
``employee.*`` payload); the record they name is read here. This is the HTTP provider's
:class:`~airflow.providers.http.hooks.http.HttpHook` (connection, base URL, Basic auth, session
options from the connection's extra) with BambooHR's URLs, error mapping and a bounded retry.

Connection (``officeflow_bamboohr`` by default, ``OFFICEFLOW_BAMBOOHR_CONN_ID``; conn_type ``http``):

- ``host``: the company's API base URL, ``https://api.bamboohr.com/api/gateway.php/<companyDomain>/v1``
  (the company domain is the ``acme`` of ``acme.bamboohr.com``);
- ``login``: an API key (BambooHR: your name > API Keys; the key has its user's access level);
- ``password``: ``x`` (BambooHR's Basic auth takes the key as the user name and ignores the password).

Failures become :mod:`include.officeflow.errors`: 401/403 -> ``AuthError`` naming the connection,
404 -> ``NotFound`` (no such employee), 429/503 -> ``RateLimited`` / ``Unavailable`` with ``Retry-After``,
other 5xx and network errors -> ``Unavailable``. :meth:`BambooHRHook.get_employee` retries the retryable
ones itself, at most ``max_attempts`` times and never waiting longer than ``max_wait`` seconds at once
(a longer ``Retry-After`` is raised, for the caller to come back later). BambooHR reports an error's
reason in the ``X-BambooHR-Error-Message`` header; the API key is never logged or put in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from airflow.providers.http.hooks.http import HttpHook
from requests import RequestException, Response

from include.officeflow import errors
from include.officeflow.integration_metrics import external_call

DEFAULT_CONN_ID = "officeflow_bamboohr"
#: What OfficeFlow's HR workflows need of a person (BambooHR's API field names).
EMPLOYEE_FIELDS = ("firstName", "lastName", "workEmail", "homeEmail", "department", "division", "jobTitle",
                   "location", "hireDate", "terminationDate", "supervisor", "supervisorEmail", "status",
                   "employmentHistoryStatus")
ERROR_HEADER = "X-BambooHR-Error-Message"


class BambooHRHook(HttpHook):
    """BambooHR's employee API over an HTTP connection holding an API key.

    :param bamboohr_conn_id: the Airflow connection (host = API base URL with the company domain,
        login = API key, password = ``x``).
    :param timeout: seconds for one request (connect and read).
    :param max_attempts: tries of one call on 429, 503 and other retryable failures.
    :param max_wait: the longest wait between tries; a ``Retry-After`` beyond it is raised at once.

    Usage::

        record = BambooHRHook().get_employee("123")  # {"id": "123", "firstName": ..., "workEmail": ...}
    """

    conn_name_attr = "bamboohr_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "OfficeFlow BambooHR"

    def __init__(self, bamboohr_conn_id: str = DEFAULT_CONN_ID, *, timeout: float = 10.0, max_attempts: int = 3,
                 max_wait: float = 30.0, sleep: Callable[[float], Any] = time.sleep) -> None:
        super().__init__(method="GET", http_conn_id=bamboohr_conn_id)
        self.bamboohr_conn_id = bamboohr_conn_id
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max_wait
        self._sleep = sleep

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "port", "extra"],
                "relabeling": {"host": "API base URL", "login": "API key", "password": "Password (x)"},
                "placeholders": {"host": "https://api.bamboohr.com/api/gateway.php/acme/v1", "password": "x"}}

    def get_employee(self, employee_id: str, fields: Iterable[str] = EMPLOYEE_FIELDS) -> dict[str, Any]:
        """The employee's record, ``{"id", <field>: value, ...}`` (values as BambooHR gives them: an empty date
        is ``"0000-00-00"``, an unset field ``null``). Raises ``NotFound`` for an unknown id."""
        endpoint = f"employees/{quote(str(employee_id), safe='')}/"
        response = self._call(endpoint, {"fields": ",".join(fields), "onlyCurrent": "false"})
        try:
            record = response.json()
        except ValueError:
            raise errors.Unavailable(f"BambooHR GET {endpoint}: the answer is not JSON") from None
        if not isinstance(record, dict):
            raise errors.Unavailable(f"BambooHR GET {endpoint}: the answer is not an employee object")
        return record

    # --- HTTP ------------------------------------------------------------------------------------

    def _call(self, endpoint: str, params: dict[str, str]) -> Response:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._once(endpoint, params)
            except errors.ServiceError as exc:
                wait = getattr(exc, "retry_after", None)
                wait = min(2.0 ** (attempt - 1), self.max_wait) if wait is None else wait
                if not exc.retryable or attempt == self.max_attempts or wait > self.max_wait:
                    raise
                self.log.warning("BambooHR GET %s: %s; retrying in %.1f s (attempt %d/%d)", endpoint, exc, wait,
                                 attempt, self.max_attempts)
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, endpoint: str, params: dict[str, str]) -> Response:
        with external_call("bamboohr"):
            self._check_connection()
            try:
                response = self.run(endpoint, data=params, headers={"Accept": "application/json"},
                                    extra_options={"check_response": False, "timeout": self.timeout,
                                                   "allow_redirects": False})
            except RequestException as exc:
                raise errors.Unavailable(f"BambooHR GET {endpoint} failed: {type(exc).__name__}") from None
            if response.ok:
                return response
            raise self._error(endpoint, response)

    def _check_connection(self) -> None:
        try:
            conn = self.get_connection(self.bamboohr_conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends
            raise errors.AuthError(f"BambooHR connection {self.bamboohr_conn_id!r} is not defined "
                                   f"({type(exc).__name__}); {self._fix}") from None
        if not (conn.host or "").strip() or not (conn.login or "").strip():
            raise errors.AuthError(f"BambooHR connection {self.bamboohr_conn_id!r} needs a host and a login; "
                                   f"{self._fix}")

    @property
    def _fix(self) -> str:
        return ("set host = https://api.bamboohr.com/api/gateway.php/<companyDomain>/v1, login = an API key, "
                "password = x")

    def _error(self, endpoint: str, response: Response) -> errors.ServiceError:
        status = response.status_code
        reason = response.headers.get(ERROR_HEADER) or response.reason or "error"
        message = f"BambooHR {status} on GET {endpoint}: {reason}"
        retry_after = errors.parse_retry_after(response.headers.get("Retry-After"))
        if status == 404:
            return errors.NotFound(f"{message} (no employee with this id, or a wrong company domain in the "
                                   f"connection {self.bamboohr_conn_id!r})")
        if status == 503:
            return errors.RateLimited(message, retry_after) if retry_after is not None else errors.Unavailable(message)
        return errors.for_status(status, message, retry_after=retry_after, auth_hint=(
            f"; check the API key of connection {self.bamboohr_conn_id!r} (login = a valid key whose user may "
            "read employees; " + self._fix + ")"))
