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
ones itself (operators/hooks/http_api.py), at most ``max_attempts`` times and never waiting longer than
``max_wait`` seconds at once. BambooHR reports an error's reason in the ``X-BambooHR-Error-Message`` header; the API
key is never logged or put in a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from include.officeflow import errors
from operators.hooks.http_api import HrApiHook

DEFAULT_CONN_ID = "officeflow_bamboohr"
#: What OfficeFlow's HR workflows need of a person (BambooHR's API field names).
EMPLOYEE_FIELDS = ("firstName", "lastName", "workEmail", "homeEmail", "department", "division", "jobTitle",
                   "location", "hireDate", "terminationDate", "supervisor", "supervisorEmail", "status",
                   "employmentHistoryStatus")
ERROR_HEADER = "X-BambooHR-Error-Message"


class BambooHRHook(HrApiHook):
    """BambooHR's employee API over an HTTP connection holding an API key (host = API base URL with the company
    domain, login = API key, password = ``x``); timeouts and retries as :class:`HrApiHook`'s (10 s, 30 s).

    Usage::

        record = BambooHRHook().get_employee("123")  # {"id": "123", "firstName": ..., "workEmail": ...}
    """

    conn_name_attr = "bamboohr_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "OfficeFlow BambooHR"
    service = "BambooHR"
    system = "bamboohr"
    error_header = ERROR_HEADER
    credentials_name = "API key"
    connection_fix = ("set host = https://api.bamboohr.com/api/gateway.php/<companyDomain>/v1, login = an API key, "
                      "password = x")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "port", "extra"],
                "relabeling": {"host": "API base URL", "login": "API key", "password": "Password (x)"},
                "placeholders": {"host": "https://api.bamboohr.com/api/gateway.php/acme/v1", "password": "x"}}

    def get_employee(self, employee_id: str, fields: Iterable[str] = EMPLOYEE_FIELDS) -> dict[str, Any]:
        """The employee's record, ``{"id", <field>: value, ...}`` (values as BambooHR gives them: an empty date
        is ``"0000-00-00"``, an unset field ``null``). Raises ``NotFound`` for an unknown id."""
        endpoint = f"employees/{quote(str(employee_id), safe='')}/"
        record = self._json(endpoint, {"fields": ",".join(fields), "onlyCurrent": "false"})
        if not isinstance(record, dict):
            raise errors.Unavailable(f"BambooHR GET {endpoint}: the answer is not an employee object")
        return record

    def _not_found(self, message: str) -> str:
        return (f"{message} (no employee with this id, or a wrong company domain in the connection "
                f"{self.http_conn_id!r})")
