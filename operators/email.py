"""Email: OfficeFlow templates sent through SMTP, Amazon SES v2 or SendGrid, with delivery tracking.

- **Templates** (``include/templates/email/``, rendered by :mod:`include.officeflow.email_rendering`):
  ``<name>.subject.j2``, ``<name>.html.j2`` and ``<name>.txt.j2``, StrictUndefined (a variable the
  template needs but the caller did not pass fails the task before anything is sent), the
  organization's branding as ``brand`` (:mod:`include.officeflow.branding`).
- **Providers** are hooks (:mod:`operators.hooks.email`), chosen by the Airflow connection's type:
  ``smtp``, ``aws`` (SES v2), ``sendgrid`` or ``http`` (SendGrid). They raise
  :mod:`include.officeflow.errors` classes: a message every recipient's provider refused for good fails
  the task without retries; anything else fails it for Airflow's retry.
- **Tracking and idempotency**: every recipient gets its own message and its own row in the store's
  ``email_deliveries``, claimed *before* the provider call with a key derived from dag/run/task/map
  index/recipient/template (see :mod:`include.officeflow.email_tracking`). A retried task does not send
  again what the provider already accepted. A try that died after claiming leaves the outcome unknown:
  the retry sends again (at least once). Over SMTP the Message-ID is derived from the delivery id, so
  the resend carries the same Message-ID and receivers deduplicate it; SES and SendGrid have no
  idempotency key on their send APIs, so a resend there can be a duplicate — chosen over losing the
  email, and logged as a warning.
- **Domain events**: recording a send writes ``com.officeflow.email.sent`` to the outbox in the same
  transaction (:func:`include.officeflow.email_tracking.email_event`; organization: the delivery's, correlation
  id: the run's).
- **Suppressions**: an address on the suppression list (hard bounce, complaint, admin) is skipped
  with a log line and its delivery is marked ``suppressed``.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import uuid
from collections.abc import Sequence
from contextlib import closing
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.officeflow.addresses import is_email_address
from include.officeflow.branding import DEFAULT_ORGANIZATION, brand_for
from include.officeflow.errors import ServiceError, Unavailable
from include.officeflow.events.values import run_ids
from operators.base import ServiceOperator, for_airflow
from operators.hooks.email import Attachment, EmailSender, OutgoingEmail, sender_for

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.officeflow.email_rendering import RenderedEmail

#: Largest total attachment size per email (SES v2 allows 40 MB and SendGrid 30 MB per message,
#: including base64 overhead).
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


def load_attachment(spec: dict[str, Any], aws_conn_id: str | None = None,
                    store_url: str | None = None) -> Attachment:
    """An attachment from ``{"filename", "content_type"?, and one of "path", "uri" (s3://bucket/key,
    read with the S3 hook), "content_base64" (e.g. from XCom), "document_id" (a stored OfficeFlow
    document, e.g. a ``RenderDocumentOperator`` result, with an optional "version"; its checksum is
    verified)}``."""
    if not isinstance(spec, dict):
        raise ValueError(f"an attachment must be a mapping, got {type(spec).__name__}")
    sources = [k for k in ("path", "uri", "content_base64", "document_id") if spec.get(k)]
    if len(sources) != 1:
        raise ValueError(f"attachment {spec.get('filename')!r} needs exactly one of path, uri, content_base64, "
                         "document_id")
    source = sources[0]
    if source == "document_id":
        from include.officeflow.documents import read_file

        version = spec.get("version")
        data, default_name, stored_type = read_file(str(spec["document_id"]),
                                                    int(version) if version not in (None, "") else None,
                                                    store_url=store_url)
        spec = {"content_type": stored_type, **spec}
    elif source == "path":
        path = Path(spec["path"])
        data = path.read_bytes()
        default_name = path.name
    elif source == "uri":
        uri = str(spec["uri"])
        if not uri.startswith("s3://"):
            raise ValueError(f"attachment uri must be s3://bucket/key, got {uri!r}")
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket, key = S3Hook.parse_s3_url(uri)
        hook = S3Hook(aws_conn_id=spec.get("aws_conn_id") or aws_conn_id or "aws_default")
        data = hook.get_key(key, bucket_name=bucket).get()["Body"].read()
        default_name = key.rsplit("/", 1)[-1]
    else:
        try:
            data = base64.b64decode(spec["content_base64"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValueError(f"attachment {spec.get('filename')!r}: content_base64 is not valid base64") from None
        default_name = ""
    filename = str(spec.get("filename") or default_name)
    if not filename or "/" in filename or "\\" in filename or "\n" in filename:
        raise ValueError(f"attachment needs a plain file name, got {filename!r}")
    content_type = str(spec.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream")
    if content_type.count("/") != 1:
        raise ValueError(f"attachment {filename!r}: bad content_type {content_type!r}")
    return Attachment(filename=filename, content_type=content_type, data=data)


def task_identity(context: Any) -> tuple[str, str, str, int] | None:
    """``(dag_id, run_id, task_id, map_index)`` of the running task, from ``context["ti"]`` (or
    ``task_instance`` / ``dag_run``); None outside a task (then there is nothing to be idempotent across)."""
    ti = context.get("ti") or context.get("task_instance") if context else None
    if ti is not None and getattr(ti, "run_id", None):
        map_index = getattr(ti, "map_index", -1)
        return str(ti.dag_id), str(ti.run_id), str(ti.task_id), int(-1 if map_index is None else map_index)
    return None


class SendTemplatedEmailOperator(ServiceOperator):
    """Render an OfficeFlow email template and send it, once per recipient, through SMTP, SES or SendGrid.

    :param template: Template name under ``include/templates/email/`` (e.g. ``welcome``). (templated)
    :param to: Recipient address or list of addresses; each gets its own message. (templated)
    :param variables: Values the template uses; a missing one fails the task before sending. (templated)
    :param conn_id: Airflow connection: type ``smtp``, ``aws`` (SES v2) or ``sendgrid``/``http``
        (SendGrid). ``smtp_conn_id`` is accepted as an alias (default ``smtp_default``).
    :param from_email: Sender; defaults to the organization's ``from_email`` in brands.yaml, then the
        connection's ``from_email`` extra. (templated)
    :param organization: Whose branding to use (brands.yaml) and recorded on the deliveries. (templated)
    :param attachments: List of ``{"filename"?, "content_type"?, "path" | "uri" (s3://…) |
        "content_base64" | "document_id" (+ "version"?)}``; e.g. a ``RenderDocumentOperator`` result. (templated)
    :param attachments_aws_conn_id: AWS connection for ``s3://`` attachments (default ``aws_default``).
    :param reply_to: Reply-To address. (templated)
    :param store_conn_id: Connection of the OfficeFlow store (``officeflow_db``; else ``OFFICEFLOW_DB_URL``).

    Returns (XCom) ``{"message_id", "to", "subject", "template", "deliveries": [{"recipient",
    "delivery_id", "status", "message_id"}]}`` (``message_id`` is the first recipient's).

    .. code-block:: python

        SendTemplatedEmailOperator(
            task_id="send_welcome_email",
            template="welcome",
            to="{{ params.email }}",
            variables={"first_name": "{{ params.first_name }}"},
            conn_id="officeflow_ses",
        )
    """

    template_fields: Sequence[str] = ("template", "to", "variables", "from_email", "organization", "attachments",
                                      "reply_to")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        template: str,
        to: str | list[str],
        variables: dict[str, Any] | None = None,
        conn_id: str | None = None,
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        organization: str = DEFAULT_ORGANIZATION,
        attachments: list[dict[str, Any]] | None = None,
        attachments_aws_conn_id: str | None = None,
        reply_to: str | None = None,
        store_conn_id: str = "officeflow_db",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template = template
        self.to = to
        self.variables = variables or {}
        self.conn_id = conn_id or smtp_conn_id
        self.smtp_conn_id = self.conn_id
        self.from_email = from_email
        self.organization = organization
        self.attachments = attachments or []
        self.attachments_aws_conn_id = attachments_aws_conn_id
        self.reply_to = reply_to
        self.store_conn_id = store_conn_id

    @cached_property
    def hook(self) -> EmailSender:
        return sender_for(self.conn_id)

    @cached_property
    def store_url(self) -> str | None:
        from include.officeflow.store import task_store_url

        return task_store_url(self.store_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from include.officeflow.email_rendering import render_email

        recipients = self._recipients()
        organization = self.organization or DEFAULT_ORGANIZATION
        rendered = render_email(self.template, self.variables, organization, store_url=self.store_url)
        attachments = self._attachments()
        sender = self._sender(organization)
        identity = task_identity(context)
        correlation_id = run_ids(context)[1]
        if identity is None:
            self.log.warning("No task instance in the context: deliveries are not protected against resends")
        with closing(self.hook):
            outcomes = [self._deliver(recipient, rendered, sender, attachments, identity, organization,
                                      correlation_id) for recipient in recipients]
        self._raise_for_failures([(entry["recipient"], error) for entry, error in outcomes if error is not None])
        results = [entry for entry, _ in outcomes]
        first_id = next((r["message_id"] for r in results if r["message_id"]), None)
        return {"message_id": first_id, "to": recipients, "subject": rendered.subject, "template": self.template,
                "deliveries": results}

    def _recipients(self) -> list[str]:
        recipients = [self.to] if isinstance(self.to, str) else list(self.to or [])
        if not recipients or not all(isinstance(r, str) and is_email_address(r.strip()) for r in recipients):
            raise ValueError(f"'to' must be one or more email addresses, got {self.to!r}")
        unique: dict[str, str] = {}
        for r in recipients:
            unique.setdefault(r.strip().lower(), r.strip())
        return list(unique.values())

    def _attachments(self) -> list[Attachment]:
        attachments = [load_attachment(spec, self.attachments_aws_conn_id, self.store_url) for spec in self.attachments]
        if sum(len(a.data) for a in attachments) > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachments exceed {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
        return attachments

    def _sender(self, organization: str) -> str:
        """The task's ``from_email``, else the organization's, else the connection's."""
        sender = self.from_email or brand_for(organization).get("from_email") or self.hook.default_sender()
        if not sender or not is_email_address(parseaddr(sender)[1]):
            raise ValueError(f"no valid sender: set from_email, the organization's from_email in brands.yaml or "
                             f"the connection's from_email extra (got {sender!r})")
        return str(sender)

    def _deliver(self, recipient: str, rendered: RenderedEmail, sender: str, attachments: list[Attachment],
                 identity: tuple[str, str, str, int] | None, organization: str,
                 correlation_id: str | None = None) -> tuple[dict[str, Any], ServiceError | None]:
        """Claim the delivery, then send unless an earlier try did or the address is suppressed:
        (the delivery's entry for XCom, the send's error or None). Recording the send writes
        ``com.officeflow.email.sent`` with the run's ``correlation_id``."""
        from include.officeflow import email_tracking as tracking

        provider = self.hook.provider
        if identity is not None:
            dag_id, run_id, task_id, map_index = identity
            key = tracking.idempotency_key(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index,
                                           recipient=recipient, template=self.template)
        else:
            dag_id = run_id = task_id = None  # type: ignore[assignment]
            key = uuid.uuid4().hex + uuid.uuid4().hex
        claimed = tracking.claim(self.store_url, key=key, recipient=recipient, template=self.template,
                                 subject=rendered.subject, provider=provider, organization_id=organization,
                                 dag_id=dag_id, run_id=run_id, task_id=task_id)
        entry = {"recipient": recipient, "delivery_id": claimed.delivery_id}
        if claimed.action == "done":
            self.log.info("Already sent %r to %s in an earlier try (status %s, message id %s); not resending",
                          self.template, recipient, claimed.status, claimed.message_id)
            return {**entry, "status": claimed.status, "message_id": claimed.message_id}, None
        if claimed.action == "suppressed":
            self.log.warning("Skipping %s: the address is on the suppression list (%r not sent)", recipient,
                             self.template)
            return {**entry, "status": "suppressed", "message_id": None}, None
        if claimed.resumed:
            self.log.warning("An earlier try of this task claimed %r to %s and its outcome is unknown; sending "
                             "again (%s)", self.template, recipient,
                             "same Message-ID" if self.hook.stable_message_id else "may duplicate")
        email = OutgoingEmail(sender=sender, recipient=recipient, subject=rendered.subject, html=rendered.html,
                              text=rendered.text, delivery_id=claimed.delivery_id, template=self.template,
                              attachments=attachments, reply_to=self.reply_to)
        try:
            message_id = self.hook.send(email)
        except Exception as exc:  # recorded on the delivery whatever it is; classified below
            error = exc if isinstance(exc, ServiceError) else Unavailable(f"{type(exc).__name__}: {exc}")
            if error is not exc:
                error.__cause__ = exc
            tracking.mark_failed(self.store_url, claimed.delivery_id, f"{type(error).__name__}: {error}")
            self.log.error("Sending %r to %s through %s failed: %s", self.template, recipient, provider, error)
            return {**entry, "status": "failed", "message_id": None}, error
        tracking.mark_sent(self.store_url, claimed.delivery_id, message_id, correlation_id=correlation_id)
        self.log.info("Sent %r to %s through %s, message id %s", self.template, recipient, provider, message_id)
        return {**entry, "status": "sent", "message_id": message_id}, None

    def _raise_for_failures(self, errors: list[tuple[str, ServiceError]]) -> None:
        """Fail for good when every failure is permanent; otherwise for Airflow's retry, which sends only to
        the recipients that failed (the others' deliveries are recorded)."""
        if not errors:
            return
        failed = ", ".join(recipient for recipient, _ in errors)
        retryable = [error for _, error in errors if error.retryable]
        provider = self.hook.provider
        if not retryable:
            first = errors[0][1]
            raise for_airflow(first, f"{provider} refused {self.template!r} for {failed}: {first}") from first
        raise for_airflow(retryable[0], f"sending {self.template!r} through {provider} failed for {failed}: "
                                        f"{retryable[0]}; a retry sends only to them") from retryable[0]
