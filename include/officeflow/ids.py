"""Random ids: a version 4 UUID as its 36-character text, the form every OfficeFlow id takes (inbox and outbox rows,
correlation ids, CloudEvents ids).

``str(uuid.uuid4())`` builds and validates a ``UUID`` object only to format it again; a delivery makes three ids,
and that was ~3% of an edge worker's CPU (docs/BENCHMARKS.md, fifth round). This makes the same text from the same
16 random bytes (``os.urandom``) with the version and variant bits set as RFC 9562 says, in under half the time.
"""

from __future__ import annotations

import os


def random_uuid() -> str:
    """A new random (version 4) UUID, lower-case hex with dashes, as ``str(uuid.uuid4())``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant: RFC 4122 / 9562
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
