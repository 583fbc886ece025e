"""SendGrid v3 ``POST /mail/send`` with the official ``sendgrid`` client.

Connection type ``sendgrid`` (or ``http``): ``password`` = the API key, ``host`` = the API base URL
(default ``https://api.sendgrid.com``; the sandbox's for tests), ``extra.from_email``.

Failures: 401/403 -> :class:`AuthError`; 429 -> :class:`RateLimited` (``Retry-After`` or
``X-RateLimit-Reset``); 404 -> :class:`NotFound`; other 4xx (validation, 413) -> :class:`InvalidInput`;
5xx, network errors, an answer without ``X-Message-Id`` -> :class:`Unavailable`.
"""

from __future__ import annotations

import base64
from email.utils import parseaddr
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseHook

from include.officeflow import errors
from operators.hooks.email.base import OutgoingEmail

DEFAULT_HOST = "https://api.sendgrid.com"


class SendGridHook(BaseHook):
    """An :class:`~operators.hooks.email.base.EmailSender` over SendGrid's Mail Send API; OfficeFlow's
    delivery id and template travel as ``custom_args`` (they come back in Event Webhook events).

    :param sendgrid_conn_id: The SendGrid connection. Default ``officeflow_sendgrid``.
    """

    conn_name_attr = "sendgrid_conn_id"
    default_conn_name = "officeflow_sendgrid"
    conn_type = "sendgrid"
    hook_name = "SendGrid (OfficeFlow)"
    provider: ClassVar[str] = "sendgrid"
    stable_message_id: ClassVar[bool] = False

    def __init__(self, sendgrid_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.sendgrid_conn_id = sendgrid_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "port"],
            "relabeling": {"password": "API key", "host": "API base URL"},
            "placeholders": {"host": DEFAULT_HOST, "extra": '{"from_email": "people@example.com"}'},
        }

    @cached_property
    def _settings(self) -> tuple[str, str, dict[str, Any]]:
        """(API key, base URL, extra) of the connection."""
        conn = self.get_connection(self.sendgrid_conn_id)
        if not conn.password:
            raise errors.AuthError(f"connection {self.sendgrid_conn_id!r} needs the SendGrid API key as its password")
        host = (conn.host or DEFAULT_HOST).rstrip("/")
        return conn.password, host if "://" in host else f"https://{host}", conn.extra_dejson

    def get_conn(self) -> Any:
        """The ``sendgrid.SendGridAPIClient`` of the connection."""
        from sendgrid import SendGridAPIClient

        api_key, host, _ = self._settings
        return SendGridAPIClient(api_key=api_key, host=host)

    def default_sender(self) -> str | None:
        return self._settings[2].get("from_email")

    @staticmethod
    def body(email: OutgoingEmail) -> dict[str, Any]:
        """The ``mail/send`` body of one message."""
        name, address = parseaddr(email.sender)
        content = ([{"type": "text/plain", "value": email.text}] if email.text else []) + [
            {"type": "text/html", "value": email.html}]
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": email.recipient}]}],
            "from": {"email": address, **({"name": name} if name else {})},
            "subject": email.subject,
            "content": content,
            "custom_args": {"officeflow_delivery_id": email.delivery_id, "officeflow_template": email.template},
            "headers": {"X-OfficeFlow-Template": email.template},
        }
        if email.reply_to:
            body["reply_to"] = {"email": email.reply_to}
        if email.attachments:
            body["attachments"] = [{"content": base64.b64encode(a.data).decode(), "filename": a.filename,
                                    "type": a.content_type, "disposition": "attachment"} for a in email.attachments]
        return body

    def send(self, email: OutgoingEmail) -> str:
        from python_http_client.exceptions import HTTPError

        try:
            response = self.get_conn().send(self.body(email))
        except HTTPError as exc:
            raise self.error_for(exc) from exc
        except OSError as exc:  # urllib: refused, unreachable, timed out
            raise errors.Unavailable(f"SendGrid {type(exc).__name__}: {exc}") from exc
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            raise errors.Unavailable(f"SendGrid answered {response.status_code} without X-Message-Id")
        return str(message_id)

    def error_for(self, exc: Any) -> errors.ServiceError:
        """The :mod:`include.officeflow.errors` class of a ``python_http_client`` ``HTTPError``."""
        status = int(exc.status_code)
        detail = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
        text = f"SendGrid {status}: {detail[:500]}"
        headers = exc.headers or {}
        return errors.for_status(status, text, auth_hint=f" (check the connection {self.sendgrid_conn_id!r})",
                                 retry_after=errors.parse_retry_after(headers.get("Retry-After"),
                                                                      reset_epoch=headers.get("X-RateLimit-Reset")))

    def close(self) -> None:
        """Nothing to release: each send is one HTTPS request."""
