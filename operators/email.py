"""Email operators: templated messages sent through Airflow's SMTP connection (providers-smtp)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str


def render_email(template: str, variables: dict[str, Any]) -> RenderedEmail:
    """Render ``include/templates/email/<template>.subject.j2`` and ``<template>.html.j2``.

    Raises ``jinja2.UndefinedError`` when the template needs a variable that is missing, and
    ``jinja2.TemplateNotFound`` for an unknown template.
    """
    from include.officeflow.templating import environment

    env = environment("email")
    subject = env.get_template(f"{template}.subject.j2").render(**variables).strip()
    if not subject or "\n" in subject:
        raise ValueError(f"template {template!r} must render a one-line, non-empty subject")
    html = env.get_template(f"{template}.html.j2").render(**variables)
    return RenderedEmail(subject=subject, html=html)


class SendTemplatedEmailOperator(BaseOperator):
    """Render an OfficeFlow email template and send it through an Airflow SMTP connection.

    :param template: Template name under ``include/templates/email/`` (e.g. ``welcome``). (templated)
    :param to: Recipient address or list of addresses. (templated)
    :param variables: Values the template uses; a missing one fails the task before sending. (templated)
    :param smtp_conn_id: Airflow connection of type ``smtp`` (default ``smtp_default``).
    :param from_email: Sender; defaults to the connection's ``from_email`` extra. (templated)

    Returns (XCom) ``{"message_id", "to", "subject", "template"}``.

    .. code-block:: python

        SendTemplatedEmailOperator(
            task_id="send_welcome_email",
            template="welcome",
            to="{{ params.email }}",
            variables={"first_name": "{{ params.first_name }}"},
        )
    """

    template_fields: Sequence[str] = ("template", "to", "variables", "from_email")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        template: str,
        to: str | list[str],
        variables: dict[str, Any] | None = None,
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template = template
        self.to = to
        self.variables = variables or {}
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        recipients = [self.to] if isinstance(self.to, str) else list(self.to)
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise ValueError(f"'to' must be one or more email addresses, got {self.to!r}")
        rendered = render_email(self.template, self.variables)
        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as hook:
            domain = (self.from_email or hook.from_email or "officeflow.local").rpartition("@")[2]
            message_id = f"<{uuid.uuid4()}@{domain}>"
            hook.send_email_smtp(
                to=recipients,
                subject=rendered.subject,
                html_content=rendered.html,
                from_email=self.from_email,
                custom_headers={"Message-ID": message_id, "X-OfficeFlow-Template": self.template},
            )
        self.log.info("Sent %r to %d recipient(s), Message-ID %s", self.template, len(recipients), message_id)
        return {"message_id": message_id, "to": recipients, "subject": rendered.subject,
                "template": self.template}
