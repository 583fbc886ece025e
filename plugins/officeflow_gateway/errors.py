"""One error shape everywhere: ``{"error": {"message", "code", "correlationId"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import Scope

from include.officeflow.correlation import CORRELATION_HEADER, correlation_id_from
from include.officeflow.store.async_pg import StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client with a status code, a stable code and a message."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}


def correlation_id(request: HTTPConnection) -> str:
    """The caller's correlation id (if valid, include/officeflow/correlation.py) or a new one; stored on the
    request for reuse (the request-context middleware sets it first, request_context.py)."""
    existing = getattr(request.state, "correlation_id", None)
    if existing:
        return existing
    value = correlation_id_from(request.headers.get(CORRELATION_HEADER))
    request.state.correlation_id = value
    return value


def error_response(request: HTTPConnection, status_code: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    cid = correlation_id(request)
    return JSONResponse(
        status_code=status_code,
        content={"error": {"message": message, "code": code, "correlationId": cid}},
        headers={CORRELATION_HEADER: cid, **(headers or {})},
    )


NUL_MESSAGE = "A string literal cannot contain NUL (0x00) characters."  # psycopg2's ValueError


def nul_in_url_refusal(scope: Scope) -> JSONResponse | None:
    """The 422 for a NUL character in the URL's path or query: no OfficeFlow id or filter holds one, and PostgreSQL
    text cannot (it would fail in the database: a 500)."""
    if "\x00" not in scope["path"] and b"%00" not in scope["query_string"]:
        return None
    return error_response(HTTPConnection(scope), 422, "validation_error",
                          "the URL holds a NUL character (%00): no parameter may contain one")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(request, 422, "validation_error", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(OperationalError)
    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: OperationalError | StoreUnavailable) -> JSONResponse:
        # Nothing was committed, so the sender should retry (BambooHR retries 5xx answers).
        log.error("Database unavailable (correlationId=%s): %s", correlation_id(request),
                  exc.orig if isinstance(exc, OperationalError) else exc)
        return error_response(request, 503, "store_unavailable",
                              "OfficeFlow store unavailable; nothing was stored, retry later",
                              headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, ValueError) and str(exc) == NUL_MESSAGE:
            # A NUL in a body's text reached the store (the URL's are refused by nul_in_url_refusal): bad input.
            return error_response(request, 422, "validation_error",
                                  "the request holds a NUL character (\\u0000): no text field may contain one")
        log.exception("Unhandled error (correlationId=%s)", correlation_id(request))
        return error_response(request, 500, "internal_error", "Internal error; quote the correlationId")
