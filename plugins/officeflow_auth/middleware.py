"""Root middlewares of the api-server (the plugin's ``fastapi_root_middlewares``).

:class:`LoginGuard` throttles and audits every login route: FAB's ``POST /auth/token`` and
``/auth/token/cli``, its login form ``POST /auth/login/``, and OfficeFlow's
``POST /officeflow/api/v1/auth/login``. Before an attempt it asks the throttle (failures per user name and
per client address in the window, shared by every process through the store) and answers 429 with
``Retry-After`` when locked; after it, it records the outcome (from the status, or for the form the
redirect target) and writes the audit record.

:class:`AuditTrail` audits what people do to workflows through Airflow's own REST API and UI: manual
triggers, approvals, clears, run state changes — after they succeeded, with the user the request's token
names and the client's address.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include.officeflow.audit import audit
from include.officeflow.auth import throttle
from include.officeflow.correlation import correlation_id_from
from plugins.officeflow_auth.client_address import client_address

log = logging.getLogger(__name__)

LOGIN_ROUTES = {
    "/auth/token": "token", "/auth/token/cli": "token", "/auth/login/": "form",
    "/officeflow/api/v1/auth/login": "token",
}
MAX_LOGIN_BODY = 65_536
CORRELATION_HEADER = "x-correlation-id"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _username(body: bytes, content_type: str) -> str:
    try:
        if "json" in content_type:
            value = json.loads(body or b"{}").get("username", "")
        else:
            value = parse_qs(body.decode("utf-8", "replace")).get("username", [""])[0]
    except (ValueError, AttributeError):
        return ""
    return value.strip()[:256] if isinstance(value, str) else ""


def _correlation_id(connection: HTTPConnection) -> str:
    existing = connection.scope.get("state", {}).get("correlation_id")
    return existing or correlation_id_from(connection.headers.get(CORRELATION_HEADER))


async def _json_response(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *((k.lower().encode(), v.encode()) for k, v in headers.items())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class LoginGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = LOGIN_ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        body = await _read_body(receive, MAX_LOGIN_BODY)
        if body is None:
            await _json_response(send, 413, {"detail": "login request too large"}, {})
            return
        username = _username(body, connection.headers.get("content-type", ""))
        address = client_address(connection)
        cid = _correlation_id(connection)
        lock = await run_in_threadpool(throttle.check, username, address)
        if lock is not None:
            await run_in_threadpool(audit, "auth.login_throttled", actor=f"user:{username or '?'}",
                                    resource_type="session", outcome="denied", correlation_id=cid,
                                    source_ip=address, route=scope["path"], locked_by=lock.reason)
            message = (f"too many failed logins for this {lock.reason}; try again in {lock.retry_after} s")
            await _json_response(send, 429, {
                "detail": message, "error": {"message": message, "code": "too_many_attempts", "correlationId": cid}},
                {"Retry-After": str(lock.retry_after), "X-Correlation-ID": cid})
            return

        outcome: dict[str, Any] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                outcome["location"] = headers.get("location", "")
            await send(message)

        await self.app(scope, _replay(body, receive), watch)
        succeeded = self._succeeded(kind, outcome.get("status", 500), outcome.get("location", ""))
        if succeeded is None or not username:
            return
        try:
            await run_in_threadpool(self._record, username, address, succeeded, kind, scope["path"], cid)
        except Exception:  # the login already happened; a lost record must not turn it into an error
            log.exception("could not record a login attempt (correlationId=%s)", cid)

    @staticmethod
    def _succeeded(kind: str, status: int, location: str) -> bool | None:
        """True / False for a successful / failed attempt; None when it was no attempt (bad request, CSRF)."""
        if kind == "token":
            return True if 200 <= status < 300 else False if status == 401 else None
        if status in (302, 303):
            return "/login" not in location  # FAB sends a failed login back to the login page
        return None

    @staticmethod
    def _record(username: str, address: str, succeeded: bool, kind: str, route: str, cid: str) -> None:
        throttle.record(username, address, succeeded)
        action = ("auth.token_issued" if kind == "token" else "auth.login") if succeeded else "auth.login_failed"
        audit(action, actor=f"user:{username}", resource_type="session", outcome="success" if succeeded else "failure",
              correlation_id=cid, source_ip=address, route=route)


# (method, path pattern, audit action) of Airflow API calls that change workflows.
AUDITED = [
    ("POST", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns$"), "workflow.triggered"),
    ("PATCH", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)/taskInstances/"
                         r"(?P<task_id>[^/]+)(/(?P<map_index>-?\d+))?/hitlDetails$"), "approval.responded"),
    ("POST", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/clearTaskInstances$"), "task_instances.cleared"),
    ("PATCH", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)$"), "workflow_run.updated"),
    ("PATCH", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)/taskInstances/"
                         r"(?P<task_id>[^/]+)(/(?P<map_index>-?\d+))?$"), "task_instance.updated"),
    ("POST", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)/clear$"), "workflow_run.cleared"),
    ("DELETE", re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)$"), "workflow_run.deleted"),
]
MAX_AUDITED_BODY = 1_048_576


def _details(body: bytes) -> dict[str, Any]:
    """What the request body says worth keeping: the run id, the chosen option, the target state."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    keep = {key: data[key] for key in ("dag_run_id", "chosen_options", "state", "new_state", "dry_run", "task_ids")
            if key in data}
    conf = data.get("conf")
    if isinstance(conf, dict) and isinstance(conf.get("organization_id"), str):
        keep["organization_id"] = conf["organization_id"]
    return keep


class AuditTrail:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self._match(scope) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        action, params = match
        body = await _read_body(receive, MAX_AUDITED_BODY)
        if body is None:
            await _json_response(send, 413, {"detail": "request too large"}, {})
            return
        status: dict[str, int] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, _replay(body, receive), watch)
        if not 200 <= status.get("code", 500) < 300:
            return
        connection = HTTPConnection(scope)
        try:
            actor = await self._actor(connection)
            details = {**params, **_details(body)}
            organization = details.pop("organization_id", None)
            dry_run = details.get("dry_run") is True
            if dry_run:
                return
            await run_in_threadpool(
                audit, action, actor=actor, resource_type="workflow", resource_id=params.get("dag_id"),
                outcome="success", correlation_id=_correlation_id(connection), organization_id=organization,
                source_ip=client_address(connection), **details)
        except Exception:
            log.exception("could not audit %s", action)

    @staticmethod
    def _match(scope: Scope) -> tuple[str, dict[str, str]] | None:
        method, path = scope.get("method", ""), scope.get("path", "")
        for audited_method, pattern, action in AUDITED:
            if method == audited_method and (found := pattern.match(path)):
                return action, {k: v for k, v in found.groupdict().items() if v is not None}
        return None

    @staticmethod
    async def _actor(connection: HTTPConnection) -> str:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        header = connection.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else connection.cookies.get(COOKIE_NAME_JWT_TOKEN)
        if not token:
            return "user:?"
        user = await get_auth_manager().get_user_from_token(token)
        return f"user:{user.get_name()}"
