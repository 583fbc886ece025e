"""``/officeflow/api/v1/email/templates``: the shipped email templates, previews, and per-organization overrides.

Airflow JWT; the auth manager decides on ``OfficeFlow Email``: ``can_read`` lists, reads and previews,
``can_edit`` changes overrides (``PUT``, ``DELETE``, restoring a version).

- ``GET …/templates`` and ``GET …/templates/{name}[?organization_id=]``: what each template is for, the variables
  it uses, its sample data, its shipped sources and the organization's override in use;
- ``POST …/templates/{name}/preview``: subject, HTML and text rendered with the sample data (overlaid by the given
  ``variables``), from a ``draft`` in the body, the organization's override, or the shipped default;
- ``PUT|GET|DELETE …/templates/{name}/overrides/{organization_id}``, ``POST …/versions/{n}/restore``: store a new
  version, read the one in use and the history, go back to the shipped default (history kept), use an old version
  again (stored as the newest).

Sources are checked before they are stored (:func:`include.officeflow.email_rendering.check_sources`): a syntax
error, a variable the template does not know or a failed render with the sample data is 422 with ``part``,
``line`` and ``variable`` in the error. Tenant isolation: overrides belong to an organization; another
organization's is 404, storing one in an organization the caller is not a member of is 403
``forbidden_organization``. Changes are audited (``email_template.override_saved|reverted|restored``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow import email_templates as catalog
from include.officeflow.auth.permissions import EMAIL
from include.officeflow.email_rendering import RenderedEmail, TemplateProblem, check_sources
from include.officeflow.email_templates import OverrideConflict, OverrideNotFound, Sources, UnknownTemplate
from plugins.officeflow_gateway.api import MAX_INT
from plugins.officeflow_gateway.auth import Caller, ReadEmail, authorized
from plugins.officeflow_gateway.errors import CORRELATION_HEADER, ApiError, correlation_id

router = APIRouter(prefix="/api/v1/email/templates", tags=["email templates"])

EditEmail = Annotated[Caller, Depends(authorized("PUT", EMAIL))]
TemplateName = Annotated[str, Path(max_length=128, description="A shipped template, e.g. `welcome`")]
OrganizationId = Annotated[str, Path(min_length=1, max_length=64)]
MAX_SOURCE_CHARS = 200_000
T = TypeVar("T")


# --- the contract --------------------------------------------------------------------------------------------


class SourcesIn(BaseModel):
    """A template's three Jinja sources (they may ``{% extends "layout.html.j2" %}`` / ``"layout.txt.j2"``)."""

    subject: str = Field(min_length=1, max_length=2000, description="Renders as one line")
    html: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS, description="Auto-escaped HTML")
    text: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS, description="The plain-text part")

    def sources(self) -> Sources:
        return Sources(subject=self.subject, html=self.html, text=self.text)


class SourcesOut(BaseModel):
    subject: str
    html: str
    text: str


class OverrideRef(BaseModel):
    organization_id: str
    version: int
    updated_at: datetime
    updated_by: str


class TemplateSummary(BaseModel):
    name: str
    description: str
    variables: list[str] = Field(description="What the shipped template uses (`brand` is always there)")
    overrides: list[OverrideRef] = Field(description="Overrides in use in the caller's organizations")


class TemplateList(BaseModel):
    templates: list[TemplateSummary]
    total_entries: int


class CurrentOverrideOut(SourcesOut):
    organization_id: str
    version: int
    updated_at: datetime
    updated_by: str


class TemplateDetail(BaseModel):
    name: str
    description: str
    variables: list[str]
    allowed_variables: list[str] = Field(description="What an override may use: the shipped template's variables, "
                                                     "the sample's and `brand`")
    sample: dict[str, Any] = Field(description="The sample data previews and checks render with")
    default: SourcesOut = Field(description="The shipped sources")
    override: CurrentOverrideOut | None = Field(description="The override in use in `organization_id`, if asked")


class OverrideVersionOut(SourcesOut):
    version: int
    created_at: datetime
    created_by: str
    restored_from: int | None


class OverrideOut(BaseModel):
    organization_id: str
    template: str
    current_version: int | None = Field(description="The version emails use; null: the shipped default")
    latest_version: int
    updated_at: datetime
    updated_by: str
    current: OverrideVersionOut | None
    versions: list[OverrideVersionOut] = Field(description="Every version, newest first")


class PreviewIn(BaseModel):
    organization_id: str | None = Field(default=None, max_length=64,
                                        description="Its branding, and its override in use when no draft is given")
    variables: dict[str, Any] | None = Field(default=None, description="Laid over the template's sample data")
    draft: SourcesIn | None = Field(default=None, description="Sources to preview instead of the stored ones")


class PreviewOut(BaseModel):
    template: str
    organization_id: str | None
    source: Literal["default", "override", "draft"]
    version: int | None = Field(description="The override's version (source `override`)")
    subject: str
    html: str
    text: str


class TemplateErrorBody(BaseModel):
    message: str
    code: str
    correlationId: str  # the shared error shape's name
    part: str | None = None
    line: int | None = None
    variable: str | None = None


class TemplateError(BaseModel):
    error: TemplateErrorBody


REFUSED: dict[int | str, dict[str, Any]] = {422: {
    "model": TemplateError,
    "description": "The sources do not render: `code` is `template_syntax_error`, `unknown_variable`, "
                   "`undefined_variable`, `unsafe_template`, `render_error` or `invalid_subject`; `part`, `line` "
                   "and `variable` say where"}}


# --- helpers -------------------------------------------------------------------------------------------------


async def _run(request: Request, work: Callable[[], T]) -> T | JSONResponse:
    """Store and rendering work off the event loop; the module's errors as the shared error shape."""
    try:
        return await run_in_threadpool(work)
    except TemplateProblem as problem:
        cid = correlation_id(request)
        return JSONResponse(status_code=422, headers={CORRELATION_HEADER: cid}, content={"error": {
            "message": str(problem), "code": problem.code, "correlationId": cid, "part": problem.part,
            "line": problem.line, "variable": problem.variable}})
    except (UnknownTemplate, OverrideNotFound) as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except OverrideConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None


def _version_out(version: catalog.OverrideVersion) -> OverrideVersionOut:
    return OverrideVersionOut(version=version.version, created_at=version.created_at, created_by=version.created_by,
                              restored_from=version.restored_from, subject=version.sources.subject,
                              html=version.sources.html, text=version.sources.text)


def _override_out(override: catalog.Override) -> OverrideOut:
    current = override.current
    return OverrideOut(organization_id=override.organization_id, template=override.template,
                       current_version=override.current_version, latest_version=override.latest_version,
                       updated_at=override.updated_at, updated_by=override.updated_by,
                       current=_version_out(current) if current else None,
                       versions=[_version_out(v) for v in override.versions])


def _sources_out(sources: Sources) -> SourcesOut:
    return SourcesOut(subject=sources.subject, html=sources.html, text=sources.text)


def _no_override(name: str, organization_id: str) -> ApiError:
    return ApiError(404, "not_found", f"template {name!r} has no override in organization {organization_id!r}")


# --- routes --------------------------------------------------------------------------------------------------


@router.get("", response_model=TemplateList)
async def list_templates(
    request: Request, caller: ReadEmail,
    organization_id: Annotated[str | None, Query(max_length=64, description="Overrides of this one only")] = None,
) -> Any:
    """Every shipped template, with the overrides in use in the caller's organizations."""
    organizations = caller.organizations
    if organization_id:
        organizations = frozenset({organization_id} if caller.sees(organization_id) else set())

    def listing() -> TemplateList:
        overrides: dict[str, list[OverrideRef]] = {}
        for found in catalog.current_overrides(organizations):
            overrides.setdefault(found.template, []).append(OverrideRef(
                organization_id=found.organization_id, version=found.version, updated_at=found.updated_at,
                updated_by=found.updated_by))
        templates = [catalog.shipped(name) for name in catalog.shipped_names()]
        return TemplateList(total_entries=len(templates), templates=[
            TemplateSummary(name=t.name, description=t.description, variables=list(t.variables),
                            overrides=overrides.get(t.name, [])) for t in templates])

    return await _run(request, listing)


@router.get("/{name}", response_model=TemplateDetail)
async def get_template(
    name: TemplateName, request: Request, caller: ReadEmail,
    organization_id: Annotated[str | None, Query(max_length=64, description="Include its override in use")] = None,
) -> Any:
    """The shipped sources, sample data and variables; with ``organization_id``, that organization's override."""
    if organization_id:
        caller.visible(organization_id, "override of template", name)

    def detail() -> TemplateDetail:
        shipped = catalog.shipped(name)
        override = None
        if organization_id:
            found = catalog.get_override(name, organization_id)
            current = found.current if found else None
            if found and current:
                override = CurrentOverrideOut(organization_id=organization_id, version=current.version,
                                              updated_at=found.updated_at, updated_by=found.updated_by,
                                              **_sources_out(current.sources).model_dump())
        return TemplateDetail(name=name, description=shipped.description, variables=list(shipped.variables),
                              allowed_variables=sorted(shipped.allowed_variables), sample=shipped.sample,
                              default=_sources_out(shipped.sources), override=override)

    return await _run(request, detail)


@router.post("/{name}/preview", response_model=PreviewOut, responses=REFUSED)
async def preview_template(name: TemplateName, payload: PreviewIn, request: Request, caller: ReadEmail) -> Any:
    """Render the template as it would be sent: the ``draft`` if given, else the organization's override in use,
    else the shipped default; with the sample data, overlaid by ``variables``."""
    if payload.organization_id:
        caller.visible(payload.organization_id, "override of template", name)

    def render() -> PreviewOut:
        shipped = catalog.shipped(name)
        source: Literal["default", "override", "draft"] = "default"
        sources, version = shipped.sources, None
        if payload.draft is not None:
            source, sources = "draft", payload.draft.sources()
        elif payload.organization_id:
            current = catalog.current_sources(name, payload.organization_id)
            if current is not None:
                source, (version, sources) = "override", current
        variables = {**shipped.sample, **(payload.variables or {})}
        rendered: RenderedEmail = check_sources(name, sources, variables, payload.organization_id)
        return PreviewOut(template=name, organization_id=payload.organization_id, source=source, version=version,
                          subject=rendered.subject, html=rendered.html, text=rendered.text)

    return await _run(request, render)


@router.get("/{name}/overrides/{organization_id}", response_model=OverrideOut)
async def get_override(name: TemplateName, organization_id: OrganizationId, request: Request,
                       caller: ReadEmail) -> Any:
    """The organization's override: the version in use (none after a revert) and every version."""
    caller.visible(organization_id, "override of template", name)

    def read() -> OverrideOut:
        catalog.shipped(name)
        found = catalog.get_override(name, organization_id)
        if found is None:
            raise _no_override(name, organization_id)
        return _override_out(found)

    return await _run(request, read)


@router.put("/{name}/overrides/{organization_id}", response_model=OverrideOut, responses={
    201: {"model": OverrideOut, "description": "The organization's first override of the template"}, **REFUSED})
async def put_override(name: TemplateName, organization_id: OrganizationId, payload: SourcesIn, request: Request,
                       caller: EditEmail) -> Any:
    """Check the sources (they must render with the sample data) and store them as the override's newest version,
    used from the next email on."""
    cid = correlation_id(request)

    def store() -> tuple[catalog.Override, bool]:
        catalog.shipped(name)
        caller.check_organization(organization_id)
        check_sources(name, payload.sources(), organization=organization_id)
        return catalog.save(name, organization_id, payload.sources(), actor=caller.actor, correlation_id=cid,
                            source_ip=caller.source_ip)

    saved = await _run(request, store)
    if isinstance(saved, JSONResponse):
        return saved
    override, created = saved
    return JSONResponse(_override_out(override).model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/{name}/overrides/{organization_id}", status_code=204)
async def delete_override(name: TemplateName, organization_id: OrganizationId, request: Request,
                          caller: EditEmail) -> Response:
    """Go back to the shipped default; the versions stay (restore one to use it again)."""
    caller.visible(organization_id, "override of template", name)
    cid = correlation_id(request)

    def revert() -> None:
        catalog.shipped(name)
        catalog.revert(name, organization_id, actor=caller.actor, correlation_id=cid, source_ip=caller.source_ip)

    await _run(request, revert)
    return Response(status_code=204)


@router.post("/{name}/overrides/{organization_id}/versions/{version}/restore", response_model=OverrideOut,
             responses=REFUSED)
async def restore_version(name: TemplateName, organization_id: OrganizationId,
                          version: Annotated[int, Path(ge=1, le=MAX_INT)], request: Request, caller: EditEmail) -> Any:
    """Use an earlier version again: it is checked like a new one and stored as the newest version."""
    caller.visible(organization_id, "override of template", name)
    cid = correlation_id(request)

    def restore() -> OverrideOut:
        catalog.shipped(name)
        found = catalog.get_override(name, organization_id)
        old = next((v for v in found.versions if v.version == version), None) if found else None
        if old is None:
            raise ApiError(404, "not_found", f"template {name!r} has no override version {version} in organization "
                                             f"{organization_id!r}")
        check_sources(name, old.sources, organization=organization_id)
        return _override_out(catalog.restore(name, organization_id, version, actor=caller.actor,
                                             correlation_id=cid, source_ip=caller.source_ip))

    return await _run(request, restore)
