"""Jinja environments for OfficeFlow's own templates (email, documents, Slack).

Strict: a variable the template uses but the caller did not supply is an error before anything
is sent, never an empty string in a new hire's inbox.

Two output styles, by kind:

- ``email``, ``documents``: HTML templates (``*.html.j2``) auto-escaped for HTML, text ones not.
- ``slack``: Block Kit messages written as JSON (``<name>.json.j2``). Every ``{{ }}`` output is
  escaped for Slack's mrkdwn (``&``, ``<``, ``>``, as Slack requires for user text) and then as the
  inside of a JSON string, so a value can neither break the JSON nor inject a link or mention;
  ``{{ url | raw }}`` skips the mrkdwn step (URLs in ``url`` fields).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
#: Kinds whose templates render JSON documents (see the module docstring).
JSON_KINDS = frozenset({"slack"})


class Raw(str):
    """A value a JSON template inserts without mrkdwn escaping: ``{{ x | raw }}``."""


def json_string_value(value: object) -> str:
    """``finalize`` of the JSON kinds: mrkdwn-escaped (unless :class:`Raw`), then JSON-string-escaped."""
    if value is None:
        return ""
    text = str(value)
    if not isinstance(value, Raw):
        text = mrkdwn_escape(text)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def mrkdwn_escape(text: str) -> str:
    """Slack's escaping of user text in mrkdwn: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@lru_cache(maxsize=8)
def environment(kind: str) -> Environment:
    """The environment for ``include/templates/<kind>/``; HTML templates are auto-escaped, JSON kinds'
    outputs are escaped as JSON string contents."""
    loader = FileSystemLoader(str(TEMPLATES_DIR / kind))
    if kind in JSON_KINDS:
        env = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,  # noqa: S701
                          finalize=json_string_value)  # every output is escaped by finalize instead
        env.filters["raw"] = lambda value: Raw(str(value))
        return env
    return Environment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def blank_for_none(value: object) -> object:
    """Jinja ``finalize`` of OfficeFlow's DAGs: an optional run param left empty is ``None``, and
    ``"{{ params.last_name }}"`` must render as an empty string, not ``"None"``."""
    return "" if value is None else value
