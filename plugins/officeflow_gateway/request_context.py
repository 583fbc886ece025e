"""Every gateway request: its correlation id, its log context and one access log line.

- The correlation id is the caller's ``X-Correlation-ID`` when valid (include/officeflow/correlation.py), else a
  new UUID; it is stored on the request (``request.state.correlation_id``, what
  :func:`plugins.officeflow_gateway.errors.correlation_id` and so every route, error body, audit record, stored
  event and run conf use) and sent back in the response's ``X-Correlation-ID`` header, on every answer.
- It is bound to the log context (``correlationId``) for the whole request, so every line logged while
  serving it (the routes, the store, the worker threads of ``run_in_threadpool``) carries it; routes bind
  ``organizationId`` / ``workflowId`` when they know them (include/officeflow/structured_logs.py).
- One ``request`` line per request: method, route template (``/webhooks/{endpoint_id}``), status, duration,
  and what the route added with :func:`note` (a delivery's ``webhook.accepted`` / ``webhook.denied`` and its
  outcome: one line per delivery, not two; formatting and redacting log lines was a quarter of a delivery's
  CPU). Health probes log it at DEBUG.
- The first request sets up the gateway's log lines (JSON or text, secrets redacted): only api-server processes
  serve requests, while every Airflow component imports the plugin.

Run by the gateway's one per-request layer (request_layer.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Scope, Send

from include.officeflow.correlation import CORRELATION_HEADER, correlation_id_from
from include.officeflow.structured_logs import configure_gateway_logging

log = logging.getLogger(__name__)
QUIET_PREFIX = "/health"
NOTE = "log_note"  # scope["state"] key of what the route adds to the request line


def note(scope: Scope, event: str, **fields: Any) -> None:
    """Add ``event`` (the line's ``event`` field) and ``fields`` to this request's line. Ids and outcomes only,
    never secrets or payloads; in text logs they follow the message as ``key=value`` pairs."""
    scope.setdefault("state", {})[NOTE] = {"event": event, **fields}


def begin(scope: Scope) -> str:
    """The request's correlation id (the caller's when valid, else a new one), kept in the request's state; sets up
    the gateway's log lines on the first request."""
    configure_gateway_logging()
    cid = correlation_id_from(Headers(scope=scope).get(CORRELATION_HEADER))
    scope.setdefault("state", {})["correlation_id"] = cid
    return cid


def sending_correlation_id(send: Send, cid: str) -> Send:
    """``send`` that adds ``X-Correlation-ID: cid`` to the response's headers."""
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
        await send(message)

    return send_with_id


def log_request(scope: Scope, route: str, status: int, started: float) -> None:
    """The request's one line: method, route template, status, duration and what the route added with :func:`note`."""
    level = logging.DEBUG if route.startswith(QUIET_PREFIX) and status < 500 else logging.INFO
    if not log.isEnabledFor(level):
        return
    added = scope["state"].get(NOTE) or {}
    log.log(level, "%s %s -> %d%s", scope.get("method"), route, status,
            "".join(f" {name}={value}" for name, value in added.items()),
            extra={"method": scope.get("method"), "route": route, "status": status,
                   "durationMs": round((time.perf_counter() - started) * 1000, 1), **added})
