"""Slack messages from templates: ``include/templates/slack/<name>.json.j2`` rendered to Block Kit.

A template renders a JSON object ``{"text": fallback, "blocks": [...]}`` in the ``slack`` environment of
:func:`include.officeflow.templating.environment` (StrictUndefined; every ``{{ }}`` value escaped for
mrkdwn and JSON, ``| raw`` for URLs).
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import TemplateError

from include.officeflow.errors import InvalidInput
from include.officeflow.templating import environment

MAX_BLOCKS = 50  # Slack's limit per message


class SlackTemplateError(InvalidInput):
    """A template that is missing, needs a variable the caller did not pass, or renders no valid message."""


def render_message(template: str, variables: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """``include/templates/slack/<template>.json.j2`` → (fallback text, blocks)."""
    try:
        rendered = environment("slack").get_template(f"{template}.json.j2").render(**variables)
    except TemplateError as exc:
        raise SlackTemplateError(f"Slack template {template!r}: {exc.__class__.__name__}: {exc}") from exc
    try:
        message = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise SlackTemplateError(f"Slack template {template!r} did not render to JSON: {exc}") from exc
    text, blocks = message.get("text"), message.get("blocks", [])
    if not isinstance(text, str) or not text.strip():
        raise SlackTemplateError(f"Slack template {template!r} has no fallback \"text\"")
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS or not all(isinstance(b, dict) and b.get("type")
                                                                           for b in blocks):
        raise SlackTemplateError(f"Slack template {template!r}: \"blocks\" must be a list of ≤ 50 blocks")
    return text, blocks
