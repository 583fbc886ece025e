"""The one e-mail address check of OfficeFlow (workflow input, Slack lookups, email recipients and senders).

Deliberately loose: one ``@``, no whitespace, a dot in the domain. It catches typos and wrong fields
(a name where an address belongs) before any service is called; whether the mailbox exists is for
the mail server or the directory to say.
"""

from __future__ import annotations

import re

#: ``local@domain.tld``: exactly one ``@``, no whitespace, a dot in the domain (matched in full).
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def is_email_address(value: object) -> bool:
    """True when ``value`` is a string that is an e-mail address as a whole (no surrounding spaces)."""
    return isinstance(value, str) and EMAIL.fullmatch(value) is not None
