"""SMTP: providers-smtp's :class:`SmtpHook` sending OfficeFlow's multipart messages.

Connection type ``smtp`` (host, port, login, password; ``extra``: ``from_email``, ``disable_tls``,
``disable_ssl``, ``timeout``, ``retry_limit``, as providers-smtp documents them).

Failures: bad credentials -> :class:`AuthError`; a 5xx reply (recipient, sender or message refused)
-> :class:`InvalidInput`; a 4xx reply, a dropped or refused connection, a timeout -> :class:`Unavailable`.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, ClassVar

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk.exceptions import AirflowException

from include.officeflow.errors import AuthError, InvalidInput, ServiceError, Unavailable
from operators.hooks.email.base import OutgoingEmail


class OfficeFlowSmtpHook(SmtpHook):
    """An :class:`~operators.hooks.email.base.EmailSender` over SMTP: a text and an HTML part, typed
    attachments, OfficeFlow's tracking headers, and a Message-ID derived from the delivery id (a resend
    after a crashed try carries the same one). One session serves every message until :meth:`close`.

    :param smtp_conn_id: The SMTP connection. Default ``smtp_default``.
    """

    provider: ClassVar[str] = "smtp"
    stable_message_id: ClassVar[bool] = True

    def default_sender(self) -> str | None:
        if self.smtp_connection is None:
            self.smtp_connection = self.get_connection(self.smtp_conn_id)
        return self.from_email

    @staticmethod
    def message_id(delivery_id: str, sender: str) -> str:
        """Stable per delivery: a resend after a crashed try carries the same Message-ID."""
        return f"<{delivery_id}@{sender.rpartition('@')[2] or 'officeflow.local'}>"

    def build_message(self, email: OutgoingEmail) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = email.subject
        msg["From"] = email.sender
        msg["To"] = email.recipient
        if email.reply_to:
            msg["Reply-To"] = email.reply_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = self.message_id(email.delivery_id, email.sender)
        msg["X-OfficeFlow-Template"] = email.template
        msg["X-OfficeFlow-Delivery"] = email.delivery_id
        if email.text:
            msg.set_content(email.text)
            msg.add_alternative(email.html, subtype="html")
        else:
            msg.set_content(email.html, subtype="html")
        for a in email.attachments:
            maintype, subtype = a.content_type.split("/", 1)
            msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
        return msg

    def send(self, email: OutgoingEmail) -> str:
        msg = self.build_message(email)
        try:
            if self._smtp_client is None:
                self.get_conn()
            # SmtpHook's own send builds HTML-only messages; OfficeFlow's have a plain-text part and typed
            # attachments, so the message goes out on the hook's authenticated client.
            client: Any = self._smtp_client
            client.send_message(msg, from_addr=parseaddr(email.sender)[1], to_addrs=[email.recipient])
        except (smtplib.SMTPException, OSError, AirflowException) as exc:
            raise self.error_for(exc) from exc
        return str(msg["Message-ID"])

    def error_for(self, exc: Exception) -> ServiceError:
        """The :mod:`include.officeflow.errors` class of an SMTP failure."""
        text = f"SMTP {type(exc).__name__}: {exc}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return AuthError(f"{text} (check the connection {self.smtp_conn_id!r})")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            return InvalidInput(text) if codes and min(codes) >= 500 else Unavailable(text)
        if isinstance(exc, smtplib.SMTPResponseException):
            return InvalidInput(text) if exc.smtp_code >= 500 else Unavailable(text)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return InvalidInput(f"{text} (check the connection {self.smtp_conn_id!r})")
        return Unavailable(text)  # disconnected, refused, timed out, no session

    def close(self) -> None:
        if self._smtp_client is not None:
            self.__exit__(None, None, None)
