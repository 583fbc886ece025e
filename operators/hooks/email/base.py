"""What every email provider hook offers the email operator: :class:`EmailSender`, and the message it sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class OutgoingEmail:
    """One message to one recipient. ``delivery_id`` and ``template`` travel with it (headers, tags or
    custom args) so the provider's bounce and delivery events find the delivery again."""

    sender: str
    recipient: str
    subject: str
    html: str
    text: str
    delivery_id: str
    template: str
    attachments: list[Attachment] = field(default_factory=list)
    reply_to: str | None = None


class EmailSender(Protocol):
    """An email provider hook (SMTP, SES, SendGrid).

    ``send`` answers the provider's message id, or raises an :mod:`include.officeflow.errors` class:
    permanent (``retryable = False``: refused message, bad credentials) or worth a later try (throttled,
    unreachable). ``close`` ends what ``send`` opened (an SMTP session serves every recipient of a task).
    """

    #: The provider's name, recorded on each delivery (``smtp``, ``ses``, ``sendgrid``).
    provider: ClassVar[str]
    #: True when a resend of the same delivery carries the same message id (receivers deduplicate it).
    stable_message_id: ClassVar[bool]

    def default_sender(self) -> str | None:
        """The connection's sender (``from_email``), used when neither the task nor the brand names one."""

    def send(self, email: OutgoingEmail) -> str:
        """Send one message; the provider's message id."""

    def close(self) -> None:
        """Release what ``send`` opened."""
