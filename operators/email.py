"""Email operators: OfficeFlow templates sent through SMTP, Amazon SES v2 or SendGrid, with tracking.

- **Templates** (``include/templates/email/``): ``<name>.subject.j2`` (one line), ``<name>.html.j2`` and
  ``<name>.txt.j2`` (the plain-text part), extending the shared ``layout.*.j2``. Jinja with
  StrictUndefined: a variable the template needs but the caller did not pass fails the task before
  anything is sent. Templates see the organization's branding as ``brand`` (``brands.yaml``).
- **Providers**, chosen by the Airflow connection's type: ``smtp`` (providers-smtp's SmtpHook),
  ``aws`` (SES v2 ``SendEmail`` through providers-amazon's AwsBaseHook / boto3; ``endpoint_url`` and
  ``region_name`` in the extra), ``sendgrid`` or ``http`` (SendGrid v3 ``mail/send`` with the official
  ``sendgrid`` client; host = API base URL, password = API key).
- **Tracking and idempotency**: every recipient gets its own message and its own row in the store's
  ``email_deliveries``, claimed *before* the provider call with a key derived from dag/run/task/map
  index/recipient/template (see :mod:`include.officeflow.email_tracking`). A retried task does not send
  again what the provider already accepted. A try that died after claiming leaves the outcome unknown:
  the retry sends again (at least once). Over SMTP the Message-ID is derived from the delivery id, so
  the resend carries the same Message-ID and receivers deduplicate it; SES and SendGrid have no
  idempotency key on their send APIs, so a resend there can be a duplicate — chosen over losing the
  email, and logged as a warning.
- **Suppressions**: an address on the suppression list (hard bounce, complaint, admin) is skipped
  with a log line and its delivery is marked ``suppressed``.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Largest total attachment size per email (SES v2 allows 40 MB and SendGrid 30 MB per message,
#: including base64 overhead).
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
DEFAULT_ORGANIZATION = "default"


# --- branding and rendering ---------------------------------------------------------------------

def _brands_file() -> Path:
    from include.officeflow.settings import get_settings
    from include.officeflow.templating import TEMPLATES_DIR

    return get_settings().email_brands_file or TEMPLATES_DIR / "email" / "brands.yaml"


@lru_cache(maxsize=8)
def _load_brands(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) and v.get("name") for v in data.values()):
        raise ValueError(f"{path}: expected a mapping organization -> {{name, color, ...}}")
    return data


def brand_for(organization: str | None) -> dict[str, Any]:
    """The branding of ``organization`` (``default`` for unknown ones), with every key present."""
    path = _brands_file()
    brands = _load_brands(str(path), path.stat().st_mtime) if path.exists() else {}
    base = {"name": "OfficeFlow", "color": "#2563eb", "logo_url": "", "sign_off": "People Operations",
            "footer": "Sent by People Operations via OfficeFlow.", "from_email": ""}
    chosen = brands.get(organization or DEFAULT_ORGANIZATION) or brands.get(DEFAULT_ORGANIZATION) or {}
    return {**base, **brands.get(DEFAULT_ORGANIZATION, {}), **chosen}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str = ""


def render_email(template: str, variables: dict[str, Any], organization: str | None = None) -> RenderedEmail:
    """Render ``<template>.subject.j2``, ``<template>.html.j2`` and ``<template>.txt.j2``.

    The organization's branding is available as ``brand`` (a caller's own ``brand`` variable wins).
    Raises ``jinja2.UndefinedError`` when the template needs a variable that is missing, and
    ``jinja2.TemplateNotFound`` for an unknown template (a template without a ``.txt.j2`` part gets
    no plain-text part).
    """
    import jinja2

    from include.officeflow.templating import environment

    env = environment("email")
    values = {"brand": brand_for(organization), **variables}
    subject = env.get_template(f"{template}.subject.j2").render(**values).strip()
    if not subject or "\n" in subject:
        raise ValueError(f"template {template!r} must render a one-line, non-empty subject")
    html = env.get_template(f"{template}.html.j2").render(**values)
    try:
        text_template = env.get_template(f"{template}.txt.j2")
    except jinja2.TemplateNotFound:
        text = ""
    else:
        text = text_template.render(**values).strip() + "\n"
    return RenderedEmail(subject=subject, html=html, text=text)


# --- attachments --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


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


# --- providers ----------------------------------------------------------------------------------

@dataclass
class OutgoingEmail:
    """One message to one recipient."""

    sender: str
    recipient: str
    subject: str
    html: str
    text: str
    delivery_id: str
    template: str
    attachments: list[Attachment] = field(default_factory=list)
    reply_to: str | None = None


class PermanentSendError(Exception):
    """The provider refused the message for a reason a retry will not fix (bad request, auth)."""


class SmtpProvider:
    """SMTP through providers-smtp's :class:`SmtpHook` (TLS, login, OAuth2 as the connection says)."""

    name = "smtp"

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.hook = SmtpHook(smtp_conn_id=conn_id)
        self._open = False

    def default_sender(self) -> str | None:
        if self.hook.smtp_connection is None:
            self.hook.smtp_connection = self.hook.get_connection(self.hook.smtp_conn_id)
        return self.hook.from_email

    def __enter__(self) -> SmtpProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open:
            self.hook.__exit__(None, None, None)
            self._open = False

    @staticmethod
    def message_id(delivery_id: str, sender: str) -> str:
        """Stable per delivery: a resend after a crashed try carries the same Message-ID."""
        return f"<{delivery_id}@{sender.rpartition('@')[2] or 'officeflow.local'}>"

    def send(self, email: OutgoingEmail) -> str:
        if not self._open:
            self.hook.get_conn()
            self._open = True
        message_id = self.message_id(email.delivery_id, email.sender)
        msg = EmailMessage()
        msg["Subject"] = email.subject
        msg["From"] = email.sender
        msg["To"] = email.recipient
        if email.reply_to:
            msg["Reply-To"] = email.reply_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = message_id
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
        # SmtpHook builds HTML-only messages; OfficeFlow's have a plain-text part and typed attachments,
        # so the message is sent on the hook's authenticated client.
        client: Any = self.hook._smtp_client  # smtplib.SMTP after get_conn()
        assert client is not None
        client.send_message(msg, from_addr=parseaddr(email.sender)[1], to_addrs=[email.recipient])
        return message_id


class SesProvider:
    """Amazon SES v2 ``SendEmail`` (Simple content, attachments inline) through AwsBaseHook's boto3 client."""

    name = "ses"

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        self.hook = AwsBaseHook(aws_conn_id=conn_id, client_type="sesv2")
        self.extra = self.hook.get_connection(conn_id).extra_dejson

    def default_sender(self) -> str | None:
        return self.extra.get("from_email")

    def __enter__(self) -> SesProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, email: OutgoingEmail) -> str:
        from botocore.exceptions import ClientError

        simple: dict[str, Any] = {
            "Subject": {"Data": email.subject, "Charset": "UTF-8"},
            "Body": {"Html": {"Data": email.html, "Charset": "UTF-8"}},
            "Headers": [{"Name": "X-OfficeFlow-Template", "Value": email.template},
                        {"Name": "X-OfficeFlow-Delivery", "Value": email.delivery_id}],
        }
        if email.text:
            simple["Body"]["Text"] = {"Data": email.text, "Charset": "UTF-8"}
        if email.attachments:
            simple["Attachments"] = [{"RawContent": a.data, "FileName": a.filename, "ContentType": a.content_type,
                                      "ContentDisposition": "ATTACHMENT", "ContentTransferEncoding": "BASE64"}
                                     for a in email.attachments]
        request: dict[str, Any] = {
            "FromEmailAddress": email.sender,
            "Destination": {"ToAddresses": [email.recipient]},
            "Content": {"Simple": simple},
            "EmailTags": [{"Name": "officeflow_template", "Value": email.template},
                          {"Name": "officeflow_delivery", "Value": email.delivery_id}],
        }
        if email.reply_to:
            request["ReplyToAddresses"] = [email.reply_to]
        if self.extra.get("configuration_set"):
            request["ConfigurationSetName"] = self.extra["configuration_set"]
        try:
            response = self.hook.conn.send_email(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            text = f"SES {error.get('Code', 'error')}: {error.get('Message', exc)}"
            if 400 <= status < 500 and status != 429 and error.get("Code") != "TooManyRequestsException":
                raise PermanentSendError(text) from exc
            raise
        return str(response["MessageId"])


class SendGridProvider:
    """SendGrid v3 ``POST /mail/send`` with the official ``sendgrid`` client."""

    name = "sendgrid"

    def __init__(self, conn_id: str) -> None:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        if not conn.password:
            raise ValueError(f"connection {conn_id!r} needs the SendGrid API key as its password")
        self.api_key = conn.password
        host = (conn.host or "https://api.sendgrid.com").rstrip("/")
        if "://" not in host:
            host = f"https://{host}"
        self.host = host
        self.extra = conn.extra_dejson

    def default_sender(self) -> str | None:
        return self.extra.get("from_email")

    def __enter__(self) -> SendGridProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, email: OutgoingEmail) -> str:
        from python_http_client.exceptions import HTTPError
        from sendgrid import SendGridAPIClient

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
        client = SendGridAPIClient(api_key=self.api_key, host=self.host)
        try:
            response = client.send(body)
        except HTTPError as exc:
            detail = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
            text = f"SendGrid {exc.status_code}: {detail[:500]}"
            if 400 <= int(exc.status_code) < 500 and int(exc.status_code) != 429:
                raise PermanentSendError(text) from exc
            raise RuntimeError(text) from exc
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            raise RuntimeError(f"SendGrid answered {response.status_code} without X-Message-Id")
        return str(message_id)


Provider = SmtpProvider | SesProvider | SendGridProvider


def provider_for(conn_id: str) -> Provider:
    """The provider the connection's type names: smtp, aws (SES v2), sendgrid / http (SendGrid)."""
    from airflow.sdk import BaseHook

    conn_type = (BaseHook.get_connection(conn_id).conn_type or "").lower()
    if conn_type == "smtp":
        return SmtpProvider(conn_id)
    if conn_type in ("aws", "amazon", "aws_ses"):
        return SesProvider(conn_id)
    if conn_type in ("sendgrid", "http", "https"):
        return SendGridProvider(conn_id)
    raise ValueError(f"connection {conn_id!r} has type {conn_type!r}; email needs smtp, aws (SES) or "
                     "sendgrid/http (SendGrid)")


# --- the operator -------------------------------------------------------------------------------

def task_identity(context: Any) -> tuple[str, str, str, int] | None:
    """``(dag_id, run_id, task_id, map_index)`` of the running task, from ``context["ti"]`` (or
    ``task_instance`` / ``dag_run``); None outside a task (then there is nothing to be idempotent across)."""
    ti = context.get("ti") or context.get("task_instance") if context else None
    if ti is not None and getattr(ti, "run_id", None):
        map_index = getattr(ti, "map_index", -1)
        return str(ti.dag_id), str(ti.run_id), str(ti.task_id), int(-1 if map_index is None else map_index)
    return None


class SendTemplatedEmailOperator(BaseOperator):
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

    def _recipients(self) -> list[str]:
        recipients = [self.to] if isinstance(self.to, str) else list(self.to or [])
        if not recipients or not all(isinstance(r, str) and _looks_like_address(r) for r in recipients):
            raise ValueError(f"'to' must be one or more email addresses, got {self.to!r}")
        unique: dict[str, str] = {}
        for r in recipients:
            unique.setdefault(r.strip().lower(), r.strip())
        return list(unique.values())

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.officeflow import email_tracking as tracking
        from include.officeflow.store import task_store_url

        recipients = self._recipients()
        organization = self.organization or DEFAULT_ORGANIZATION
        rendered = render_email(self.template, self.variables, organization)
        store = task_store_url(self.store_conn_id)
        attachments = [load_attachment(spec, self.attachments_aws_conn_id, store) for spec in self.attachments]
        if sum(len(a.data) for a in attachments) > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachments exceed {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
        provider = provider_for(self.conn_id)
        sender = self.from_email or brand_for(organization).get("from_email") or provider.default_sender()
        if not sender or not _looks_like_address(parseaddr(sender)[1]):
            raise ValueError(f"no valid sender: set from_email, the organization's from_email in brands.yaml or "
                             f"the connection's from_email extra (got {sender!r})")
        identity = task_identity(context)
        if identity is None:
            self.log.warning("No task instance in the context: deliveries are not protected against resends")

        results: list[dict[str, Any]] = []
        errors: list[tuple[str, Exception]] = []
        with provider:
            for recipient in recipients:
                if identity is not None:
                    dag_id, run_id, task_id, map_index = identity
                    key = tracking.idempotency_key(dag_id=dag_id, run_id=run_id, task_id=task_id,
                                                   map_index=map_index, recipient=recipient, template=self.template)
                else:
                    dag_id = run_id = task_id = None  # type: ignore[assignment]
                    key = uuid.uuid4().hex + uuid.uuid4().hex
                claimed = tracking.claim(store, key=key, recipient=recipient, template=self.template,
                                         subject=rendered.subject, provider=provider.name,
                                         organization_id=organization, dag_id=dag_id, run_id=run_id, task_id=task_id)
                entry = {"recipient": recipient, "delivery_id": claimed.delivery_id}
                if claimed.action == "done":
                    self.log.info("Already sent %r to %s in an earlier try (status %s, message id %s); not resending",
                                  self.template, recipient, claimed.status, claimed.message_id)
                    results.append({**entry, "status": claimed.status, "message_id": claimed.message_id})
                    continue
                if claimed.action == "suppressed":
                    self.log.warning("Skipping %s: the address is on the suppression list (%r not sent)",
                                     recipient, self.template)
                    results.append({**entry, "status": "suppressed", "message_id": None})
                    continue
                if claimed.resumed:
                    self.log.warning("An earlier try of this task claimed %r to %s and its outcome is unknown; "
                                     "sending again (%s)", self.template, recipient,
                                     "same Message-ID" if provider.name == "smtp" else "may duplicate")
                email = OutgoingEmail(sender=sender, recipient=recipient, subject=rendered.subject, html=rendered.html,
                                      text=rendered.text, delivery_id=claimed.delivery_id, template=self.template,
                                      attachments=attachments, reply_to=self.reply_to)
                try:
                    message_id = provider.send(email)
                except Exception as exc:
                    tracking.mark_failed(store, claimed.delivery_id, f"{type(exc).__name__}: {exc}")
                    self.log.error("Sending %r to %s through %s failed: %s", self.template, recipient,
                                   provider.name, exc)
                    errors.append((recipient, exc))
                    results.append({**entry, "status": "failed", "message_id": None})
                    continue
                tracking.mark_sent(store, claimed.delivery_id, message_id)
                self.log.info("Sent %r to %s through %s, message id %s", self.template, recipient, provider.name,
                              message_id)
                results.append({**entry, "status": "sent", "message_id": message_id})
        if errors:
            failed = ", ".join(r for r, _ in errors)
            first = errors[0][1]
            if all(isinstance(e, PermanentSendError) for _, e in errors):
                raise AirflowFailException(
                    f"{provider.name} refused {self.template!r} for {failed}: {first}") from first
            if len(errors) == 1:
                raise first
            raise RuntimeError(f"sending {self.template!r} failed for {failed}; a retry sends only to them") from first
        first_id = next((r["message_id"] for r in results if r["message_id"]), None)
        return {"message_id": first_id, "to": recipients, "subject": rendered.subject, "template": self.template,
                "deliveries": results}


def _looks_like_address(value: str) -> bool:
    local, _, domain = value.strip().rpartition("@")
    return bool(local) and "." in domain and " " not in value.strip() and "\n" not in value
