"""Random ids: a version 4 UUID as its 36-character text, the form every OfficeFlow id takes (inbox and outbox rows,
correlation ids, CloudEvents ids).

``str(uuid.uuid4())`` builds and validates a ``UUID`` object only to format it again; a delivery makes three ids,
and that was ~3% of an edge worker's CPU (docs/BENCHMARKS.md, fifth round). This makes the same text from 16 random
bytes of the kernel's CSPRNG with the version and variant bits set as RFC 9562 says. The bytes are read 4 KiB at a
time (256 ids a system call: one ``getrandom`` per id was ~3% more on this VM, sixth round) and the unread rest is
dropped in a forked child, so that parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

_CHUNK = 4096  # bytes read from the kernel at a time: 256 ids
_pool = bytearray()
_lock = threading.Lock()


def _random_16() -> bytearray:
    global _pool
    with _lock:
        if len(_pool) < 16:
            _pool = bytearray(os.urandom(_CHUNK))
        raw = _pool[-16:]
        del _pool[-16:]
    return raw


def _forget_after_fork() -> None:
    global _pool, _lock
    _pool = bytearray()
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_forget_after_fork)


def random_uuid() -> str:
    """A new random (version 4) UUID, lower-case hex with dashes, as ``str(uuid.uuid4())``."""
    raw = _random_16()
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant: RFC 4122 / 9562
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
