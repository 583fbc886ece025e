"""Email provider hooks behind one small protocol, :class:`EmailSender` (``default_sender``, ``send``, ``close``).

- ``smtp``: :class:`~operators.hooks.email.smtp.OfficeFlowSmtpHook` (providers-smtp's ``SmtpHook``);
- ``aws``: :class:`~operators.hooks.email.ses.SesEmailHook` (SES v2 on providers-amazon's ``AwsBaseHook``);
- ``sendgrid`` / ``http``: :class:`~operators.hooks.email.sendgrid.SendGridHook` (the official client).

Each maps its provider's failures onto :mod:`include.officeflow.errors` (permanent or worth a later try).
:func:`sender_for` picks the hook by the connection's type.
"""

from __future__ import annotations

from operators.hooks.email.base import Attachment, EmailSender, OutgoingEmail

__all__ = ["Attachment", "EmailSender", "OutgoingEmail", "sender_for"]

SMTP_TYPES = frozenset({"smtp"})
SES_TYPES = frozenset({"aws", "amazon", "aws_ses"})
SENDGRID_TYPES = frozenset({"sendgrid", "http", "https"})


def sender_for(conn_id: str) -> EmailSender:
    """The hook the connection's type names: smtp, aws (SES v2), sendgrid / http (SendGrid).

    Raises ``ValueError`` for any other type (and Airflow's ``AirflowNotFoundException`` for an
    unknown connection)."""
    from airflow.sdk import BaseHook

    conn_type = (BaseHook.get_connection(conn_id).conn_type or "").lower()
    if conn_type in SMTP_TYPES:
        from operators.hooks.email.smtp import OfficeFlowSmtpHook

        return OfficeFlowSmtpHook(smtp_conn_id=conn_id)
    if conn_type in SES_TYPES:
        from operators.hooks.email.ses import SesEmailHook

        return SesEmailHook(aws_conn_id=conn_id)
    if conn_type in SENDGRID_TYPES:
        from operators.hooks.email.sendgrid import SendGridHook

        return SendGridHook(sendgrid_conn_id=conn_id)
    raise ValueError(f"connection {conn_id!r} has type {conn_type!r}; email needs smtp, aws (SES) or "
                     "sendgrid/http (SendGrid)")
