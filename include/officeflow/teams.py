"""Organizations, teams and team members with their profiles: the store side of the teams API, and the
``team_membership`` workflow's reading of its run conf.

A team maps to identity-provider groups (per provider, the names the provider resolves: Google group email,
Entra displayName, Okta profile.name) and a Slack channel. Adding a member stores the profile and the
membership and starts a ``team_membership`` run (``add``) that puts the person into those groups and invites
them to the channel; removing one starts a ``remove`` run that takes them out of the groups and the channel.
The membership row records the run. Changing the team's groups or channel starts a ``sync`` run per active
member, from the old mapping to the new one. Each change is audited in the transaction that stores it, and its
runs are started in it too: a run that cannot start leaves nothing stored.

Tenant isolation is applied here, given the caller's organizations (``None``: every organization): an object of
an organization the caller does not see is ``not_found``; creating in one is ``forbidden_organization``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.officeflow.addresses import is_email_address
from include.officeflow.audit import audit
from include.officeflow.identity import PROVIDERS
from include.officeflow.store import session_scope
from include.officeflow.store.models import MemberProfile, Organization, Team, TeamMember, utcnow

DAG_ID = "team_membership"
ACTIONS = ("add", "remove", "sync")
ACTIVE, REMOVED = "active", "removed"
CHANNEL_RE = re.compile(r"^[a-z0-9_-]{1,80}$")

Organizations = frozenset[str] | None
#: Starts ``team_membership`` runs, every one or none: [(run id, conf), …] -> the run ids Airflow created.
StartRuns = Callable[[list[tuple[str, dict[str, Any]]]], list[str]]


class TeamError(Exception):
    """A refused request: ``reason`` is the API's error code (not_found, conflict, forbidden_organization, …)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Requester:
    """Who asks, for the tenant checks and the audit log."""

    actor: str
    organizations: Organizations
    correlation_id: str | None = None
    source_ip: str | None = None

    def sees(self, organization_id: str) -> bool:
        return self.organizations is None or organization_id in self.organizations

    def audit(self, session: Session, action: str, resource_type: str, resource_id: str, organization_id: str,
              **details: Any) -> None:
        audit(action, actor=self.actor, resource_type=resource_type, resource_id=resource_id, outcome="success",
              correlation_id=self.correlation_id, organization_id=organization_id, source_ip=self.source_ip,
              session=session, **details)


# --- normalising what the API and the run conf give ------------------------------------------------------


def channel_name(value: str | None) -> str | None:
    """``#team-x`` → ``team-x``; None or blank → None. Raises ValueError for a name Slack refuses."""
    if value is None or not str(value).strip():
        return None
    name = str(value).strip().removeprefix("#")
    if not CHANNEL_RE.match(name):
        raise ValueError(f"invalid Slack channel {value!r}: 1-80 lowercase letters, digits, '-' or '_'")
    return name


def identity_groups(value: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """Per provider, the unique non-blank group names; providers without groups are left out. Raises ValueError
    for an unknown provider or a group that is not a non-blank string."""
    groups: dict[str, list[str]] = {}
    for provider, names in (value or {}).items():
        if provider not in PROVIDERS:
            raise ValueError(f"unknown identity provider {provider!r} (one of {', '.join(PROVIDERS)})")
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"{provider}: groups must be a list of non-empty names")
        unique = list(dict.fromkeys(n.strip() for n in names))
        if unique:
            groups[provider] = unique
    return groups


# --- organizations ---------------------------------------------------------------------------------------


def list_organizations(ctx: Requester) -> list[Organization]:
    statement = select(Organization).order_by(Organization.id)
    if ctx.organizations is not None:
        statement = statement.where(Organization.id.in_(ctx.organizations))
    with session_scope() as session:
        return list(session.scalars(statement))


def _organization(session: Session, organization_id: str, ctx: Requester) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None or not ctx.sees(organization_id):
        raise TeamError("not_found", "organization not found")  # names no other organization
    return organization


def get_organization(organization_id: str, ctx: Requester) -> Organization:
    with session_scope() as session:
        return _organization(session, organization_id, ctx)


def create_organization(ctx: Requester, *, organization_id: str, name: str, domain: str | None,
                        settings: dict[str, Any]) -> Organization:
    """A new organization (its creator must see every organization: checked by the route)."""
    try:
        with session_scope() as session:
            if session.get(Organization, organization_id) is not None:
                raise TeamError("conflict", f"organization {organization_id!r} exists")
            organization = Organization(id=organization_id, name=name, domain=domain, settings=settings,
                                        created_by=ctx.actor)
            session.add(organization)
            session.flush()
            ctx.audit(session, "organization.created", "organization", organization_id, organization_id,
                      name=name, domain=domain)
    except IntegrityError:  # created by a concurrent request
        raise TeamError("conflict", f"organization {organization_id!r} exists") from None
    return organization


def update_organization(organization_id: str, changes: dict[str, Any], ctx: Requester) -> Organization:
    """Set ``changes`` (name, domain, settings: only the keys given)."""
    with session_scope() as session:
        organization = _organization(session, organization_id, ctx)
        for key, value in changes.items():
            setattr(organization, key, value)
        ctx.audit(session, "organization.updated", "organization", organization_id, organization_id,
                  changed=sorted(changes))
        session.flush()
        return organization


# --- teams -------------------------------------------------------------------------------------------------


def _team(session: Session, team_id: str, ctx: Requester, *, lock: bool = False) -> Team:
    """The team; ``lock``: its row is locked until the transaction ends, so membership changes and mapping
    changes of one team happen one after the other (an add never reads a mapping a concurrent edit replaces)."""
    team = session.get(Team, team_id, with_for_update=lock)
    if team is None or not ctx.sees(team.organization_id):
        raise TeamError("not_found", f"team {team_id!r} not found")
    return team


def _active_counts(session: Session, team_ids: list[str]) -> dict[str, int]:
    if not team_ids:
        return {}
    rows = session.execute(select(TeamMember.team_id, func.count()).where(TeamMember.team_id.in_(team_ids),
                                                                         TeamMember.status == ACTIVE)
                           .group_by(TeamMember.team_id))
    return {team_id: count for team_id, count in rows}


def list_teams(organization_id: str, ctx: Requester) -> list[tuple[Team, int]]:
    """The organization's teams by name, each with its number of active members."""
    with session_scope() as session:
        _organization(session, organization_id, ctx)
        teams = list(session.scalars(select(Team).where(Team.organization_id == organization_id)
                                     .order_by(Team.name)))
        counts = _active_counts(session, [t.id for t in teams])
        return [(team, counts.get(team.id, 0)) for team in teams]


def get_team(team_id: str, ctx: Requester) -> tuple[Team, int]:
    with session_scope() as session:
        team = _team(session, team_id, ctx)
        return team, _active_counts(session, [team_id]).get(team_id, 0)


def _name_taken(session: Session, organization_id: str, name: str, but: str | None = None) -> bool:
    statement = select(Team.id).where(Team.organization_id == organization_id, Team.name == name)
    return any(found != but for found in session.scalars(statement))


def create_team(organization_id: str, ctx: Requester, *, name: str, description: str | None,
                groups: dict[str, list[str]], slack_channel: str | None) -> Team:
    if not ctx.sees(organization_id):
        raise TeamError("forbidden_organization",
                        f"{ctx.actor} is not a member of organization {organization_id!r}")
    try:
        with session_scope() as session:
            _organization(session, organization_id, ctx)
            if _name_taken(session, organization_id, name):
                raise TeamError("conflict", f"organization {organization_id!r} has a team named {name!r}")
            team = Team(organization_id=organization_id, name=name, description=description,
                        identity_groups=groups, slack_channel=slack_channel, created_by=ctx.actor)
            session.add(team)
            session.flush()
            ctx.audit(session, "team.created", "team", team.id, organization_id, name=name,
                      identity_groups=groups, slack_channel=slack_channel)
    except IntegrityError:
        raise TeamError("conflict", f"organization {organization_id!r} has a team named {name!r}") from None
    return team


def _mapping_of(team: Team) -> dict[str, Any]:
    return {"identity_groups": dict(team.identity_groups or {}), "slack_channel": team.slack_channel}


def _same_mapping(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two mappings grant the same (the order of a provider's groups does not matter)."""
    groups_a, groups_b = a["identity_groups"], b["identity_groups"]
    return a["slack_channel"] == b["slack_channel"] and groups_a.keys() == groups_b.keys() and all(
        set(groups_a[p]) == set(groups_b[p]) for p in groups_a)


def update_team(team_id: str, changes: dict[str, Any], ctx: Requester,
                start_runs: StartRuns) -> tuple[Team, int, list[tuple[str, str]]]:
    """Set ``changes`` (name, description, identity_groups, slack_channel: the keys given). When the groups or
    the channel change, a ``sync`` run per active member brings them from the old mapping to the new one.
    One transaction, as :func:`add_member`: if the runs cannot start, the team is left as it was.

    Returns the team, its number of active members, and ``[(member email, run id), …]`` of the runs started."""
    try:
        with session_scope() as session:
            team = _team(session, team_id, ctx, lock=True)
            if "name" in changes and _name_taken(session, team.organization_id, changes["name"], but=team_id):
                raise TeamError("conflict", f"the organization has a team named {changes['name']!r}")
            previous = _mapping_of(team)
            for key, value in changes.items():
                setattr(team, key, value)
            members = [] if _same_mapping(previous, _mapping_of(team)) else _active_profiles(session, team_id)
            runs: list[tuple[str, str]] = []
            if members:
                now = utcnow()
                started = start_runs([(run_id_for("sync", team_id, profile.id, now),
                                       run_conf("sync", team, profile, ctx, previous=previous,
                                                kept=kept_by_other_teams(session, profile.id, team_id)))
                                      for profile in members])
                runs = [(profile.email, run_id) for profile, run_id in zip(members, started, strict=True)]
            ctx.audit(session, "team.updated", "team", team_id, team.organization_id, changed=sorted(changes),
                      identity_groups=team.identity_groups, slack_channel=team.slack_channel,
                      synced_members=len(runs))
            for email, run_id in runs:
                ctx.audit(session, "team.member_synced", "team", team_id, team.organization_id, member=email,
                          dag_id=DAG_ID, dag_run_id=run_id)
            session.flush()
            return team, _active_counts(session, [team_id]).get(team_id, 0), runs
    except IntegrityError:
        raise TeamError("conflict", f"the organization has a team named {changes.get('name')!r}") from None


def _active_profiles(session: Session, team_id: str) -> list[MemberProfile]:
    return list(session.scalars(
        select(MemberProfile).join(TeamMember, MemberProfile.id == TeamMember.profile_id)
        .where(TeamMember.team_id == team_id, TeamMember.status == ACTIVE).order_by(MemberProfile.email)))


def delete_team(team_id: str, ctx: Requester) -> None:
    """Delete a team without active members (remove them first: that takes them out of the groups)."""
    with session_scope() as session:
        team = _team(session, team_id, ctx, lock=True)
        active = _active_counts(session, [team_id]).get(team_id, 0)
        if active:
            raise TeamError("team_not_empty", f"team {team.name!r} has {active} member(s): remove them first")
        ctx.audit(session, "team.deleted", "team", team_id, team.organization_id, name=team.name)
        session.delete(team)


# --- members -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A membership with its profile, detached from the session."""

    membership: TeamMember
    profile: MemberProfile

    @property
    def run_id(self) -> str | None:
        return self.membership.remove_run_id if self.membership.status == REMOVED else self.membership.add_run_id


def list_members(team_id: str, ctx: Requester, *, status: str | None = ACTIVE) -> list[Member]:
    """The team's members by email; ``status`` None: removed ones too."""
    with session_scope() as session:
        _team(session, team_id, ctx)
        statement = (select(TeamMember, MemberProfile).join(MemberProfile, MemberProfile.id == TeamMember.profile_id)
                     .where(TeamMember.team_id == team_id).order_by(MemberProfile.email))
        if status:
            statement = statement.where(TeamMember.status == status)
        return [Member(membership, profile) for membership, profile in session.execute(statement).tuples()]


def run_conf(action: str, team: Team, profile: MemberProfile, ctx: Requester, *,
             previous: Mapping[str, Any] | None = None, kept: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``team_membership`` run's conf: the member and the team as they are now (the run does not read the
    store), for a ``sync`` the team's groups and channel before the change (``previous``), for a ``remove`` or
    ``sync`` the groups and channels the person keeps through their other teams (``kept``), the organization
    and the request's correlation id."""
    conf: dict[str, Any] = {
        "action": action,
        "member": {"email": profile.email, "display_name": profile.display_name, "title": profile.title,
                   "manager_email": profile.manager_email, "slack_user_id": profile.slack_user_id},
        "team": {"id": team.id, "name": team.name, "identity_groups": team.identity_groups,
                 "slack_channel": team.slack_channel},
        "organization_id": team.organization_id,
        "source": "teams_api",
        "correlation_id": ctx.correlation_id,
    }
    if previous is not None:
        conf["previous"] = dict(previous)
    if kept is not None:
        conf["kept"] = dict(kept)
    return conf


def kept_by_other_teams(session: Session, profile_id: str, team_id: str) -> dict[str, Any]:
    """What the person's other active teams (of the same organization: a profile is per organization) grant:
    ``{"identity_groups": {provider: [group, …]}, "slack_channels": [channel, …]}``. Leaving one team, or a
    team no longer granting something, must not take away what another of their teams still grants."""
    others = session.scalars(
        select(Team).join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.profile_id == profile_id, TeamMember.status == ACTIVE, Team.id != team_id)
        .order_by(Team.id))
    groups: dict[str, list[str]] = {}
    channels: list[str] = []
    for other in others:
        for provider, names in identity_groups(other.identity_groups).items():
            groups[provider] = list(dict.fromkeys([*groups.get(provider, []), *names]))
        channel = channel_name(other.slack_channel)
        if channel and channel not in channels:
            channels.append(channel)
    return {"identity_groups": groups, "slack_channels": sorted(channels)}


def run_id_for(action: str, team_id: str, profile_id: str, at: Any) -> str:
    """One run per change and person: the team, add/remove/sync, the person and when (also readable in the
    Airflow UI). The whole profile id: a team edit starts its runs at one moment, and two members whose ids
    began alike must not name the same run (Airflow would take the second for the first)."""
    return f"team_{action}__{team_id[:8]}__{profile_id}__{at.strftime('%Y%m%dT%H%M%S%f')}"


def add_member(team_id: str, profile: dict[str, Any], ctx: Requester, start_runs: StartRuns) -> tuple[Member, str]:
    """Store the profile (created, or updated with what is given) and the membership, start the ``add`` run and
    record it; all in one transaction, so a run that could not be started leaves nothing stored.

    ``conflict`` when the person is an active member already. A removed member is added again."""
    email = str(profile["email"]).strip().lower()
    with session_scope() as session:
        team = _team(session, team_id, ctx, lock=True)
        found = session.scalars(select(MemberProfile).where(MemberProfile.organization_id == team.organization_id,
                                                            MemberProfile.email == email)).one_or_none()
        if found is None:
            found = MemberProfile(organization_id=team.organization_id, email=email)
            session.add(found)
        for key, value in profile.items():
            if key != "email" and value is not None:  # what is not given stays as it was
                setattr(found, key, value)
        session.flush()
        membership = session.get(TeamMember, (team_id, found.id))
        if membership is not None and membership.status == ACTIVE:
            raise TeamError("conflict", f"{email} is a member of team {team.name!r} already")
        now = utcnow()
        if membership is None:
            membership = TeamMember(team_id=team_id, profile_id=found.id, added_by=ctx.actor)
            session.add(membership)
        membership.status, membership.added_at, membership.added_by = ACTIVE, now, ctx.actor
        membership.removed_at = membership.removed_by = membership.remove_run_id = None
        session.flush()
        [run_id] = start_runs([(run_id_for("add", team_id, found.id, now), run_conf("add", team, found, ctx))])
        membership.add_run_id = run_id
        ctx.audit(session, "team.member_added", "team", team_id, team.organization_id, member=email,
                  dag_id=DAG_ID, dag_run_id=run_id)
        session.flush()
        return Member(membership, found), run_id


def remove_member(team_id: str, member: str, ctx: Requester, start_runs: StartRuns) -> tuple[Member, str]:
    """Mark the membership removed and start the ``remove`` run (one transaction, as :func:`add_member`).
    ``member`` is the member's email or profile id; ``not_found`` when not an active member."""
    with session_scope() as session:
        team = _team(session, team_id, ctx, lock=True)
        key = member.strip().lower()
        row = session.execute(
            select(TeamMember, MemberProfile).join(MemberProfile, MemberProfile.id == TeamMember.profile_id)
            .where(TeamMember.team_id == team_id, TeamMember.status == ACTIVE,
                   (MemberProfile.email == key) | (MemberProfile.id == member))
        ).tuples().one_or_none()
        if row is None:
            raise TeamError("not_found", f"{member!r} is not a member of team {team.name!r}")
        membership, profile = row
        # One membership change of a person at a time: two removals at once (from two teams sharing a group)
        # would each see the other team still active and both keep the group.
        session.execute(select(MemberProfile.id).where(MemberProfile.id == profile.id).with_for_update())
        now = utcnow()
        membership.status, membership.removed_at, membership.removed_by = REMOVED, now, ctx.actor
        session.flush()
        [run_id] = start_runs([(run_id_for("remove", team_id, profile.id, now),
                                run_conf("remove", team, profile, ctx,
                                         kept=kept_by_other_teams(session, profile.id, team_id)))])
        membership.remove_run_id = run_id
        ctx.audit(session, "team.member_removed", "team", team_id, team.organization_id, member=profile.email,
                  dag_id=DAG_ID, dag_run_id=run_id)
        session.flush()
        return Member(membership, profile), run_id


# --- the workflow's side -------------------------------------------------------------------------------------


class InvalidMembershipConf(ValueError):
    """A ``team_membership`` run conf no retry can fix."""


def membership_plan(conf: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``team_membership`` run does, from its conf (checked before any service is called):

    ``{"action", "email", "identity": [{"provider", "action": "add" | "remove", "groups"}, …] (one mapped task
    each), "invite_channel": the channel to invite to or None, "remove_channel": the channel to remove from or
    None}``.

    - ``add``: into every group of the team, invited to its channel;
    - ``remove``: out of every group of the team and out of its channel;
    - ``sync`` (the team's mapping changed; ``previous`` holds the old one): for each provider whose groups
      changed, into the new groups and out of the ones the mapping dropped; when the channel changed, invited
      to the new one and out of the old one.

    A group or channel in ``kept`` (what the person's other teams grant) is never removed.

    Raises :class:`InvalidMembershipConf` listing every problem."""
    problems: list[str] = []
    action = conf.get("action")
    if action not in ACTIONS:
        problems.append(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    member: Mapping[str, Any] = conf["member"] if isinstance(conf.get("member"), Mapping) else {}
    team: Mapping[str, Any] = conf["team"] if isinstance(conf.get("team"), Mapping) else {}
    email = str(member.get("email") or "").strip().lower()
    if not is_email_address(email):
        problems.append(f"member.email must be an e-mail address, got {member.get('email')!r}")
    if not team.get("id"):
        problems.append("team.id is required")
    groups, channel = _mapping(team, "team", problems)
    old_groups: dict[str, list[str]] = {}
    old_channel = None
    if action == "sync":
        previous = conf.get("previous")
        if not isinstance(previous, Mapping) or not {"identity_groups", "slack_channel"} <= previous.keys():
            # also the trigger form's default {}: a sync from an unknown mapping would remove nothing
            problems.append("previous (the team's identity_groups and slack_channel before the change) is "
                            "required to sync")
        else:
            old_groups, old_channel = _mapping(previous, "previous", problems)
    kept_groups, kept_channels = _kept(conf.get("kept"), problems)
    if problems:
        raise InvalidMembershipConf("invalid team_membership conf: " + "; ".join(problems))
    if action == "sync":
        return {"action": action, "email": email,
                "identity": _without_kept(_group_changes(old_groups, groups), kept_groups),
                "invite_channel": channel if channel != old_channel else None,
                "remove_channel": old_channel if old_channel != channel and old_channel not in kept_channels
                else None}
    return {"action": action, "email": email,
            "identity": _without_kept([{"provider": provider, "action": action, "groups": names}
                                       for provider, names in groups.items()], kept_groups),
            "invite_channel": channel if action == "add" else None,
            "remove_channel": channel if action == "remove" and channel not in kept_channels else None}


def _kept(value: Any, problems: list[str]) -> tuple[dict[str, list[str]], set[str]]:
    """The conf's ``kept`` (what the person's other teams grant; absent: nothing)."""
    if value is None:
        return {}, set()
    if not isinstance(value, Mapping):
        problems.append(f"kept must be an object of identity_groups and slack_channels, got {value!r}")
        return {}, set()
    groups: dict[str, list[str]] = {}
    channels: set[str] = set()
    try:
        groups = identity_groups(value.get("identity_groups"))
    except ValueError as exc:
        problems.append(f"kept.identity_groups: {exc}")
    raw = value.get("slack_channels") or []
    if not isinstance(raw, list):
        problems.append(f"kept.slack_channels must be a list of channel names, got {raw!r}")
        return groups, channels
    for item in raw:
        try:
            name = channel_name(item)
        except ValueError as exc:
            problems.append(f"kept.slack_channels: {exc}")
            continue
        if name:
            channels.add(name)
    return groups, channels


def _without_kept(changes: list[dict[str, Any]], kept: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Removals minus the groups another of the person's teams grants (a removal left empty is dropped)."""
    result = []
    for change in changes:
        if change["action"] == "remove":
            change = {**change, "groups": [g for g in change["groups"] if g not in kept.get(change["provider"], [])]}
            if not change["groups"]:
                continue
        result.append(change)
    return result


def _mapping(value: Mapping[str, Any], where: str, problems: list[str]) -> tuple[dict[str, list[str]], str | None]:
    """The groups and the channel of a team mapping in a run conf; their problems added to ``problems``."""
    groups: dict[str, list[str]] = {}
    channel = None
    try:
        groups = identity_groups(value.get("identity_groups"))
    except ValueError as exc:
        problems.append(f"{where}.identity_groups: {exc}")
    try:
        channel = channel_name(value.get("slack_channel"))
    except ValueError as exc:
        problems.append(f"{where}.slack_channel: {exc}")
    return groups, channel


def _group_changes(old: dict[str, list[str]], new: dict[str, list[str]]) -> list[dict[str, Any]]:
    """A sync's group changes: per provider whose groups changed, add the new groups (the operator skips those
    the person has) and remove the groups the mapping dropped."""
    changes: list[dict[str, Any]] = []
    for provider in dict.fromkeys([*new, *old]):
        wanted, before = new.get(provider, []), old.get(provider, [])
        if set(wanted) == set(before):
            continue
        if wanted:
            changes.append({"provider": provider, "action": "add", "groups": wanted})
        dropped = [name for name in before if name not in wanted]
        if dropped:
            changes.append({"provider": provider, "action": "remove", "groups": dropped})
    return changes
