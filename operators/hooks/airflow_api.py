"""Airflow REST API hook: the run history of every workflow, read the way any API client reads it.

Task code has no metadata-DB access in Airflow 3; the ``workflow_insights`` DAG reads runs and task instances
through the api-server's public REST API v2 with a read-only service user instead.

Connection ``officeflow_airflow_api`` (conn_type ``http``, providers-http's :class:`HttpHook`):

- ``host``: the api-server's base URL, e.g. ``http://127.0.0.1:8080`` (``schema`` and ``port`` are used when the
  host has no scheme); ``extra`` as HttpHook reads it (``verify``, ``proxies``, extra headers);
- ``login`` / ``password``: a user of the auth manager that may read DAGs, DAG runs and task instances and
  nothing else (``python -m plugins.officeflow_auth.roles service-user``; ``./run.sh migrate`` creates one).

The hook trades them for a JWT at ``POST /auth/token`` (``{"username", "password"}`` -> ``access_token``) and sends
it as ``Authorization: Bearer``; the password never goes to any other route, and a token that expired during a
long read is fetched again once.

- :meth:`AirflowApiHook.dag_runs`: ``POST /api/v2/dags/~/dagRuns/list`` with ``start_date_gte`` (and
  ``dag_ids`` when only some workflows are asked for);
- :meth:`AirflowApiHook.task_instances`: ``POST /api/v2/dags/~/dagRuns/~/taskInstances/list`` with the same
  filters.

Both page with ``page_limit`` / ``page_offset`` until ``total_entries``.

Each returns only the fields :mod:`include.officeflow.insights` uses (no ``conf``, notes or rendered fields: they
may hold personal data). Failures are :mod:`include.officeflow.errors`: 401/403 -> :class:`AuthError` naming
the connection (permanent), 429 -> :class:`RateLimited` with ``Retry-After``, 5xx, timeouts and refused
connections -> :class:`Unavailable` (retryable), other 4xx -> :class:`InvalidInput`. Each call is made once;
callers own the retry policy (:func:`include.officeflow.errors.with_retries`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from include.officeflow import errors

DEFAULT_CONN_ID = "officeflow_airflow_api"
PAGE_SIZE = 100  # the api-server's [api] maximum_page_limit default; a smaller cap still pages correctly
RUN_FIELDS = ("dag_id", "dag_run_id", "state", "queued_at", "start_date", "end_date")
TI_FIELDS = ("dag_id", "dag_run_id", "task_id", "map_index", "state", "try_number", "start_date", "end_date",
             "duration", "queued_when")

#: How each page's request is made: once (the default), or wrapped, e.g. in ``errors.with_retries``.
PageCall = Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]


def _once(request: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return request()


class _BearerToken(AuthBase):
    """``Authorization: Bearer <JWT>``, the JWT fetched from ``/auth/token`` on first use."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        self.fetch = fetch
        self.token: str | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is None:
            self.token = self.fetch()
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class AirflowApiHook(HttpHook):
    """Read DAG runs and task instances of every workflow through Airflow's REST API v2 as a service user.

    :param airflow_api_conn_id: The connection (default ``officeflow_airflow_api``).
    :param timeout: Seconds per request.

    .. code-block:: python

        hook = AirflowApiHook()
        runs = hook.dag_runs(since)
        task_instances = hook.task_instances(since)
    """

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "OfficeFlow Airflow REST API"

    def __init__(self, airflow_api_conn_id: str = DEFAULT_CONN_ID, *, timeout: float = 30.0) -> None:
        super().__init__(method="GET", http_conn_id=airflow_api_conn_id)
        self.airflow_api_conn_id = airflow_api_conn_id
        self.timeout = timeout
        self._session: requests.Session | None = None
        self._auth: _BearerToken | None = None
        self._credentials: dict[str, str] = {}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "port"],
                "relabeling": {"host": "api-server base URL", "login": "Service user", "password": "Password"},
                "placeholders": {"host": "http://127.0.0.1:8080", "login": "officeflow-insights"}}

    # --- the session and its token ----------------------------------------------------------------------------

    def _extract_auth(self, connection: Any) -> Any | None:
        """HttpHook would send the login as Basic auth on every request; the api-server wants a JWT instead."""
        if not connection.login or not connection.password:
            raise errors.AuthError(f"connection {self.airflow_api_conn_id!r} needs login and password (a read-only "
                                   "service user of the api-server)")
        self._credentials = {"username": connection.login, "password": connection.password}
        self._auth = _BearerToken(self._fetch_token)
        return self._auth

    def session(self) -> requests.Session:
        """The configured session (base URL, extras, the bearer token); built once."""
        if self._session is None:
            try:
                self._session = self.get_conn()
            except errors.ServiceError:
                raise
            except Exception as exc:  # AirflowNotFoundException and friends: no usable connection
                raise errors.AuthError(f"connection {self.airflow_api_conn_id!r} is not usable "
                                       f"({exc.__class__.__name__}: {exc}); create it with host = the api-server's "
                                       "base URL, login/password = a read-only service user") from None
        return self._session

    def _fetch_token(self) -> str:
        response = self._send("POST", "/auth/token", json=self._credentials, auth=False)
        token = response.json().get("access_token") if _is_json(response) else None
        if not token:
            raise errors.Unavailable(f"POST /auth/token of {self.base_url} answered no access_token")
        return str(token)

    # --- requests and their errors ----------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json: dict[str, Any] | None = None, auth: bool = True) -> requests.Response:
        session = self.session()
        kwargs: dict[str, Any] = {"params": params, "json": json, "timeout": self.timeout,
                                  "allow_redirects": False}
        if not auth:
            kwargs["auth"] = lambda request: request  # no bearer token on the token route itself
        try:
            response = session.request(method, self.url_from_endpoint(path), **kwargs)
        except requests.RequestException as exc:
            raise errors.Unavailable(f"Airflow API {method} {path} at {self.base_url} failed: "
                                     f"{exc.__class__.__name__}") from None
        if response.status_code == 401 and auth and self._auth is not None and self._auth.token is not None:
            self._auth.token = None  # expired during a long read: one new token, then the answer counts
            return self._send(method, path, params=params, json=json, auth=auth)
        if response.ok:
            return response
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: requests.Response) -> errors.ServiceError:
        detail = response.json().get("detail") if _is_json(response) else None
        message = f"Airflow API {response.status_code} on {method} {path}: {detail or response.reason}"
        hint = ""
        if response.status_code == 401:
            hint = (f"; check connection {self.airflow_api_conn_id!r}: login/password of an api-server user "
                    "(a role that must not require a second factor)")
        elif response.status_code == 403:
            hint = (f"; the user of connection {self.airflow_api_conn_id!r} needs can_read on DAGs, DAG Runs and "
                    "Task Instances")
        return errors.for_status(response.status_code, message, auth_hint=hint,
                                 retry_after=errors.parse_retry_after(response.headers.get("Retry-After")))

    def _get_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        if not _is_json(response):
            raise errors.Unavailable(f"Airflow API {method} {path}: not a JSON answer")
        body = response.json()
        if not isinstance(body, dict):
            raise errors.Unavailable(f"Airflow API {method} {path}: expected an object")
        return body

    def _pages(self, fetch: Callable[[int], dict[str, Any]], key: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            body = fetch(offset)
            items = body.get(key)
            if not isinstance(items, list):
                raise errors.Unavailable(f"Airflow API: the answer has no {key!r} list")
            yield from items
            offset += len(items)
            if not items or offset >= int(body.get("total_entries") or 0):
                return

    # --- the run history --------------------------------------------------------------------------------------

    def dag_runs(self, since: datetime, *, dag_ids: Sequence[str] = (), call: PageCall = _once
                 ) -> list[dict[str, Any]]:
        """Every DAG run that started at or after ``since`` (aware), of the workflows in ``dag_ids`` (empty: all
        the user may read): ``{dag_id, run_id, state, queued_at, start_date, end_date}``. ``call`` wraps each
        page's request (e.g. with retries)."""
        return [_pick(run, RUN_FIELDS) for run in self._list("/api/v2/dags/~/dagRuns/list", "dag_runs", since,
                                                               dag_ids, call)]

    def task_instances(self, since: datetime, *, dag_ids: Sequence[str] = (), call: PageCall = _once
                       ) -> list[dict[str, Any]]:
        """Every task instance that started at or after ``since``, of the workflows in ``dag_ids`` (empty: all):
        ``{dag_id, run_id, task_id, map_index, state, try_number, start_date, end_date, duration, queued_when}``."""
        return [_pick(ti, TI_FIELDS) for ti in self._list("/api/v2/dags/~/dagRuns/~/taskInstances/list",
                                                           "task_instances", since, dag_ids, call)]

    def _list(self, path: str, key: str, since: datetime, dag_ids: Sequence[str], call: PageCall
              ) -> Iterator[dict[str, Any]]:
        filters: dict[str, Any] = {"start_date_gte": since.isoformat(), "order_by": "id"}
        if dag_ids:
            filters["dag_ids"] = list(dag_ids)

        def page(offset: int) -> dict[str, Any]:
            body = {**filters, "page_limit": PAGE_SIZE, "page_offset": offset}
            return call(lambda: self._get_json("POST", path, json=body))

        return self._pages(page, key)

    def test_connection(self) -> tuple[bool, str]:
        """The Connections page's Test button: a token and one page of runs."""
        try:
            self._get_json("GET", "/api/v2/dags/~/dagRuns", params={"limit": 1})
        except errors.ServiceError as exc:
            return False, str(exc)
        return True, "Connection successfully tested"


def _is_json(response: requests.Response) -> bool:
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        response.json()
    except (ValueError, json.JSONDecodeError):
        return False
    return True


def _pick(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    picked = {name: item.get(name) for name in names}
    picked["run_id"] = picked.pop("dag_run_id")
    return picked
