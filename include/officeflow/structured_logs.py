"""OfficeFlow's structured log fields, and JSON lines for the gateway in the api-server.

Every OfficeFlow log line carries ``timestamp, level, service, message, correlationId, workflowId,
organizationId, version, environment`` (docs/observability.md). The per-request / per-run ids live in
structlog's context variables (:func:`bind`), the store Airflow itself uses: Airflow's task logging merges them
into every task log line, and :class:`JsonFormatter` reads them for the gateway's lines. Context variables
follow a request through ``await`` and into ``run_in_threadpool`` worker threads, and never leak between
concurrent requests.

The gateway's lines (loggers under :data:`GATEWAY_LOGGERS`) are JSON when ``OFFICEFLOW_LOG_FORMAT=json``
(the default in production) and go to stdout beside Airflow's own lines; with ``text`` they stay in
Airflow's console format. Either way every line passes :class:`~include.officeflow.redaction.RedactSecrets`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, TextIO

from include.officeflow import __version__
from include.officeflow.redaction import RedactSecrets, redact_text, redact_value
from include.officeflow.settings import Settings, get_settings

CONTEXT_FIELDS = ("correlationId", "workflowId", "organizationId")
FIELDS = ("timestamp", "level", "service", "message", *CONTEXT_FIELDS, "version", "environment")
GATEWAY_LOGGERS = ("plugins.officeflow_gateway", "plugins.officeflow_auth", "include.officeflow")

# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def static_fields(settings: Settings | None = None) -> dict[str, str]:
    """``service``, ``version`` and ``environment``: the same on every line of a deployment."""
    settings = settings or get_settings()
    return {"service": settings.service_name, "version": settings.version or __version__,
            "environment": settings.env}


def context_fields() -> dict[str, Any]:
    """The ids bound to the current request / task (``None`` for those not bound)."""
    from structlog.contextvars import get_contextvars

    bound = get_contextvars()
    return {name: bound.get(name) for name in CONTEXT_FIELDS}


def bind(**fields: Any) -> None:
    """Bind ids (``correlationId=…``, ``organizationId=…``, ``workflowId=…``) to the current context."""
    from structlog.contextvars import bind_contextvars

    bind_contextvars(**{name: str(value) for name, value in fields.items() if value not in (None, "")})


class bound(AbstractContextManager[None]):
    """:func:`bind` for the ``with`` block only (what was bound before is back afterwards). With the tokens of
    the variables set (structlog's ``bound_contextvars`` first copies every context variable to find what was
    bound: a sizeable share of a webhook delivery's CPU); a class, not a generator, for the same reason (every
    gateway request enters one)."""

    def __init__(self, **fields: Any) -> None:
        self.fields = {name: str(value) for name, value in fields.items() if value not in (None, "")}
        self.tokens: Mapping[str, Any] = {}

    def __enter__(self) -> None:
        from structlog.contextvars import bind_contextvars

        self.tokens = bind_contextvars(**self.fields)

    def __exit__(self, *_: object) -> None:
        from structlog.contextvars import reset_contextvars

        reset_contextvars(**self.tokens)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: :data:`FIELDS` first, then ``logger``, the record's ``extra`` fields and the
    redacted ``exception``. Values are redacted again here (an ``extra`` field may be a header dict)."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self._static = static_fields(settings)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "service": self._static["service"],
            "message": redact_text(record.getMessage()),
            **context_fields(),
            "version": self._static["version"],
            "environment": self._static["environment"],
            "logger": record.name,
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in line and not name.startswith("_"):
                line[name] = redact_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact_text(record.exc_text)
        return json.dumps(line, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (a test's capture, a re-opened stream)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_lock = threading.Lock()
_installed: dict[str, Any] = {}


def configure_gateway_logging(settings: Settings | None = None) -> None:
    """Set up the gateway's log lines in this process (idempotent; the api-server calls it on its first request).

    Adds :class:`RedactSecrets` to the root logger's handlers (Airflow's console handler), and with
    ``log_format=json`` gives :data:`GATEWAY_LOGGERS` a JSON handler of their own (not propagating, so a line
    is written once).
    """
    if _installed:  # every request asks; set up once
        return
    settings = settings or get_settings()
    with _lock:
        if _installed:
            return
        redaction = RedactSecrets()
        root_handlers = list(logging.getLogger().handlers)
        for handler in root_handlers:
            handler.addFilter(redaction)
        _installed["root_handlers"] = root_handlers
        _installed["filter"] = redaction
        if settings.log_format == "json":
            handler = _StdoutHandler()
            handler.addFilter(redaction)
            handler.setFormatter(JsonFormatter(settings))
            previous = {}
            for name in GATEWAY_LOGGERS:
                logger = logging.getLogger(name)
                previous[name] = logger.propagate
                logger.addHandler(handler)
                logger.propagate = False
            _installed["handler"] = handler
            _installed["propagate"] = previous


def reset_gateway_logging() -> None:
    """Undo :func:`configure_gateway_logging` (tests switch formats)."""
    with _lock:
        if not _installed:
            return
        for handler in _installed["root_handlers"]:
            handler.removeFilter(_installed["filter"])
        if "handler" in _installed:
            for name, propagate in _installed["propagate"].items():
                logger = logging.getLogger(name)
                logger.removeHandler(_installed["handler"])
                logger.propagate = propagate
        _installed.clear()
