"""Secrets out of log lines: what Airflow's secrets masker knows, plus the shapes a secret takes in OfficeFlow.

Airflow's masker (:func:`airflow.sdk.log.mask_secret`) hides values it was told about (connection passwords,
sensitive variables, whatever code registers) and values under sensitive key names. A log line can also carry
a secret nobody registered: a header dump, a URL with an API key, an error quoting a request. The patterns
here hide those by shape:

- ``Authorization: Bearer …`` / ``Basic …`` and bare ``Bearer …``; JSON Web Tokens (``eyJ….….…``);
- ``key=value`` / ``"key": "value"`` / ``key: value`` for sensitive names (password, secret, token, api key,
  signature, authorization, cookie, client secret, private key, …), which covers query strings
  (``?api_key=…``), JSON bodies and header lists;
- webhook secrets (``whsec_…``), Slack tokens (``xox?-…``), OpenAI-style keys (``sk-…``);
- passwords in URLs (``scheme://user:password@host``).

Ids OfficeFlow logs on purpose (correlation ids, run ids, event ids) have none of these shapes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"

_SENSITIVE_NAME = (
    r"(?:[\w.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|(?:private|webhook|signing|secret|encryption|fernet|master)[_-]?key"
    r"|signature|authorization|auth[_-]?header|cookie|credential|session[_-]?key|sig)(?:-\d+)?)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values, with or without the header name.
    (re.compile(r"\b(Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE), rf"\1 {MASK}"),
    # JSON Web Tokens anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # "name": "value" and 'name': 'value' (JSON, Python reprs of dicts / header lists).
    (re.compile(rf"""(["']{_SENSITIVE_NAME}["']\s*[:,]\s*)(["'])(?:(?!\2).)*\2""", re.IGNORECASE), rf"\1\2{MASK}\2"),
    # name=value (query strings, form bodies, key=value log lines) and name: value (header dumps).
    (re.compile(rf"""(\b{_SENSITIVE_NAME}\s*[=:]\s*)(?!{re.escape(MASK)})(?![\s"'\[{{(])[^\s&,;"'<>)\]}}]+""",
                re.IGNORECASE), rf"\1{MASK}"),
    # Known secret formats.
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), f"whsec_{MASK}"),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{16,}"), MASK),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", re.IGNORECASE), rf"\1{MASK}@"),
)
_SENSITIVE_KEY = re.compile(rf"^{_SENSITIVE_NAME}$", re.IGNORECASE)


def _airflow_redact(value: Any) -> Any:
    """Airflow's secrets masker over ``value`` (registered secrets, sensitive key names); as is without it."""
    try:
        # The task SDK's masker: mask_secret (airflow.sdk.log) registers into it, in tasks and the api-server.
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - Airflow is always installed where OfficeFlow runs
        return value
    return redact(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret and every secret-shaped value replaced by ``***``."""
    masked = _airflow_redact(text)
    text = masked if isinstance(masked, str) else text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_sensitive_key(name: str) -> bool:
    """Whether a field / header / parameter called ``name`` holds a secret (its value is never logged)."""
    return bool(_SENSITIVE_KEY.match(name))


def redact_value(value: Any, depth: int = 0) -> Any:
    """A structured log field with secrets hidden: sensitive keys masked, strings redacted, containers walked."""
    if depth > 8:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: MASK if isinstance(key, str) and is_sensitive_key(key) else redact_value(item, depth + 1)
                for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item, depth + 1) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


class RedactSecrets(logging.Filter):
    """A handler filter: the record's message (arguments merged in) and its traceback, redacted.

    On a handler, it runs before any formatter of that handler (and the record it changed is what later handlers
    get), so nothing it lets through carries a secret. A traceback without a secret is left to the formatters
    (Airflow's renders it structured); one with a secret is replaced by its redacted text, after the message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep the template, drop the arguments
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        if record.exc_info:
            trace = record.exc_text or logging.Formatter().formatException(record.exc_info)
            redacted = redact_text(trace)
            if redacted != trace:
                record.msg = f"{record.msg}\n{redacted}"
                record.exc_info, record.exc_text = None, None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """A structlog processor: every field of the event redacted (sensitive keys masked)."""
    return {key: MASK if is_sensitive_key(key) else redact_value(item) for key, item in event_dict.items()}
