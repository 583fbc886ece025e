"""Amazon SES v2 ``SendEmail`` through providers-amazon's :class:`AwsBaseHook` (boto3 ``sesv2``).

Connection type ``aws`` (credentials as the amazon provider reads them; ``extra``: ``region_name``,
``endpoint_url`` for a local endpoint, ``from_email``, ``configuration_set``).

Failures (botocore ``ClientError`` codes): throttling (429, ``TooManyRequestsException``) ->
:class:`RateLimited`; bad or missing credentials (401/403, ``UnrecognizedClientException``,
``InvalidSignatureException`` …) -> :class:`AuthError`; ``NotFoundException`` -> :class:`NotFound`;
5xx and network errors -> :class:`Unavailable`; every other 4xx (``MessageRejected``,
``BadRequestException`` …) -> :class:`InvalidInput`. botocore's own retry mode retries first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from include.officeflow.errors import AuthError, ServiceError, Unavailable, for_status
from operators.hooks.email.base import OutgoingEmail

THROTTLING_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})


class SesEmailHook(AwsBaseHook):
    """An :class:`~operators.hooks.email.base.EmailSender` over SES v2 ``SendEmail`` (Simple content,
    attachments inline); OfficeFlow's delivery id and template travel as headers and ``EmailTags``.

    :param aws_conn_id: The AWS connection. Default ``aws_default``.
    :param kwargs: Everything else :class:`AwsBaseHook` accepts (``region_name``, ``config`` …).
    """

    provider: ClassVar[str] = "ses"
    stable_message_id: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sesv2"
        super().__init__(*args, **kwargs)

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.conn_config.extra_config)

    def default_sender(self) -> str | None:
        return self.extra.get("from_email")

    def request(self, email: OutgoingEmail) -> dict[str, Any]:
        """The ``SendEmail`` request of one message."""
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
        return request

    def send(self, email: OutgoingEmail) -> str:
        try:
            response = self.conn.send_email(**self.request(email))
        except (ClientError, BotoCoreError) as exc:
            raise self.error_for(exc) from exc
        return str(response["MessageId"])

    def error_for(self, exc: ClientError | BotoCoreError) -> ServiceError:
        """The :mod:`include.officeflow.errors` class of an SES failure."""
        hint = f" (check the connection {self.aws_conn_id!r})"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return AuthError(f"SES {type(exc).__name__}: {exc}{hint}")
        if isinstance(exc, BotoCoreError):
            return Unavailable(f"SES {type(exc).__name__}: {exc}")  # endpoint unreachable, timeouts
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"SES {code}: {error.get('Message', exc)}"
        return for_status(429 if code in THROTTLING_CODES else status, text, auth_hint=hint)

    def close(self) -> None:
        """Nothing to release: each ``SendEmail`` is one HTTPS request."""
