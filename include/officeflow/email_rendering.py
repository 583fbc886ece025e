"""OfficeFlow's email templates rendered to a subject, an HTML part and a plain-text part.

Templates live in ``include/templates/email/``: ``<name>.subject.j2`` (one line), ``<name>.html.j2``
and ``<name>.txt.j2`` (optional), extending the shared ``layout.*.j2``. The environment is
:func:`include.officeflow.templating.environment` (``StrictUndefined``; HTML auto-escaped, text not),
so a variable the template needs but the caller did not pass fails before anything is sent.
Templates see the organization's branding (:func:`include.officeflow.branding.brand_for`) as ``brand``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from include.officeflow.branding import brand_for
from include.officeflow.templating import environment


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str = ""


def render_email(template: str, variables: dict[str, Any], organization: str | None = None) -> RenderedEmail:
    """Render ``<template>.subject.j2``, ``<template>.html.j2`` and ``<template>.txt.j2``.

    The organization's branding is available as ``brand`` (a caller's own ``brand`` variable wins).
    Raises ``jinja2.UndefinedError`` when the template needs a variable that is missing, and
    ``jinja2.TemplateNotFound`` for an unknown template (a template without a ``.txt.j2`` part gets
    no plain-text part).
    """
    env = environment("email")
    values = {"brand": brand_for(organization), **variables}
    subject = env.get_template(f"{template}.subject.j2").render(**values).strip()
    if not subject or "\n" in subject:
        raise ValueError(f"template {template!r} must render a one-line, non-empty subject")
    html = env.get_template(f"{template}.html.j2").render(**values)
    try:
        text_template = env.get_template(f"{template}.txt.j2")
    except jinja2.TemplateNotFound:
        text = ""
    else:
        text = text_template.render(**values).strip() + "\n"
    return RenderedEmail(subject=subject, html=html, text=text)
