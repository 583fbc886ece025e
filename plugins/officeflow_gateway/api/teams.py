"""Teams and their members: ``/officeflow/api/v1/organizations/{org}/teams``, ``/officeflow/api/v1/teams/{id}``
and ``/officeflow/api/v1/teams/{id}/members``.

A team maps to identity-provider groups and a Slack channel. Adding a member stores the person's profile and
starts a ``team_membership`` run (the same identity and Slack operators the HR workflows use) that puts them
into the groups and invites them to the channel; removing one starts a run that takes them out of the groups
and the channel. Both answer 202 with the run id, which the membership records. Changing a team's groups or
channel starts a ``sync`` run per active member and answers their ids. Permissions: ``OfficeFlow Teams`` (read, create,
edit, delete teams) and ``OfficeFlow Team Members`` (read, add = create, remove = delete). Tenant isolation:
another organization's team is 404; creating a team in an organization the caller is not a member of is 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from include.officeflow import teams
from include.officeflow.addresses import is_email_address
from include.officeflow.auth.permissions import TEAM_MEMBERS, TEAMS
from plugins.officeflow_gateway.api.organizations import in_store, requester
from plugins.officeflow_gateway.auth import Caller, authorized
from plugins.officeflow_gateway.errors import ApiError, correlation_id
from plugins.officeflow_gateway.triggering import RunRequest, TriggerError, trigger_runs

router = APIRouter(prefix="/api/v1", tags=["teams"])

ReadTeams = Annotated[Caller, Depends(authorized("GET", TEAMS))]
CreateTeams = Annotated[Caller, Depends(authorized("POST", TEAMS))]
EditTeams = Annotated[Caller, Depends(authorized("PUT", TEAMS))]
DeleteTeams = Annotated[Caller, Depends(authorized("DELETE", TEAMS))]
ReadMembers = Annotated[Caller, Depends(authorized("GET", TEAM_MEMBERS))]
AddMembers = Annotated[Caller, Depends(authorized("POST", TEAM_MEMBERS))]
RemoveMembers = Annotated[Caller, Depends(authorized("DELETE", TEAM_MEMBERS))]

RETRY_AFTER_SECONDS = "30"
GroupNames = list[Annotated[str, Field(min_length=1, max_length=256)]]


class IdentityGroups(BaseModel):
    """Per identity provider, the groups membership grants, named as the provider resolves them."""

    model_config = ConfigDict(extra="forbid")

    google: GroupNames = Field(default_factory=list, max_length=50, description="Google Workspace group emails.")
    microsoft: GroupNames = Field(default_factory=list, max_length=50,
                                  description="Microsoft Entra group display names.")
    okta: GroupNames = Field(default_factory=list, max_length=50, description="Okta group names (profile.name).")

    def stored(self) -> dict[str, list[str]]:
        return teams.identity_groups(self.model_dump())


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    identity_groups: IdentityGroups = Field(default_factory=IdentityGroups)
    slack_channel: str | None = Field(default=None, description="The team's channel (created at the first "
                                      "member's invite if it does not exist): #name or name.")

    @field_validator("slack_channel")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        return teams.channel_name(value)  # its ValueError is the API's 422


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    identity_groups: IdentityGroups | None = Field(default=None, description="Replaces the mapping; a sync run "
                                                   "per active member moves them to the new groups.")
    slack_channel: str | None = Field(default=None, description="null: no channel. A sync run per active member "
                                      "invites them to the new channel and removes them from the old one.")

    @field_validator("slack_channel")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        return teams.channel_name(value)  # its ValueError is the API's 422

    @model_validator(mode="after")
    def _no_nulls(self) -> TeamUpdate:
        for name in ("name", "identity_groups"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null (omit it to keep its value)")
        return self


class TeamOut(BaseModel):
    id: str
    organization_id: str
    name: str
    description: str | None
    identity_groups: dict[str, list[str]]
    slack_channel: str | None
    members: int = Field(description="Active members.")
    created_at: datetime
    created_by: str
    updated_at: datetime

    @classmethod
    def of(cls, team: Any, members: int) -> TeamOut:
        return cls(id=team.id, organization_id=team.organization_id, name=team.name, description=team.description,
                   identity_groups=team.identity_groups or {}, slack_channel=team.slack_channel, members=members,
                   created_at=team.created_at, created_by=team.created_by, updated_at=team.updated_at)


class SyncRun(BaseModel):
    member: str = Field(description="The member's email.")
    dag_run_id: str


class TeamChanged(TeamOut):
    """The team after the change, and the runs that bring its active members to the new groups and channel."""

    dag_id: str
    runs: list[SyncRun] = Field(description="One team_membership run (action sync) per active member when the "
                                "groups or the channel changed; empty otherwise.")
    correlationId: str


class TeamList(BaseModel):
    teams: list[TeamOut]
    total_entries: int


class MemberIn(BaseModel):
    """The person's profile (stored per organization; a later add updates the fields given)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="Work email: the login in the identity providers.")
    display_name: str = Field(min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    manager_email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()./-]{3,40}$")
    slack_user_id: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,31}$")

    @field_validator("email", "manager_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_email_address(value.strip()):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.strip().lower() if value else value


class MemberOut(BaseModel):
    id: str = Field(description="The profile's id (also accepted in the member's URL, as is the email).")
    email: str
    display_name: str
    title: str | None
    manager_email: str | None
    phone: str | None
    slack_user_id: str | None
    status: str = Field(description="active or removed")
    added_at: datetime
    added_by: str
    removed_at: datetime | None
    removed_by: str | None
    dag_run_id: str | None = Field(description="The team_membership run of the last change (add or remove).")

    @classmethod
    def of(cls, member: teams.Member) -> MemberOut:
        p, m = member.profile, member.membership
        return cls(id=p.id, email=p.email, display_name=p.display_name, title=p.title,
                   manager_email=p.manager_email, phone=p.phone, slack_user_id=p.slack_user_id,
                   status=m.status, added_at=m.added_at, added_by=m.added_by, removed_at=m.removed_at,
                   removed_by=m.removed_by, dag_run_id=member.run_id)


class MemberList(BaseModel):
    members: list[MemberOut]
    total_entries: int


class MembershipAccepted(BaseModel):
    team_id: str
    member: MemberOut
    action: Literal["add", "remove"]
    dag_id: str
    dag_run_id: str
    correlationId: str  # the gateway's answers name it so


# --- teams ---------------------------------------------------------------------------------------------------


@router.get("/organizations/{organization_id}/teams", response_model=TeamList)
async def list_teams(organization_id: str, request: Request, caller: ReadTeams) -> TeamList:
    found = await in_store(lambda: teams.list_teams(organization_id, requester(caller, request)))
    return TeamList(teams=[TeamOut.of(t, n) for t, n in found], total_entries=len(found))


@router.post("/organizations/{organization_id}/teams", status_code=201, response_model=TeamOut,
             responses={403: {"description": "Not a member of the organization"},
                        409: {"description": "The organization has a team of this name"}})
async def create_team(organization_id: str, body: TeamCreate, request: Request, caller: CreateTeams) -> TeamOut:
    ctx = requester(caller, request)
    team = await in_store(lambda: teams.create_team(organization_id, ctx, name=body.name.strip(),
                                                    description=body.description,
                                                    groups=body.identity_groups.stored(),
                                                    slack_channel=body.slack_channel))
    return TeamOut.of(team, 0)


@router.get("/teams/{team_id}", response_model=TeamOut)
async def get_team(team_id: str, request: Request, caller: ReadTeams) -> TeamOut:
    team, members = await in_store(lambda: teams.get_team(team_id, requester(caller, request)))
    return TeamOut.of(team, members)


@router.patch("/teams/{team_id}", response_model=TeamChanged,
              responses={409: {"description": "The organization has a team of this name"},
                         503: {"description": "The sync runs could not be started; nothing was changed"}})
async def update_team(team_id: str, body: TeamUpdate, request: Request, caller: EditTeams) -> TeamChanged:
    """Change the team (only the fields given). When its groups or Slack channel change, a ``team_membership``
    run per active member (``sync``) adds them to the new groups, removes them from the dropped ones, invites
    them to the new channel and removes them from the old one; ``runs`` lists them."""
    changes = body.model_dump(exclude_unset=True)
    if body.identity_groups is not None:
        changes["identity_groups"] = body.identity_groups.stored()
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    ctx = requester(caller, request)
    team, members, runs = await in_store(lambda: teams.update_team(team_id, changes, ctx, _starter(caller)))
    return TeamChanged(**TeamOut.of(team, members).model_dump(), dag_id=teams.DAG_ID,
                       runs=[SyncRun(member=email, dag_run_id=run_id) for email, run_id in runs],
                       correlationId=correlation_id(request))


@router.delete("/teams/{team_id}", status_code=204,
               responses={409: {"description": "The team has members: remove them first"}})
async def delete_team(team_id: str, request: Request, caller: DeleteTeams) -> Response:
    ctx = requester(caller, request)
    await in_store(lambda: teams.delete_team(team_id, ctx))
    return Response(status_code=204)


# --- members -------------------------------------------------------------------------------------------------


@router.get("/teams/{team_id}/members", response_model=MemberList)
async def list_members(team_id: str, request: Request, caller: ReadMembers,
                       status: Annotated[Literal["active", "removed", "all"], Query()] = "active") -> MemberList:
    wanted = None if status == "all" else status
    found = await in_store(lambda: teams.list_members(team_id, requester(caller, request), status=wanted))
    return MemberList(members=[MemberOut.of(m) for m in found], total_entries=len(found))


NOTES = {"add": "Add {email} to team {team}", "remove": "Remove {email} from team {team}",
         "sync": "Move {email} to team {team}'s new groups and channel"}


def _starter(caller: Caller) -> teams.StartRuns:
    """Starts ``team_membership`` runs inside the store transaction, every one or none: if Airflow refuses one,
    nothing is stored."""

    def start(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        requests = [RunRequest(run_id, conf, NOTES[conf["action"]].format(
            email=conf["member"]["email"], team=conf["team"]["name"]) + f" (teams API, {caller.name})")
            for run_id, conf in runs]
        try:
            return trigger_runs(teams.DAG_ID, requests, triggered_by_name=caller.name)
        except TriggerError as exc:
            if exc.permanent:
                raise ApiError(422, "run_refused", str(exc)) from None
            raise ApiError(503, "workflow_unavailable", f"{exc}; nothing was stored, retry later",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from None

    return start


@router.post("/teams/{team_id}/members", status_code=202, response_model=MembershipAccepted,
             responses={409: {"description": "Already a member"},
                        503: {"description": "The workflow could not be started; nothing was stored"}})
async def add_member(team_id: str, body: MemberIn, request: Request, caller: AddMembers) -> MembershipAccepted:
    """Store the profile and the membership and start a ``team_membership`` run that adds the person to the team's
    groups and invites them to its Slack channel. 202: the run is started; follow it with its ``dag_run_id``."""
    ctx = requester(caller, request)
    member, run_id = await in_store(lambda: teams.add_member(team_id, body.model_dump(), ctx,
                                                             _starter(caller)))
    return MembershipAccepted(team_id=team_id, member=MemberOut.of(member), action="add", dag_id=teams.DAG_ID,
                              dag_run_id=run_id, correlationId=correlation_id(request))


@router.delete("/teams/{team_id}/members/{member}", status_code=202, response_model=MembershipAccepted,
               responses={404: {"description": "Not a member of the team"},
                          503: {"description": "The workflow could not be started; nothing was changed"}})
async def remove_member(team_id: str, member: str, request: Request, caller: RemoveMembers) -> MembershipAccepted:
    """Mark the membership removed and start a ``team_membership`` run that takes the person out of the team's
    groups and its Slack channel (``member``: email or profile id)."""
    ctx = requester(caller, request)
    removed, run_id = await in_store(lambda: teams.remove_member(team_id, member, ctx,
                                                                 _starter(caller)))
    return MembershipAccepted(team_id=team_id, member=MemberOut.of(removed), action="remove", dag_id=teams.DAG_ID,
                              dag_run_id=run_id, correlationId=correlation_id(request))
