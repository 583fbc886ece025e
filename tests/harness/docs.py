"""Commands from the docs, taken verbatim so a test runs exactly what a reader would."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bash_blocks(doc: str, heading: str) -> list[str]:
    """The ```bash blocks of one section (from ``heading`` to the next heading of the same or a higher level)."""
    text = (ROOT / doc).read_text()
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2:]
    end = re.search(rf"\n#{{1,{level}}} ", rest)
    section = rest[: end.start()] if end else rest
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def bash_block_with(doc: str, fragment: str) -> str:
    """The first ```bash block of ``doc`` that holds ``fragment``."""
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / doc).read_text(), flags=re.S):
        if fragment in block:
            return block
    raise AssertionError(f"{doc} has no documented command with {fragment!r}")
