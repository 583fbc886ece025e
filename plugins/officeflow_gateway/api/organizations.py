"""``/officeflow/api/v1/organizations``: the organizations (tenants) themselves: name, domain and settings.

Reading needs ``can_read`` on ``OfficeFlow Organizations`` and shows the caller's organizations only (another
organization is 404); changing one ``can_edit``. ``settings.ai`` (``enabled``, ``monthly_budget_usd``) switches
the organization's AI and sets its monthly budget; ``GET /{id}/ai-usage`` shows the month's calls, tokens and
estimated cost per workflow and prompt (docs/ai.md). Creating one needs ``can_create`` and "OfficeFlow All
Organizations" (platform administrators). The organization's teams are in :mod:`.teams`; the store side is
:mod:`include.officeflow.teams`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from include.officeflow import teams
from include.officeflow.ai import usage as ai_usage
from include.officeflow.auth.permissions import ORGANIZATIONS
from include.officeflow.store import get_engine
from plugins.officeflow_gateway.auth import Caller, authorized
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])

ReadOrganizations = Annotated[Caller, Depends(authorized("GET", ORGANIZATIONS))]
CreateOrganizations = Annotated[Caller, Depends(authorized("POST", ORGANIZATIONS))]
EditOrganizations = Annotated[Caller, Depends(authorized("PUT", ORGANIZATIONS))]

#: The API's status for each refusal of the store side (shared with the teams routes).
STATUS = {"not_found": 404, "conflict": 409, "forbidden_organization": 403, "team_not_empty": 409}
ORGANIZATION_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
T = TypeVar("T")


def requester(caller: Caller, request: Request) -> teams.Requester:
    return teams.Requester(actor=caller.actor, organizations=caller.organizations,
                           correlation_id=correlation_id(request), source_ip=caller.source_ip)


async def in_store(work: Callable[[], T]) -> T:
    """Run store work in the thread pool; the store's refusals become the shared error shape."""
    try:
        return await run_in_threadpool(work)
    except teams.TeamError as exc:
        raise ApiError(STATUS[exc.reason], exc.reason, exc.message) from None


class AISettings(BaseModel):
    """``settings.ai``: the organization's AI switch and monthly budget (both optional)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, strict=True, description="false: every workflow takes its plain path")
    monthly_budget_usd: float | None = Field(default=None, ge=0, le=1_000_000,
                                             description="estimated spend per calendar month (UTC)")


def _check_settings(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and "ai" in value:
        if not isinstance(value["ai"], dict):
            raise ValueError("settings.ai must be an object: {\"enabled\": bool, \"monthly_budget_usd\": number}")
        AISettings.model_validate(value["ai"])
    return value


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ORGANIZATION_ID, description="The id objects name in their organization_id: "
                    "lowercase letters, digits, '-' and '_'; cannot change later.")
    name: str = Field(min_length=1, max_length=200)
    domain: str | None = Field(default=None, max_length=253, pattern=DOMAIN,
                               description="The organization's email domain.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Settings (JSON object); settings.ai: "
                                     "{enabled, monthly_budget_usd}.")

    _settings = field_validator("settings")(_check_settings)


class OrganizationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    domain: str | None = Field(default=None, max_length=253, pattern=DOMAIN, description="null removes the domain.")
    settings: dict[str, Any] | None = Field(default=None, description="Replaces the settings as a whole.")

    _settings = field_validator("settings")(_check_settings)

    @model_validator(mode="after")
    def _no_null_name(self) -> OrganizationUpdate:
        for name in ("name", "settings"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null (omit it to keep its value)")
        return self


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    domain: str | None
    settings: dict[str, Any]
    created_at: datetime
    created_by: str
    updated_at: datetime


class OrganizationList(BaseModel):
    organizations: list[OrganizationOut]
    total_entries: int


@router.get("", response_model=OrganizationList)
async def list_organizations(request: Request, caller: ReadOrganizations) -> OrganizationList:
    """The organizations the caller is a member of (every one for "OfficeFlow All Organizations")."""
    found = await in_store(lambda: teams.list_organizations(requester(caller, request)))
    return OrganizationList(organizations=[OrganizationOut.model_validate(o) for o in found],
                            total_entries=len(found))


@router.post("", status_code=201, response_model=OrganizationOut,
             responses={403: {"description": "Needs OfficeFlow All Organizations"},
                        409: {"description": "An organization with this id exists"}})
async def create_organization(body: OrganizationCreate, request: Request,
                              caller: CreateOrganizations) -> OrganizationOut:
    """A new organization (platform administrators: "OfficeFlow All Organizations"). Add its users with
    ``PUT /access/users/{username}/organizations``."""
    if caller.organizations is not None:
        raise ApiError(403, "forbidden", "creating an organization needs the permission OfficeFlow All Organizations")
    ctx = requester(caller, request)
    created = await in_store(lambda: teams.create_organization(ctx, organization_id=body.id, name=body.name,
                                                               domain=body.domain, settings=body.settings))
    return OrganizationOut.model_validate(created)


@router.get("/{organization_id}", response_model=OrganizationOut)
async def get_organization(organization_id: str, request: Request, caller: ReadOrganizations) -> OrganizationOut:
    found = await in_store(lambda: teams.get_organization(organization_id, requester(caller, request)))
    return OrganizationOut.model_validate(found)


@router.patch("/{organization_id}", response_model=OrganizationOut)
async def update_organization(organization_id: str, body: OrganizationUpdate, request: Request,
                              caller: EditOrganizations) -> OrganizationOut:
    """Change name, domain or settings (only the fields given)."""
    changes = body.model_dump(exclude_unset=True)
    ctx = requester(caller, request)
    updated = await in_store(lambda: teams.update_organization(organization_id, changes, ctx))
    return OrganizationOut.model_validate(updated)


class AIUsageRow(BaseModel):
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class AIUsageByWorkflow(AIUsageRow):
    dag_id: str | None


class AIUsageByPrompt(AIUsageRow):
    prompt: str


class AIUsageByOutcome(AIUsageRow):
    outcome: str


class AIUsageOut(AIUsageRow):
    organization_id: str
    month: str
    budget_usd: float
    ai_enabled_now: bool
    reason: str
    by_workflow: list[AIUsageByWorkflow]
    by_prompt: list[AIUsageByPrompt]
    by_outcome: list[AIUsageByOutcome]


@router.get("/{organization_id}/ai-usage", response_model=AIUsageOut)
async def get_ai_usage(organization_id: str, request: Request, caller: ReadOrganizations,
                       month: str | None = None) -> AIUsageOut:
    """The organization's AI calls in ``month`` (``YYYY-MM``, default this month, UTC): tokens and estimated cost
    in total, per workflow, per prompt and per outcome, its budget, and whether AI is on for it now."""
    start = None
    if month is not None:
        try:
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(422, "invalid_month", "month must be YYYY-MM, e.g. 2026-12") from None
    ctx = requester(caller, request)

    def work() -> dict[str, Any]:
        teams.get_organization(organization_id, ctx)  # 404 for an organization the caller does not see
        with get_engine().connect() as conn:
            return ai_usage.summary(conn, organization_id, month=start)

    return AIUsageOut.model_validate(await in_store(work))
