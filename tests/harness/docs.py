"""Commands from the docs, taken verbatim so a test runs exactly what a reader would."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def code_blocks(doc: str, language: str) -> list[str]:
    """Every ```<language> block of ``doc`` (a path from the repository's root), in order."""
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / doc).read_text(), flags=re.S)


def bash_blocks(doc: str, heading: str) -> list[str]:
    """The ```bash blocks of one section (from ``heading`` to the next heading of the same or a higher level; a
    ``#`` line inside a code block is no heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = (ROOT / doc).read_text().splitlines(keepends=True)
    start = lines.index(f"{heading}\n") + 1
    section, fenced = [], False
    for line in lines[start:]:
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        fenced ^= line.startswith("```")
        section.append(line)
    return re.findall(r"```bash\n(.*?)```", "".join(section), flags=re.S)


def bash_block_with(doc: str, fragment: str) -> str:
    """The first ```bash block of ``doc`` that holds ``fragment``."""
    for block in code_blocks(doc, "bash"):
        if fragment in block:
            return block
    raise AssertionError(f"{doc} has no documented command with {fragment!r}")
