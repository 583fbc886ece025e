"""The documents package's errors: bad input or a failed check, and storage that cannot share."""

from __future__ import annotations


class DocumentError(ValueError):
    """Bad input or a failed integrity check; nothing was recorded."""


class SharingUnavailable(DocumentError):
    """The version's storage cannot produce share links (local dev-mode folder)."""
