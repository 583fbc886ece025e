"""The sandbox's shared machinery: per-service state, request log, injectable faults, credentials.

Every emulated service is a :class:`Service`: a FastAPI router mounted under ``/<name>`` plus an
``error`` function that renders an error in that service's own shape (Google's ``{"error": {code,
message, errors}}``, Graph's ``{"error": {code, message}}``, Okta's ``errorCode/errorSummary``).
Faults and auth failures use it, so clients see exactly what the real API would send.

State lives in one :class:`SandboxState` per server process: a dict per service, guarded by one lock
(the sandbox is small and correctness matters more than concurrency here). It is inspectable at
``GET /_sandbox/state/{service}`` and resettable at ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

ErrorRenderer = Callable[[int, str], tuple[dict[str, Any], dict[str, str]]]


class SandboxError(Exception):
    """Raised by a service route: rendered with the service's own error shape."""

    def __init__(self, status: int, message: str, *, reason: str | None = None,
                 headers: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers or {}
        self.body = body


@dataclass
class Service:
    """One emulated SaaS API."""

    name: str
    router: APIRouter
    error: Callable[[SandboxError], tuple[dict[str, Any], dict[str, str]]]
    seed: Callable[[dict[str, Any], Credentials], None] = lambda state, credentials: None


# --- credentials ------------------------------------------------------------------------------

@dataclass
class Credentials:
    """What the sandbox accepts. Written by :func:`sandbox.credentials.generate` as JSON.

    - ``google_service_accounts``: client_email -> PEM public key (assertions must be RS256-signed
      by the matching private key, as Google checks against the service account's keys);
    - ``google_domain``: the Workspace domain (users and groups must be in it);
    - ``microsoft_clients``: client_id -> client secret, ``microsoft_tenant``, ``microsoft_domain``;
    - ``okta_tokens``: accepted SSWS API tokens;
    - ``bamboohr_api_keys``: accepted BambooHR API keys, ``bamboohr_company``: the company domain;
    - ``workday_isu_username`` / ``workday_isu_passwords``: the integration system user and its accepted
      passwords, ``workday_tenant``: the tenant, ``workday_report``: the workers report's name (RaaS);
    - ``tls_*``: the TLS listener's certificate and key files, the local CA that signed them (what a
      client must trust) and its base URL (``https://127.0.0.1:<tls port>``), when it has one.
    """

    google_service_accounts: dict[str, str] = field(default_factory=dict)
    google_domain: str = "officeflow.test"
    microsoft_clients: dict[str, str] = field(default_factory=dict)
    microsoft_tenant: str = "officeflow-tenant"
    microsoft_domain: str = "officeflow.test"
    okta_tokens: list[str] = field(default_factory=list)
    bamboohr_api_keys: list[str] = field(default_factory=list)
    bamboohr_company: str = "officeflow"
    workday_isu_username: str = "ISU_OfficeFlow"
    workday_isu_passwords: list[str] = field(default_factory=list)
    workday_tenant: str = "officeflow"
    workday_report: str = "OfficeFlow_Workers"
    tls_base_url: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- state --------------------------------------------------------------------------------------

class SandboxState:
    """All services' data, one lock. ``tokens`` maps issued bearer tokens to their grants."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.services: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def of(self, service: str) -> dict[str, Any]:
        with self.lock:
            return self.services.setdefault(service, {})

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def snapshot(self, service: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.services.get(service, {}))

    def log_request(self, service: str, entry: dict[str, Any]) -> None:
        with self.lock:
            log = self.requests.setdefault(service, [])
            log.append(entry)
            del log[:-5000]


# --- faults -------------------------------------------------------------------------------------

class FaultRule(BaseModel):
    """An injected fault: the next ``count`` matching requests get it (then the rule is spent)."""

    model_config = ConfigDict(extra="forbid")

    service: str
    method: str | None = Field(default=None, description="HTTP method to match; any when unset")
    path: str | None = Field(default=None, description="substring of the path (after the service prefix)")
    status: int | None = Field(default=None, ge=400, le=599, description="answer with this error status")
    retry_after: float | None = Field(default=None, ge=0, description="Retry-After seconds (429/503)")
    latency_ms: int = Field(default=0, ge=0, le=60_000, description="delay before answering")
    count: int = Field(default=1, ge=1, le=10_000)
    message: str | None = None
    after: bool = Field(default=False, description="apply the request first, then answer with the fault "
                        "(a failure the client sees although the change was made)")


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self, service: str | None = None) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if service is not None and r.service != service]

    def take(self, service: str, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.service != service or (rule.method and rule.method.upper() != method):
                    continue
                if rule.path and rule.path not in path:
                    continue
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.remove(rule)
                return rule.model_copy()
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.model_dump() for r in self._rules]


# --- helpers for service modules ---------------------------------------------------------------

def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def issue_token(state: SandboxState, grant: dict[str, Any], ttl: int = 3600) -> str:
    import secrets

    token = f"sbx.{secrets.token_urlsafe(24)}"
    with state.lock:
        state.tokens[token] = {**grant, "expires_at": time.time() + ttl}
    return token


def grant_for(state: SandboxState, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    with state.lock:
        grant = state.tokens.get(token)
    if grant is None or grant["expires_at"] < time.time():
        return None
    return grant


#: ASGI scope key set by :func:`serve_at_root` on requests it routed to a service mounted at the root.
ROOT_SERVICE_KEY = "officeflow.sandbox.root_service"


def serve_at_root(app: Any, service: str) -> Any:
    """``app`` with ``service`` also answering at the root (``/x`` is served as ``/<service>/x``); every
    other prefix (``/_sandbox``, the other services, ``/<service>`` itself) stays as it is.

    The TLS listener serves Microsoft this way: msal's token cache takes the tenant from the first path
    segment of the token endpoint, so the authority must be a bare ``https://host:port``.
    """
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            first = scope["path"].split("/", 2)[1]
            known = {route.path.split("/", 2)[1] for route in app.routes if getattr(route, "path", "")}
            if first not in known:
                scope = {**scope, "path": f"/{service}{scope['path']}", ROOT_SERVICE_KEY: service,
                         "raw_path": f"/{service}".encode() + scope.get("raw_path", scope["path"].encode())}
        await app(scope, receive, send)

    return asgi


def service_root(request: Request, service: str) -> str:
    """The URL the client used for the service's root: ``<base>/<service>``, or ``<base>`` when it is
    served at the root (:func:`serve_at_root`)."""
    base = str(request.base_url).rstrip("/")
    return base if request.scope.get(ROOT_SERVICE_KEY) == service else f"{base}/{service}"


def page(items: list[Any], *, offset: int, limit: int) -> tuple[list[Any], int | None]:
    """A slice and the next offset (None on the last page)."""
    chunk = items[offset:offset + limit]
    nxt = offset + limit
    return chunk, (nxt if nxt < len(items) else None)


# --- the app ------------------------------------------------------------------------------------

def error_response(service: Service, error: SandboxError) -> JSONResponse:
    body, headers = service.error(error)
    return JSONResponse(status_code=error.status, content=body, headers={**headers, **error.headers})


def install(app: Any, services: list[Service], state: SandboxState, faults: Faults,
            credentials: Credentials) -> None:
    """Mount every service under ``/<name>`` with fault injection, request logging and error shapes."""
    by_name = {s.name: s for s in services}
    for service in services:
        service.seed(state.of(service.name), credentials)
        app.include_router(service.router, prefix=f"/{service.name}")

    @app.middleware("http")
    async def _faults_and_log(request: Request, call_next: Callable[..., Any]) -> Response:
        parts = request.url.path.split("/", 2)
        service = by_name.get(parts[1]) if len(parts) > 1 else None
        if service is None:
            return await call_next(request)  # type: ignore[no-any-return]
        sub_path = "/" + (parts[2] if len(parts) > 2 else "")
        rule = faults.take(service.name, request.method, sub_path)
        if rule and rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        response: Response
        if rule and rule.status and not rule.after:
            response = _fault_response(service, rule)
        else:
            try:
                response = await call_next(request)
            except SandboxError as exc:  # pragma: no cover - routes' errors are handled below
                response = error_response(service, exc)
            if rule and rule.status and rule.after:
                response = _fault_response(service, rule)
        state.log_request(service.name, {"method": request.method, "path": sub_path,
                                         "query": str(request.url.query), "status": response.status_code,
                                         "at": time.time()})
        return response

    @app.exception_handler(SandboxError)
    async def _sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        parts = request.url.path.split("/", 2)
        service = by_name.get(parts[1]) if len(parts) > 1 else None
        if service is None:
            return JSONResponse(status_code=exc.status, content={"error": exc.message})
        return error_response(service, exc)

    control = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    @control.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "services": sorted(by_name)}

    @control.get("/state/{service}")
    def get_state(service: str) -> dict[str, Any]:
        if service not in by_name:
            raise SandboxError(404, f"unknown service {service!r}")
        return state.snapshot(service)

    @control.get("/requests/{service}")
    def get_requests(service: str) -> list[dict[str, Any]]:
        with state.lock:
            return list(state.requests.get(service, []))

    @control.post("/reset")
    def reset(service: str | None = None) -> dict[str, Any]:
        names = [service] if service else list(by_name)
        for name in names:
            if name not in by_name:
                raise SandboxError(404, f"unknown service {name!r}")
            with state.lock:
                state.services[name] = {}
                state.requests.pop(name, None)
            by_name[name].seed(state.of(name), credentials)
            faults.clear(name)
        return {"reset": names}

    @control.post("/faults", status_code=201)
    def add_fault(rule: FaultRule) -> dict[str, Any]:
        if rule.service not in by_name:
            raise SandboxError(404, f"unknown service {rule.service!r}")
        faults.add(rule)
        return {"pending": faults.pending()}

    @control.get("/faults")
    def pending_faults() -> dict[str, Any]:
        """The injected rules not spent yet."""
        return {"pending": faults.pending()}

    @control.delete("/faults")
    def clear_faults(service: str | None = None) -> dict[str, Any]:
        faults.clear(service)
        return {"pending": faults.pending()}

    app.include_router(control)


def _fault_response(service: Service, rule: FaultRule) -> JSONResponse:
    assert rule.status is not None
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(int(rule.retry_after)) if float(rule.retry_after).is_integer() \
            else str(rule.retry_after)
    message = rule.message or {429: "Rate limit exceeded", 500: "Internal error", 502: "Bad gateway",
                               503: "Service unavailable"}.get(rule.status, "Injected fault")
    return error_response(service, SandboxError(rule.status, message, reason="injected", headers=headers))
