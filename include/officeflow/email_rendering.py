"""OfficeFlow's email templates rendered to a subject, an HTML part and a plain-text part.

Templates live in ``include/templates/email/``: ``<name>.subject.j2`` (one line), ``<name>.html.j2``
and ``<name>.txt.j2`` (optional), extending the shared ``layout.*.j2``. The environment is
:func:`include.officeflow.templating.environment` (``StrictUndefined``; HTML auto-escaped, text not),
so a variable the template needs but the caller did not pass fails before anything is sent.
Templates see the organization's branding (:func:`include.officeflow.branding.brand_for`) as ``brand``.

An organization may override a shipped template (:mod:`include.officeflow.email_templates`, through the email
templates API): :func:`render_email` then renders the override's current version, read from the store the way
task code reads it (``task_store_url()``). Overrides are written by people, not shipped with the code, so they
render in Jinja's sandbox (no attribute access to Python internals) with the same options as the shipped ones,
and :func:`check_sources` refuses one that does not render with the template's sample data, naming the part,
the line and the variable (:class:`TemplateProblem`).
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from include.officeflow import email_templates as catalog
from include.officeflow.branding import DEFAULT_ORGANIZATION, brand_for
from include.officeflow.email_templates import PARTS, Sources, part_file
from include.officeflow.templating import environment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str = ""


class TemplateProblem(ValueError):
    """Template sources that cannot be used: ``code`` (``template_syntax_error``, ``unknown_variable``,
    ``undefined_variable``, ``unsafe_template``, ``render_error``, ``invalid_subject``), the ``part``
    (subject, html, text), the 1-based ``line`` in that part's source and the ``variable`` when known."""

    def __init__(self, code: str, part: str, message: str, line: int | None = None, variable: str | None = None):
        where = f"{part}{f' line {line}' if line else ''}"
        super().__init__(f"{where}: {message}")
        self.code, self.part, self.line, self.variable, self.detail = code, part, line, variable, message


def render_email(template: str, variables: dict[str, Any], organization: str | None = None, *,
                 store_url: str | None = None) -> RenderedEmail:
    """Render ``<template>.subject.j2``, ``<template>.html.j2`` and ``<template>.txt.j2``, or the organization's
    override of them when it has one in use (read from the store at ``store_url``, by default the task's
    ``officeflow_db`` connection: :func:`include.officeflow.store.task_store_url`).

    The organization's branding is available as ``brand`` (a caller's own ``brand`` variable wins).
    Raises ``jinja2.UndefinedError`` when the template needs a variable that is missing, and
    ``jinja2.TemplateNotFound`` for an unknown template (a template without a ``.txt.j2`` part gets
    no plain-text part).
    """
    values = {"brand": brand_for(organization), **variables}
    if template in catalog.shipped_names():
        current = _current_override(template, organization or DEFAULT_ORGANIZATION, store_url)
        if current is not None:
            return _render(template, _environment(template, current[1]), values)
    return _render(template, environment("email"), values)


def _current_override(template: str, organization: str, store_url: str | None) -> tuple[int, Sources] | None:
    """The organization's override in use. A store without the overrides table (not migrated to 0009 yet) has
    none; any other store error propagates (the task fails for a retry rather than send the wrong text)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from include.officeflow.store.db import task_store_url

    try:
        return catalog.current_sources(template, organization, store_url or task_store_url())
    except (OperationalError, ProgrammingError) as exc:
        if "email_template_override" not in str(exc.orig) or not _MISSING_TABLE.search(str(exc.orig)):
            raise
        log.warning("The OfficeFlow store has no email template overrides table (migrate it): %r is rendered "
                    "from the shipped files", template)
        return None


def render_sources(template: str, sources: Sources, variables: dict[str, Any],
                   organization: str | None = None) -> RenderedEmail:
    """Render given sources of ``template`` (an override or a draft) in the sandbox, as emails would be."""
    values = {"brand": brand_for(organization), **variables}
    return _render(template, _environment(template, sources), values)


def check_sources(template: str, sources: Sources, variables: dict[str, Any] | None = None,
                  organization: str | None = None) -> RenderedEmail:
    """Validate sources meant for ``template`` and render them: with ``variables`` when given, else with the
    template's sample data. :class:`TemplateProblem` for a syntax error, a variable the template does not know
    (neither the shipped template's, nor its sample's, nor ``brand``), or a failed render."""
    shipped = catalog.shipped(template)
    env = _environment(template, sources)
    allowed = shipped.allowed_variables | set(env.globals)
    for part in PARTS:
        try:
            ast = env.parse(sources.part(part))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem("template_syntax_error", part, exc.message or str(exc), exc.lineno) from exc
        for name, line in _loaded_names(ast):
            if name not in allowed:
                raise TemplateProblem("unknown_variable", part, f"{name!r} is not a variable of template {template!r} "
                                      f"(known: {', '.join(sorted(allowed - set(env.globals)))})", line, name)
    values = {"brand": brand_for(organization), **(shipped.sample if variables is None else variables)}
    return _render(template, env, values, explain=True)


def _render(template: str, env: jinja2.Environment, values: dict[str, Any], explain: bool = False) -> RenderedEmail:
    """The three parts; with ``explain``, any failure becomes a :class:`TemplateProblem` naming part and line."""
    parts: dict[str, str] = {}
    for part in PARTS:
        try:
            loaded = env.get_template(part_file(template, part))
        except jinja2.TemplateNotFound:
            if part != "text":
                raise
            parts[part] = ""
            continue
        try:
            parts[part] = loaded.render(**values)
        except Exception as exc:  # a person's template: any failure is explained (part, line), not raised raw
            if not explain:
                raise
            raise _problem(part, loaded.filename, exc) from exc
    subject = parts["subject"].strip()
    if not subject or "\n" in subject:
        if explain:
            raise TemplateProblem("invalid_subject", "subject", "the subject must render as one non-empty line")
        raise ValueError(f"template {template!r} must render a one-line, non-empty subject")
    text = parts["text"].strip() + "\n" if parts["text"] else ""
    return RenderedEmail(subject=subject, html=parts["html"], text=text)


def _environment(template: str, sources: Sources) -> jinja2.Environment:
    """A sandboxed environment where ``template``'s parts are ``sources`` and everything else (the layouts) is
    shipped; same options as the shipped templates' environment (StrictUndefined, HTML auto-escaped)."""
    shipped_env = environment("email")
    by_file = {part_file(template, part): sources.part(part) for part in PARTS}

    def load(name: str) -> tuple[str, str, Any] | None:
        return (by_file[name], _override_filename(name), lambda: True) if name in by_file else None

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader([jinja2.FunctionLoader(load), shipped_env.loader]),  # type: ignore[list-item]
        undefined=shipped_env.undefined, autoescape=shipped_env.autoescape, trim_blocks=shipped_env.trim_blocks,
        lstrip_blocks=shipped_env.lstrip_blocks, keep_trailing_newline=shipped_env.keep_trailing_newline,
    )
    env.filters.update(shipped_env.filters)
    return env


def _override_filename(name: str) -> str:
    return f"<override {name}>"


def _loaded_names(ast: nodes.Template) -> list[tuple[str, int]]:
    """The variables a source reads that it does not set itself, with the line of each first use."""
    undeclared = meta.find_undeclared_variables(ast)
    first: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            first.setdefault(node.name, node.lineno)
    return sorted(first.items(), key=lambda item: item[1])


_MISSING_TABLE = re.compile(r"no such table|does not exist", re.IGNORECASE)
_UNDEFINED = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")


def _problem(part: str, filename: str | None, exc: Exception) -> TemplateProblem:
    """The failure of one part's render, with the line in that part's source (the deepest frame of it)."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == filename]
    line = lines[-1] if lines else None
    if isinstance(exc, jinja2.UndefinedError):
        found = _UNDEFINED.search(str(exc))
        variable = next((g for g in found.groups() if g), None) if found else None
        return TemplateProblem("undefined_variable", part, f"{exc} (not in the data it was rendered with)", line,
                               variable)
    if isinstance(exc, SecurityError):
        return TemplateProblem("unsafe_template", part, str(exc), line)
    return TemplateProblem("render_error", part, f"{type(exc).__name__}: {exc}", line)
