"""Jinja environments for OfficeFlow's own templates (email, documents, Slack).

Strict: a variable the template uses but the caller did not supply is an error before anything
is sent, never an empty string in a new hire's inbox.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=8)
def environment(kind: str) -> Environment:
    """The environment for ``include/templates/<kind>/``; HTML templates are auto-escaped."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR / kind)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def blank_for_none(value: object) -> object:
    """Jinja ``finalize`` of OfficeFlow's DAGs: an optional run param left empty is ``None``, and
    ``"{{ params.last_name }}"`` must render as an empty string, not ``"None"``."""
    return "" if value is None else value
