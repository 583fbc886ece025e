"""The shipped email templates as a catalog, and the organizations' overrides of them in the OfficeFlow store.

Shipped templates are files in ``include/templates/email/`` (see :mod:`include.officeflow.email_rendering`):
``<name>.subject.j2``, ``<name>.html.j2``, ``<name>.txt.j2`` and ``<name>.sample.json``
(``{"description", "variables"}``: what the template is for, and a sample data set it renders with). They stay
the default. An organization may override a template: each change stores a new immutable version of the three
sources (``email_template_override_versions``), and the override row (``email_template_overrides``) names the
version emails use (``current_version``; None after a revert to the shipped default). Restoring an old version
stores it again as the newest, so the history only grows. Every change is audited in the same transaction.

Validation (rendering the sources with the sample data) is the rendering module's job; this module only
stores what it is given. Task code reads the current override through :func:`current_sources` with
``task_store_url()`` (``render_email`` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, meta
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.officeflow.audit import audit
from include.officeflow.store.db import session_scope
from include.officeflow.store.models import EmailTemplateOverride, EmailTemplateOverrideVersion, utcnow
from include.officeflow.templating import TEMPLATES_DIR, environment

EMAIL_TEMPLATES_DIR = TEMPLATES_DIR / "email"
PARTS = ("subject", "html", "text")
#: Variables every template sees without the caller passing them (``brand``: the organization's branding).
PROVIDED = frozenset({"brand"})


class UnknownTemplate(LookupError):
    """No shipped template has this name."""


class OverrideNotFound(LookupError):
    """The organization has no such override (or no such version of it)."""


class OverrideConflict(RuntimeError):
    """Another change of the same override committed first; retrying is safe."""


@dataclass(frozen=True)
class Sources:
    """A template's three Jinja sources."""

    subject: str
    html: str
    text: str

    def part(self, name: str) -> str:
        return str(getattr(self, name))


@dataclass(frozen=True)
class ShippedTemplate:
    name: str
    description: str
    sources: Sources
    sample: dict[str, Any]
    #: The variables the shipped sources (and the layouts they extend) use, ``brand`` excluded.
    variables: tuple[str, ...]

    @property
    def allowed_variables(self) -> frozenset[str]:
        """What an override may use: the shipped template's variables, the sample's, and ``brand``."""
        return frozenset(self.variables) | frozenset(self.sample) | PROVIDED


@dataclass(frozen=True)
class OverrideVersion:
    version: int
    sources: Sources
    created_at: datetime
    created_by: str
    restored_from: int | None


@dataclass(frozen=True)
class Override:
    """An organization's override of a template: the version in use (None: the shipped default) and every version,
    newest first."""

    organization_id: str
    template: str
    current_version: int | None
    latest_version: int
    updated_at: datetime
    updated_by: str
    versions: tuple[OverrideVersion, ...]

    @property
    def current(self) -> OverrideVersion | None:
        return next((v for v in self.versions if v.version == self.current_version), None)


@dataclass(frozen=True)
class CurrentOverride:
    organization_id: str
    template: str
    version: int
    updated_at: datetime
    updated_by: str


# --- the shipped templates ---------------------------------------------------------------------------------


def shipped_names() -> list[str]:
    """Every shipped template: the names with a ``.subject.j2`` file."""
    return sorted(path.name.removesuffix(".subject.j2") for path in EMAIL_TEMPLATES_DIR.glob("*.subject.j2"))


def shipped(name: str) -> ShippedTemplate:
    """The shipped template ``name`` (:class:`UnknownTemplate` if there is none)."""
    if name not in shipped_names():  # also keeps names such as "../x" away from the file system
        raise UnknownTemplate(f"email template {name!r} not found")
    return _shipped(name, *(_mtime(name, suffix) for suffix in ("subject.j2", "html.j2", "txt.j2", "sample.json")))


def _mtime(name: str, suffix: str) -> float:
    path = EMAIL_TEMPLATES_DIR / f"{name}.{suffix}"
    return path.stat().st_mtime if path.exists() else 0.0


@lru_cache(maxsize=64)
def _shipped(name: str, *_mtimes: float) -> ShippedTemplate:
    sources = Sources(**{part: _read(f"{name}.{_suffix(part)}") for part in PARTS})
    sample_file = EMAIL_TEMPLATES_DIR / f"{name}.sample.json"
    data = json.loads(sample_file.read_text(encoding="utf-8")) if sample_file.exists() else {}
    env = environment("email")
    used: set[str] = set()
    for part in PARTS:
        used |= template_variables(env, f"{name}.{_suffix(part)}")
    return ShippedTemplate(name=name, description=str(data.get("description", "")), sources=sources,
                           sample=dict(data.get("variables") or {}), variables=tuple(sorted(used - PROVIDED)))


def _suffix(part: str) -> str:
    return {"subject": "subject.j2", "html": "html.j2", "text": "txt.j2"}[part]


def part_file(template: str, part: str) -> str:
    """The file (template) name of one part, e.g. ``welcome.html.j2``: what autoescaping is chosen by."""
    return f"{template}.{_suffix(part)}"


def _read(filename: str) -> str:
    path = EMAIL_TEMPLATES_DIR / filename
    return path.read_text(encoding="utf-8") if path.exists() else ""


def template_variables(env: Environment, filename: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The variables a template file uses, with those of the templates it extends, includes or imports."""
    if filename in seen or not filename:
        return set()
    source = env.loader.get_source(env, filename)[0] if env.loader else ""
    ast = env.parse(source)
    used = set(meta.find_undeclared_variables(ast)) - set(env.globals)
    for referenced in meta.find_referenced_templates(ast):
        if referenced:
            used |= template_variables(env, referenced, seen | {filename})
    return used


# --- overrides in the store ---------------------------------------------------------------------------------


def current_sources(template: str, organization_id: str, url: str | None = None) -> tuple[int, Sources] | None:
    """The version and sources the organization's emails of ``template`` use, or None (the shipped default)."""
    with session_scope(url) as session:
        row = session.execute(
            select(EmailTemplateOverrideVersion)
            .join(EmailTemplateOverride, (EmailTemplateOverride.id == EmailTemplateOverrideVersion.override_id)
                  & (EmailTemplateOverride.current_version == EmailTemplateOverrideVersion.version))
            .where(EmailTemplateOverride.organization_id == organization_id,
                   EmailTemplateOverride.template == template)
        ).scalar_one_or_none()
        if row is None:
            return None
        return row.version, Sources(subject=row.subject, html=row.html, text=row.text)


def current_overrides(organizations: frozenset[str] | None, template: str | None = None,
                      url: str | None = None) -> list[CurrentOverride]:
    """The overrides in use (not reverted), of ``organizations`` (None: every organization), by template."""
    statement = (select(EmailTemplateOverride).where(EmailTemplateOverride.current_version.is_not(None))
                 .order_by(EmailTemplateOverride.template, EmailTemplateOverride.organization_id))
    if organizations is not None:
        statement = statement.where(EmailTemplateOverride.organization_id.in_(organizations))
    if template is not None:
        statement = statement.where(EmailTemplateOverride.template == template)
    with session_scope(url) as session:
        return [CurrentOverride(r.organization_id, r.template, int(r.current_version or 0), r.updated_at, r.updated_by)
                for r in session.scalars(statement)]


def get_override(template: str, organization_id: str, url: str | None = None) -> Override | None:
    """The organization's override of ``template`` with every version, or None if it never had one."""
    with session_scope(url) as session:
        row = _override_row(session, template, organization_id)
        return None if row is None else _describe(session, row)


def save(template: str, organization_id: str, sources: Sources, *, actor: str, correlation_id: str | None = None,
         source_ip: str | None = None, url: str | None = None) -> tuple[Override, bool]:
    """Store ``sources`` as the override's newest version and use it: (the override, whether it is new)."""
    return _new_version(template, organization_id, sources, actor=actor, action="email_template.override_saved",
                        correlation_id=correlation_id, source_ip=source_ip, url=url)


def restore(template: str, organization_id: str, version: int, *, actor: str, correlation_id: str | None = None,
            source_ip: str | None = None, url: str | None = None) -> Override:
    """Store version ``version`` again as the newest and use it (:class:`OverrideNotFound` if it does not exist)."""
    with session_scope(url) as session:
        row = _override_row(session, template, organization_id)
        old = None if row is None else session.get(EmailTemplateOverrideVersion, (row.id, version))
        if old is None:
            raise OverrideNotFound(f"template {template!r} has no override version {version} in this organization")
        sources = Sources(subject=old.subject, html=old.html, text=old.text)
    override, _ = _new_version(template, organization_id, sources, actor=actor, restored_from=version,
                               action="email_template.override_restored", correlation_id=correlation_id,
                               source_ip=source_ip, url=url)
    return override


def revert(template: str, organization_id: str, *, actor: str, correlation_id: str | None = None,
           source_ip: str | None = None, url: str | None = None) -> Override:
    """Go back to the shipped default (the versions stay); :class:`OverrideNotFound` if no override is in use."""
    with session_scope(url) as session:
        row = _override_row(session, template, organization_id, lock=True)
        if row is None or row.current_version is None:
            raise OverrideNotFound(f"template {template!r} has no override in use in this organization")
        reverted_from = row.current_version
        row.current_version = None
        row.updated_at, row.updated_by = utcnow(), actor
        audit("email_template.override_reverted", actor=actor, resource_type="email_template", resource_id=template,
              outcome="success", correlation_id=correlation_id, organization_id=organization_id, source_ip=source_ip,
              session=session, version=reverted_from)
        session.flush()
        return _describe(session, row)


def _new_version(template: str, organization_id: str, sources: Sources, *, actor: str, action: str,
                 correlation_id: str | None, source_ip: str | None, url: str | None,
                 restored_from: int | None = None) -> tuple[Override, bool]:
    try:
        with session_scope(url) as session:
            row = _override_row(session, template, organization_id, lock=True)
            created = row is None
            if row is None:
                row = EmailTemplateOverride(organization_id=organization_id, template=template, latest_version=0,
                                            updated_by=actor)
                session.add(row)
                session.flush()  # a concurrent first save fails here, on the unique (organization, template)
            version = row.latest_version + 1
            session.add(EmailTemplateOverrideVersion(override_id=row.id, version=version, subject=sources.subject,
                                                     html=sources.html, text=sources.text,
                                                     restored_from=restored_from, created_by=actor))
            row.latest_version = row.current_version = version
            row.updated_at, row.updated_by = utcnow(), actor
            details: dict[str, Any] = {"version": version}
            if restored_from is not None:
                details["restored_from"] = restored_from
            audit(action, actor=actor, resource_type="email_template", resource_id=template, outcome="success",
                  correlation_id=correlation_id, organization_id=organization_id, source_ip=source_ip,
                  session=session, **details)
            session.flush()
            return _describe(session, row), created
    except IntegrityError as exc:
        raise OverrideConflict(f"template {template!r} was changed at the same time in this organization; "
                               "retry") from exc


def _override_row(session: Session, template: str, organization_id: str,
                  lock: bool = False) -> EmailTemplateOverride | None:
    statement = select(EmailTemplateOverride).where(EmailTemplateOverride.organization_id == organization_id,
                                                    EmailTemplateOverride.template == template)
    if lock:  # serialises changes of one override (PostgreSQL; SQLite has a single writer anyway)
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def _describe(session: Session, row: EmailTemplateOverride) -> Override:
    versions = session.scalars(select(EmailTemplateOverrideVersion)
                               .where(EmailTemplateOverrideVersion.override_id == row.id)
                               .order_by(EmailTemplateOverrideVersion.version.desc()))
    return Override(organization_id=row.organization_id, template=row.template, current_version=row.current_version,
                    latest_version=row.latest_version, updated_at=row.updated_at, updated_by=row.updated_by,
                    versions=tuple(OverrideVersion(version=v.version, created_at=v.created_at, created_by=v.created_by,
                                                   restored_from=v.restored_from,
                                                   sources=Sources(subject=v.subject, html=v.html, text=v.text))
                                   for v in versions))
