"""Amazon SNS HTTP(S) deliveries: message parsing, signature verification, subscription confirmation.

Every message's signature is verified (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA) with the
certificate at ``SigningCertURL``, which must match ``OFFICEFLOW_SNS_TRUSTED_URL_PATTERN`` (Amazon's
SNS hosts over https by default); certificates are cached per URL. ``SubscriptionConfirmation`` is
confirmed by fetching its ``SubscribeURL`` (same pattern). ``OFFICEFLOW_SES_SNS_TOPIC_ARNS`` limits
the accepted topics.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import httpx

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.email.errors import EventRejected, InvalidBody

MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
SNS_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SNS_SUBSCRIPTION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched (a network error: the sender should retry)."""


class ConfirmationFailed(Exception):
    """SNS did not accept the subscription confirmation."""


def parse_message(body: bytes, header_type: str | None) -> dict[str, Any]:
    """The SNS message in ``body``; ``header_type`` is ``x-amz-sns-message-type``, which must agree."""
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidBody("body is not an SNS JSON message") from None
    if not isinstance(message, dict) or message.get("Type") not in MESSAGE_TYPES:
        raise InvalidBody("body is not an SNS message (Type missing or unknown)")
    if header_type and header_type != message["Type"]:
        raise InvalidBody("x-amz-sns-message-type does not match the message Type")
    return message


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical string SNS signs: ``Key\\nValue\\n`` for the type's keys, in order, skipping absent ones."""
    keys = SNS_NOTIFICATION_KEYS if message.get("Type") == "Notification" else SNS_SUBSCRIPTION_KEYS
    return "".join(f"{k}\n{message[k]}\n" for k in keys if message.get(k) is not None).encode()


class CertificateCache:
    """SNS signing certificates by URL (a few per region; they rotate rarely)."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    async def get(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            if url in self._items:
                self._items.move_to_end(url)
                return self._items[url]
        try:
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(type(exc).__name__) from None
        if response.status_code != 200:
            raise EventRejected(f"signing certificate answered HTTP {response.status_code}")
        try:
            cert = x509.load_pem_x509_certificate(response.content)
        except ValueError:
            raise EventRejected("signing certificate is not a PEM X.509 certificate") from None
        with self._lock:
            self._items[url] = cert
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return cert


certificates = CertificateCache()


def _trusted_url(url: Any) -> bool:
    return isinstance(url, str) and bool(re.match(get_settings().sns_trusted_url_pattern, url))


async def verify_sns(message: dict[str, Any]) -> None:
    """Raise :class:`EventRejected` unless ``message`` carries a valid SNS signature
    (:class:`CertificateUnavailable` if its certificate cannot be fetched)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(message.get("SignatureVersion", ""))
    if version not in ("1", "2"):
        raise EventRejected(f"unsupported SignatureVersion {version!r}")
    cert_url = message.get("SigningCertURL")
    if not _trusted_url(cert_url):
        raise EventRejected(f"SigningCertURL {cert_url!r} is not a trusted SNS certificate URL")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected("Signature is not base64") from None
    cert = await certificates.get(str(cert_url))
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EventRejected("signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise EventRejected("signing certificate has no RSA key")
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS SignatureVersion 1
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise EventRejected("signature does not match the message") from None


def check_topic(message: dict[str, Any]) -> None:
    """Raise :class:`EventRejected` if ``OFFICEFLOW_SES_SNS_TOPIC_ARNS`` is set and lacks the message's topic."""
    topics = get_settings().ses_sns_topic_arns
    if topics and message.get("TopicArn") not in topics:
        raise EventRejected(f"topic {message.get('TopicArn')!r} is not configured")


async def confirm_subscription(message: dict[str, Any]) -> None:
    """Confirm a verified ``SubscriptionConfirmation`` by fetching its ``SubscribeURL``."""
    url = message.get("SubscribeURL")
    if not _trusted_url(url):
        raise EventRejected("SubscribeURL is not a trusted SNS URL")
    try:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
            confirm = await client.get(str(url))
    except httpx.HTTPError as exc:
        raise ConfirmationFailed(f"confirming the subscription failed: {type(exc).__name__}") from None
    if confirm.status_code != 200:
        raise ConfirmationFailed(f"SNS answered {confirm.status_code} to the confirmation")


def ses_notification(message: dict[str, Any]) -> dict[str, Any]:
    """The SES notification a verified SNS ``Notification`` carries in its ``Message``."""
    try:
        ses = json.loads(message.get("Message") or "")
    except json.JSONDecodeError:
        raise InvalidBody("the SNS Message is not an SES notification (not JSON)") from None
    if not isinstance(ses, dict):
        raise InvalidBody("the SNS Message is not an SES notification")
    return ses
