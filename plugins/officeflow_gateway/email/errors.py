"""What a provider callback can be refused for: an unverified delivery (403) or a malformed body (400)."""

from __future__ import annotations


class EventRejected(Exception):
    """A provider delivery that failed verification (answered 403, audited)."""


class InvalidBody(ValueError):
    """A body that is not what the provider sends (answered 400)."""
