"""Organizations, teams and members (/api/v1/organizations, /api/v1/teams) in-process on the PostgreSQL store and
Airflow DB, with real JWTs per role; and the team_membership workflow's steps (the identity and Slack operators)
against the sandbox with the conf the API gave the run.

Callers: ``admin`` (Admin: every organization), ``hr`` (HR Manager: reads teams, adds and removes members),
``it`` (IT Operator) and ``auditor`` (read only), each a member of acme only. globex is another organization.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import select

from include.officeflow import teams
from include.officeflow.auth import organizations
from include.officeflow.store import AuditLog, session_scope
from include.officeflow.store.models import MemberProfile, Team, TeamMember
from operators.identity import GroupMembershipOperator, ProvisionUserOperator
from operators.slack import CreateChannelOperator, RemoveFromChannelOperator
from plugins.officeflow_gateway.triggering import RunRequest, TriggerError, trigger_runs
from tests.harness.airflow_tools import api_token
from tests.harness.gateway_checks import assert_error, dag_runs
from tests.harness.store import truncate

ORGS, TEAMS = "/api/v1/organizations", "/api/v1/teams"
ACME, GLOBEX = "acme", "globex"
GROUPS = {"google": ["engineering@officeflow.test"], "microsoft": ["Engineering"], "okta": ["Engineering"]}
ADA = {"email": "Ada.Lovelace@officeflow.test", "display_name": "Ada Lovelace", "title": "Software Engineer",
       "manager_email": "grace@officeflow.test", "phone": "+44 20 7946 0000"}


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(username)}"}


@pytest.fixture
def world(client, store_url) -> Iterator[dict[str, Any]]:
    """acme and globex, a team in each; hr, it and auditor members of acme only."""
    truncate(store_url, "team_members", "member_profiles", "teams", "organizations", "user_organizations",
             cascade=True)
    admin = bearer("admin")
    for org in (ACME, GLOBEX):
        assert client.post(ORGS, json={"id": org, "name": org.title()}, headers=admin).status_code == 201
    team = {}
    for org in (ACME, GLOBEX):
        created = client.post(f"{ORGS}/{org}/teams", headers=admin, json={
            "name": "Platform", "identity_groups": GROUPS, "slack_channel": "#team-platform"})
        assert created.status_code == 201, created.text
        team[org] = created.json()["id"]
    for username in ("hr", "it", "auditor"):
        organizations.set_user(username, [ACME], by="test")
    yield team
    truncate(store_url, "user_organizations")


def stored() -> dict[str, list[tuple]]:
    """The teams tables as rows: what a refused call must leave as it was."""
    with session_scope() as session:
        return {
            "teams": sorted((t.id, t.name, str(t.identity_groups), t.slack_channel)
                            for t in session.scalars(select(Team))),
            "profiles": sorted((p.email, p.display_name, p.title) for p in session.scalars(select(MemberProfile))),
            "members": sorted((m.team_id, m.profile_id, m.status, m.add_run_id, m.remove_run_id)
                              for m in session.scalars(select(TeamMember))),
        }


def audited(action: str) -> list[AuditLog]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


# --- organizations --------------------------------------------------------------------------------------------


def test_organizations_are_created_by_platform_admins_and_read_by_their_members(client, world):
    admin, hr = bearer("admin"), bearer("hr")
    listed = client.get(ORGS, headers=hr)
    assert listed.status_code == 200 and [o["id"] for o in listed.json()["organizations"]] == [ACME]
    assert {o["id"] for o in client.get(ORGS, headers=admin).json()["organizations"]} == {ACME, GLOBEX}
    assert client.get(f"{ORGS}/{ACME}", headers=hr).json()["name"] == "Acme"
    assert_error(client.get(f"{ORGS}/{GLOBEX}", headers=hr), 404, "not_found")
    assert_error(client.get(f"{ORGS}/nowhere", headers=admin), 404, "not_found")

    created = client.post(ORGS, headers=bearer("officeflow-admin"), json={
        "id": "initech", "name": "Initech", "domain": "initech.example", "settings": {"time_zone": "Europe/Berlin"}})
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == "user:officeflow-admin" and created.json()["settings"] == {
        "time_zone": "Europe/Berlin"}
    [entry] = audited("organization.created")[-1:]
    assert (entry.organization_id, entry.resource_id, entry.actor) == ("initech", "initech", "user:officeflow-admin")

    before = stored()
    assert_error(client.post(ORGS, headers=admin, json={"id": "initech", "name": "Again"}), 409, "conflict")
    assert_error(client.post(ORGS, headers=admin, json={"id": "Bad Id!", "name": "x"}), 422, "validation_error")
    assert_error(client.post(ORGS, headers=admin, json={"id": "x1", "name": "x", "domain": "not a domain"}), 422,
                 "validation_error")
    assert_error(client.post(ORGS, headers=hr, json={"id": "mine", "name": "Mine"}), 403, "forbidden")
    assert stored() == before
    assert client.get(f"{ORGS}/mine", headers=admin).status_code == 404


def test_organizations_are_changed_by_editors_in_their_organization(client, world, store_url):
    admin = bearer("admin")
    changed = client.patch(f"{ORGS}/{ACME}", headers=admin, json={"domain": "acme.example", "settings": {"a": 1}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["domain"], changed.json()["settings"]) == (
        "Acme", "acme.example", {"a": 1})
    assert_error(client.patch(f"{ORGS}/{ACME}", headers=admin, json={"name": None}), 422, "validation_error")
    assert_error(client.patch(f"{ORGS}/{ACME}", headers=admin, json={"color": "red"}), 422, "validation_error")
    assert_error(client.patch(f"{ORGS}/{ACME}", headers=bearer("hr"), json={"name": "Mine"}), 403, "forbidden")
    assert client.get(f"{ORGS}/{ACME}", headers=admin).json()["name"] == "Acme"
    [entry] = audited("organization.updated")
    assert entry.organization_id == ACME and entry.details["changed"] == ["domain", "settings"]


def test_an_organizations_ai_settings_are_checked_and_its_ai_usage_is_its_own(client, world, store_url):
    from include.officeflow.ai.usage import record
    from include.officeflow.store import get_engine

    truncate(store_url, "ai_usage")
    admin, hr = bearer("admin"), bearer("hr")
    changed = client.patch(f"{ORGS}/{ACME}", headers=admin,
                           json={"settings": {"ai": {"enabled": False, "monthly_budget_usd": 3}}})
    assert changed.status_code == 200 and changed.json()["settings"]["ai"]["monthly_budget_usd"] == 3, changed.text
    for bad in ({"ai": "off"}, {"ai": {"enabled": "no"}}, {"ai": {"monthly_budget_usd": -1}}, {"ai": {"model": "x"}}):
        assert_error(client.patch(f"{ORGS}/{ACME}", headers=admin, json={"settings": bad}), 422, "validation_error")
    assert client.get(f"{ORGS}/{ACME}", headers=admin).json()["settings"]["ai"] == {
        "enabled": False, "monthly_budget_usd": 3}  # nothing refused was stored
    with get_engine(store_url).begin() as conn:
        for org in (ACME, GLOBEX):
            record(conn, organization_id=org, prompt="onboarding_welcome", prompt_version=1, model="gpt-4o-mini",
                   outcome="ok", input_tokens=1000, output_tokens=500, dag_id="employee_onboarding", run_id="r1",
                   task_id="personalise")
    usage = client.get(f"{ORGS}/{ACME}/ai-usage", headers=hr)
    assert usage.status_code == 200, usage.text
    body = usage.json()
    assert (body["calls"], body["input_tokens"], body["output_tokens"], body["cost_usd"]) == (1, 1000, 500, 0.00045)
    assert body["by_workflow"] == [{"dag_id": "employee_onboarding", "calls": 1, "input_tokens": 1000,
                                    "output_tokens": 500, "cost_usd": 0.00045}]
    assert body["budget_usd"] == 3 and body["ai_enabled_now"] is False and "its settings" in body["reason"]
    assert client.get(f"{ORGS}/{ACME}/ai-usage", headers=hr, params={"month": "2020-01"}).json()["calls"] == 0
    assert_error(client.get(f"{ORGS}/{ACME}/ai-usage", headers=hr, params={"month": "12-2026"}), 422, "invalid_month")
    assert_error(client.get(f"{ORGS}/{GLOBEX}/ai-usage", headers=hr), 404, "not_found")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_migration_makes_an_organization_of_every_id_in_use(engine, tmp_path, postgres):
    """Organizations were ids only before 0010: the ones in use (and "default") become rows; down and up again."""
    from sqlalchemy import text

    from include.officeflow.store import get_engine, migrate
    from include.officeflow.store.db import _alembic_config

    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        name = f"teams_migration_{tmp_path.name[-12:].lower().replace('-', '_')}"
        postgres.create_database(name)
        url = postgres.url(name)
    migrate(url, "0009")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO user_organizations (username, organization_id, added_at, added_by) "
                          "VALUES ('hr', 'umbrella', CURRENT_TIMESTAMP, 'test')"))
    migrate(url)
    with get_engine(url).connect() as conn:
        assert set(conn.execute(text("SELECT id FROM organizations")).scalars()) == {"default", "umbrella"}
    from alembic import command

    command.downgrade(_alembic_config(url), "0009")
    with get_engine(url).connect() as conn:
        assert "teams" not in conn.dialect.get_table_names(conn)
    migrate(url)


# --- teams ----------------------------------------------------------------------------------------------------


def test_teams_are_listed_read_and_changed_with_their_permissions(client, world):
    admin, hr = bearer("admin"), bearer("hr")
    listed = client.get(f"{ORGS}/{ACME}/teams", headers=hr)
    assert listed.status_code == 200, listed.text
    [team] = listed.json()["teams"]
    assert team == {**team, "id": world[ACME], "name": "Platform", "identity_groups": GROUPS,
                    "slack_channel": "team-platform", "members": 0, "organization_id": ACME}
    assert client.get(f"{TEAMS}/{world[ACME]}", headers=bearer("auditor")).status_code == 200

    changed = client.patch(f"{TEAMS}/{world[ACME]}", headers=admin, json={
        "identity_groups": {"okta": ["Engineering", "Developers", "Engineering"]}, "slack_channel": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["identity_groups"], changed.json()["slack_channel"]) == (
        {"okta": ["Engineering", "Developers"]}, None)
    assert (changed.json()["dag_id"], changed.json()["runs"]) == ("team_membership", [])  # nobody to move
    [entry] = audited("team.updated")
    assert (entry.organization_id, entry.resource_id, entry.details["synced_members"]) == (ACME, world[ACME], 0)

    before = stored()
    for caller in ("hr", "it", "auditor"):  # read teams, never change what they grant
        assert_error(client.patch(f"{TEAMS}/{world[ACME]}", headers=bearer(caller), json={"name": "x"}), 403,
                     "forbidden")
        assert_error(client.post(f"{ORGS}/{ACME}/teams", headers=bearer(caller), json={"name": "x"}), 403,
                     "forbidden")
        assert_error(client.delete(f"{TEAMS}/{world[ACME]}", headers=bearer(caller)), 403, "forbidden")
    assert_error(client.post(f"{ORGS}/{ACME}/teams", headers=admin, json={"name": "Platform"}), 409, "conflict")
    assert_error(client.post(f"{ORGS}/{ACME}/teams", headers=admin, json={
        "name": "Bad", "identity_groups": {"azure": ["x"]}}), 422, "validation_error")
    assert_error(client.post(f"{ORGS}/{ACME}/teams", headers=admin, json={
        "name": "Bad", "identity_groups": {"google": [""]}}), 422, "validation_error")
    assert "Slack channel" in assert_error(client.post(f"{ORGS}/{ACME}/teams", headers=admin, json={
        "name": "Bad", "slack_channel": "#Not Valid"}), 422, "validation_error")["message"]
    assert_error(client.post(f"{ORGS}/nowhere/teams", headers=admin, json={"name": "x"}), 404, "not_found")
    assert_error(client.patch(f"{TEAMS}/{world[ACME]}", headers=admin, json={"name": None}), 422,
                 "validation_error")
    assert stored() == before


def test_another_organizations_teams_do_not_exist_for_the_caller(client, world):
    hr = bearer("hr")
    before = stored()
    for response in (client.get(f"{TEAMS}/{world[GLOBEX]}", headers=hr),
                     client.get(f"{TEAMS}/{world[GLOBEX]}/members", headers=hr),
                     client.post(f"{TEAMS}/{world[GLOBEX]}/members", headers=hr, json=ADA),
                     client.delete(f"{TEAMS}/{world[GLOBEX]}/members/{ADA['email']}", headers=hr)):
        error = assert_error(response, 404, "not_found")
        assert GLOBEX not in error["message"]  # the answer names no other organization
    assert_error(client.get(f"{ORGS}/{GLOBEX}/teams", headers=hr), 404, "not_found")
    assert stored() == before


# --- members --------------------------------------------------------------------------------------------------


def test_adding_a_member_stores_the_profile_and_starts_the_workflow(client, world):
    hr, team = bearer("hr"), world[ACME]
    added = client.post(f"{TEAMS}/{team}/members", headers={**hr, "X-Correlation-ID": "add-ada-1"}, json=ADA)
    assert added.status_code == 202, added.text
    body = added.json()
    assert body["dag_id"] == "team_membership" and body["action"] == "add" and body["correlationId"] == "add-ada-1"
    member = body["member"]
    assert (member["email"], member["status"], member["added_by"], member["dag_run_id"]) == (
        "ada.lovelace@officeflow.test", "active", "user:hr", body["dag_run_id"])

    [(dag_id, _, conf, run_type)] = dag_runs(body["dag_run_id"])
    assert (dag_id, str(run_type)) == ("team_membership", "manual")
    assert conf["action"] == "add" and conf["organization_id"] == ACME and conf["correlation_id"] == "add-ada-1"
    assert conf["member"]["email"] == "ada.lovelace@officeflow.test" and conf["member"]["title"] == ADA["title"]
    assert conf["team"] == {"id": team, "name": "Platform", "identity_groups": GROUPS, "slack_channel": "team-platform"}

    listed = client.get(f"{TEAMS}/{team}/members", headers=bearer("it")).json()["members"]
    assert [(m["email"], m["display_name"], m["phone"], m["dag_run_id"]) for m in listed] == [
        ("ada.lovelace@officeflow.test", "Ada Lovelace", ADA["phone"], body["dag_run_id"])]
    assert client.get(f"{TEAMS}/{team}", headers=hr).json()["members"] == 1
    [entry] = audited("team.member_added")
    assert (entry.organization_id, entry.actor, entry.correlation_id, entry.details["dag_run_id"]) == (
        ACME, "user:hr", "add-ada-1", body["dag_run_id"])


def test_bad_or_duplicate_members_are_refused_and_nothing_is_lost(client, world):
    hr, team = bearer("hr"), world[ACME]
    first = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA)
    assert first.status_code == 202, first.text
    before = stored()
    error = assert_error(client.post(f"{TEAMS}/{team}/members", headers=hr, json={**ADA, "title": "CTO"}), 409,
                         "conflict")
    assert "ada.lovelace@officeflow.test" in error["message"]
    for bad in ({**ADA, "email": "not-an-address"}, {**ADA, "display_name": ""}, {"email": ADA["email"]},
                {**ADA, "slack_user_id": "nope"}, {**ADA, "phone": "call me"}, {**ADA, "shoe_size": 42}):
        assert_error(client.post(f"{TEAMS}/{team}/members", headers=hr, json=bad), 422, "validation_error")
    for caller in ("it", "auditor"):
        assert_error(client.post(f"{TEAMS}/{team}/members", headers=bearer(caller), json=ADA), 403, "forbidden")
        assert_error(client.delete(f"{TEAMS}/{team}/members/{ADA['email']}", headers=bearer(caller)), 403,
                     "forbidden")
    assert_error(client.post(f"{TEAMS}/no-such-team/members", headers=hr, json=ADA), 404, "not_found")
    assert stored() == before
    assert len(audited("team.member_added")) == 1


def test_a_run_that_cannot_start_leaves_nothing_stored(client, world, monkeypatch):
    before = stored()
    monkeypatch.setattr(teams, "DAG_ID", "team_membership_not_deployed")  # a DAG Airflow does not know
    response = client.post(f"{TEAMS}/{world[ACME]}/members", headers=bearer("hr"), json=ADA)
    error = assert_error(response, 503, "workflow_unavailable")
    assert "nothing was stored" in error["message"] and response.headers["Retry-After"] == "30"
    assert stored() == before and audited("team.member_added") == []


def test_removing_a_member_starts_the_workflow_and_keeps_the_history(client, world):
    hr, team = bearer("hr"), world[ACME]
    added = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA).json()
    assert_error(client.delete(f"{TEAMS}/{team}", headers=bearer("admin")), 409, "team_not_empty")

    removed = client.delete(f"{TEAMS}/{team}/members/ADA.LOVELACE@officeflow.test", headers=hr)
    assert removed.status_code == 202, removed.text
    run_id = removed.json()["dag_run_id"]
    assert run_id != added["dag_run_id"] and removed.json()["member"]["status"] == "removed"
    [(_, _, conf, _)] = dag_runs(run_id)
    assert conf["action"] == "remove" and conf["member"]["email"] == "ada.lovelace@officeflow.test"
    assert client.get(f"{TEAMS}/{team}/members", headers=hr).json()["members"] == []
    [gone] = client.get(f"{TEAMS}/{team}/members", headers=hr, params={"status": "all"}).json()["members"]
    assert (gone["status"], gone["removed_by"], gone["dag_run_id"]) == ("removed", "user:hr", run_id)
    assert_error(client.delete(f"{TEAMS}/{team}/members/{ADA['email']}", headers=hr), 404, "not_found")
    [entry] = audited("team.member_removed")
    assert entry.organization_id == ACME and entry.details["dag_run_id"] == run_id

    again = client.post(f"{TEAMS}/{team}/members", headers=hr, json={**ADA, "title": "Staff Engineer"})
    assert again.status_code == 202, again.text
    assert again.json()["member"]["id"] == added["member"]["id"]  # the same profile, updated
    assert again.json()["member"]["title"] == "Staff Engineer" and again.json()["member"]["removed_at"] is None

    by_id = client.delete(f"{TEAMS}/{team}/members/{added['member']['id']}", headers=hr)
    assert by_id.status_code == 202, by_id.text
    assert client.delete(f"{TEAMS}/{team}", headers=bearer("admin")).status_code == 204
    assert_error(client.get(f"{TEAMS}/{team}", headers=hr), 404, "not_found")
    assert audited("team.deleted")[0].organization_id == ACME


GRACE = {"email": "grace@officeflow.test", "display_name": "Grace Hopper"}
BOB = {"email": "bob@officeflow.test", "display_name": "Bob"}
NEW_MAPPING = {"identity_groups": {"google": ["engineering@officeflow.test", "developers@officeflow.test"],
                                   "okta": ["Developers"]}, "slack_channel": "team-core"}


def test_changing_the_groups_or_channel_starts_a_sync_run_per_active_member(client, world):
    admin, hr, team = bearer("admin"), bearer("hr"), world[ACME]
    for person in (GRACE, ADA, BOB):
        assert client.post(f"{TEAMS}/{team}/members", headers=hr, json=person).status_code == 202
    assert client.delete(f"{TEAMS}/{team}/members/{BOB['email']}", headers=hr).status_code == 202  # left: not moved

    changed = client.patch(f"{TEAMS}/{team}", headers={**admin, "X-Correlation-ID": "edit-1"}, json={
        **NEW_MAPPING, "slack_channel": "#team-core", "description": "the core"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["identity_groups"], body["slack_channel"], body["members"]) == (
        NEW_MAPPING["identity_groups"], "team-core", 2)
    assert (body["dag_id"], body["correlationId"]) == ("team_membership", "edit-1")
    assert [r["member"] for r in body["runs"]] == ["ada.lovelace@officeflow.test", "grace@officeflow.test"]
    for run in body["runs"]:
        assert run["dag_run_id"].startswith("team_sync__")
        [(dag_id, _, conf, _)] = dag_runs(run["dag_run_id"])
        assert dag_id == "team_membership" and conf["action"] == "sync" and conf["member"]["email"] == run["member"]
        assert conf["team"] == {"id": team, "name": "Platform", **NEW_MAPPING}
        assert conf["previous"] == {"identity_groups": GROUPS, "slack_channel": "team-platform"}
        assert (conf["organization_id"], conf["correlation_id"]) == (ACME, "edit-1")
    [updated] = audited("team.updated")
    assert updated.details["synced_members"] == 2 and updated.correlation_id == "edit-1"
    synced = audited("team.member_synced")
    assert [(e.details["member"], e.details["dag_run_id"], e.organization_id) for e in synced] == [
        (r["member"], r["dag_run_id"], ACME) for r in body["runs"]]

    # What the mapping does not change starts nothing: a description, the same groups in another order.
    for change in ({"description": "still the core"}, {"slack_channel": "team-core", "identity_groups": {
            "okta": ["Developers"], "google": ["developers@officeflow.test", "engineering@officeflow.test"]}}):
        unchanged = client.patch(f"{TEAMS}/{team}", headers=admin, json=change)
        assert unchanged.status_code == 200 and unchanged.json()["runs"] == [], unchanged.text
    assert len(audited("team.member_synced")) == 2
    members = client.get(f"{TEAMS}/{team}/members", headers=hr).json()["members"]
    assert all(m["dag_run_id"].startswith("team_add__") for m in members)  # a member's run is their add or removal


def test_an_edit_whose_runs_cannot_start_changes_nothing(client, world, monkeypatch):
    team = world[ACME]
    assert client.post(f"{TEAMS}/{team}/members", headers=bearer("hr"), json=ADA).status_code == 202
    before = stored()
    monkeypatch.setattr(teams, "DAG_ID", "team_membership_not_deployed")  # a DAG Airflow does not know
    response = client.patch(f"{TEAMS}/{team}", headers=bearer("admin"), json=NEW_MAPPING)
    error = assert_error(response, 503, "workflow_unavailable")
    assert "nothing was stored" in error["message"] and response.headers["Retry-After"] == "30"
    assert stored() == before and audited("team.updated") == [] and audited("team.member_synced") == []
    monkeypatch.undo()
    assert client.patch(f"{TEAMS}/{team}", headers=bearer("admin"), json={"name": "Core"}).json()["runs"] == []


def test_runs_start_all_or_none():
    """A team edit starts its runs in one transaction of Airflow's DB: one that Airflow refuses leaves none."""
    conf = {"action": "sync", "member": {"email": "ada@officeflow.test"}, "team": {"id": "t", "name": "T"}}
    first = RunRequest("team_sync__all_or_none_1", conf, "first")
    with pytest.raises(TriggerError) as refused:
        trigger_runs(teams.DAG_ID, [first, RunRequest("team_sync__bad..id", conf)], triggered_by_name="test")
    assert refused.value.permanent and "bad..id" in str(refused.value)
    assert dag_runs(first.run_id) == []  # created before the refusal, rolled back with it
    assert trigger_runs(teams.DAG_ID, [first], triggered_by_name="test") == [first.run_id]
    assert trigger_runs(teams.DAG_ID, [first], triggered_by_name="test") == [first.run_id]  # exists: left as is
    [(_, _, stored_conf, _)] = dag_runs(first.run_id)
    assert stored_conf == conf


def test_the_api_is_in_the_openapi_document(client):
    paths = client.get("/api-docs/openapi.json").json()["paths"]
    assert {"/api/v1/organizations", "/api/v1/organizations/{organization_id}",
            "/api/v1/organizations/{organization_id}/teams", "/api/v1/teams/{team_id}",
            "/api/v1/teams/{team_id}/members", "/api/v1/teams/{team_id}/members/{member}"} <= set(paths)
    assert "202" in paths["/api/v1/teams/{team_id}/members"]["post"]["responses"]


# --- the workflow's steps against the sandbox -------------------------------------------------------------------


def group_members(sandbox, provider: str, group: str) -> set[str]:
    """Logins in a group of the sandbox's directory of ``provider``."""
    state = sandbox.state(provider)
    if provider == "google":
        [gid] = [gid for gid, g in state["groups"].items() if g["email"] == group]
        return {m["email"].lower() for m in state["members"][gid].values()}
    if provider == "microsoft":
        [found] = [g for g in state["groups"].values() if g["displayName"] == group]
        return {state["users"][uid]["userPrincipalName"].lower() for uid in found["members"]}
    [gid] = [gid for gid, g in state["groups"].items() if g["profile"]["name"] == group]
    return {state["users"][uid]["profile"]["login"].lower() for uid in state["memberships"][gid]}


def run_steps(conf: dict[str, Any]) -> dict[str, Any]:
    """The team_membership DAG's steps for ``conf``, as its tasks run them (plan, one mapped task per provider and
    direction, the channel invite and the channel removal when there is a channel to change)."""
    plan = teams.membership_plan(conf)
    results: dict[str, Any] = {}
    for change in plan["identity"]:
        results[(change["provider"], change["action"])] = GroupMembershipOperator(
            task_id="identity_groups", login=plan["email"], **change).execute(context={})
    if plan["invite_channel"]:
        results["invite"] = CreateChannelOperator(task_id="invite_to_channel", name=plan["invite_channel"],
                                                  invite_emails=[plan["email"]]).execute(context={})
    if plan["remove_channel"]:
        results["removal"] = RemoveFromChannelOperator(task_id="remove_from_channel", channel=plan["remove_channel"],
                                                       emails=[plan["email"]]).execute(context={})
    return results


def slack_members(sandbox, channel_name: str) -> set[str]:
    """The e-mail addresses of the members of a channel of the sandbox's Slack."""
    slack = sandbox.state("slack")
    [channel] = [c for c in slack["channels"].values() if c.get("name") == channel_name]
    return {slack["users"][uid]["profile"].get("email") for uid in channel["members"]} - {None}


def provision(sandbox, login: str, first_name: str) -> None:
    """An account in the three providers (as onboarding makes it, in Sales) and in Slack."""
    for provider in ("google", "microsoft", "okta"):
        ProvisionUserOperator(task_id="provision", provider=provider, password_delivery="none", person={
            "first_name": first_name, "last_name": "Lovelace", "email": login, "department": "Sales"}
        ).execute(context={})
    sandbox.client.post("/slack/_sandbox/users", json={"email": login, "real_name": first_name}).raise_for_status()


def test_the_workflow_puts_the_member_into_the_teams_groups_and_channel_and_out_again(client, world, sandbox):
    login = "ada.lovelace@officeflow.test"
    provision(sandbox, login, "Ada")
    hr, team = bearer("hr"), world[ACME]
    added = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA).json()
    [(_, _, conf, _)] = dag_runs(added["dag_run_id"])
    results = run_steps(conf)
    for provider, [group] in GROUPS.items():
        assert login in group_members(sandbox, provider, group), provider
        assert results[(provider, "add")]["added"] == [group]
    assert results["invite"]["invited"] == [login] and "removal" not in results
    assert login in slack_members(sandbox, "team-platform")

    assert all(r.get("added", []) == [] for r in run_steps(conf).values() if "added" in r)  # a retry: no change

    removed = client.delete(f"{TEAMS}/{team}/members/{login}", headers=hr).json()
    [(_, _, conf, _)] = dag_runs(removed["dag_run_id"])
    results = run_steps(conf)
    for provider, [group] in GROUPS.items():
        assert login not in group_members(sandbox, provider, group), provider
        assert results[(provider, "remove")]["removed"] == [group]
    assert results["removal"]["removed"] == [login] and "invite" not in results
    assert login not in slack_members(sandbox, "team-platform")
    assert login in group_members(sandbox, "okta", "Sales")  # groups the team does not grant stay

    again = run_steps(conf)  # a retry after a lost answer: nothing left to remove, and no failure
    assert again["removal"]["not_members"] == [login] and again[("okta", "remove")]["removed"] == []


def test_a_sync_moves_the_member_to_the_new_groups_and_channel(client, world, sandbox):
    login = "ada.lovelace@officeflow.test"
    provision(sandbox, login, "Ada")
    hr, team = bearer("hr"), world[ACME]
    added = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA).json()
    run_steps(dag_runs(added["dag_run_id"])[0][2])

    changed = client.patch(f"{TEAMS}/{team}", headers=bearer("admin"), json=NEW_MAPPING).json()
    [run] = changed["runs"]
    [(_, _, conf, _)] = dag_runs(run["dag_run_id"])
    results = run_steps(conf)
    assert results[("google", "add")]["added"] == ["developers@officeflow.test"]  # engineering@: had it
    assert results[("microsoft", "remove")]["removed"] == ["Engineering"]
    assert (results[("okta", "add")]["added"], results[("okta", "remove")]["removed"]) == (
        ["Developers"], ["Engineering"])
    assert login in group_members(sandbox, "google", "engineering@officeflow.test")
    assert login in group_members(sandbox, "google", "developers@officeflow.test")
    assert login not in group_members(sandbox, "microsoft", "Engineering")
    assert login in group_members(sandbox, "okta", "Developers")
    assert login not in group_members(sandbox, "okta", "Engineering")
    assert login in slack_members(sandbox, "team-core") and login not in slack_members(sandbox, "team-platform")

    retried = run_steps(conf)  # a retry: nothing changes twice
    assert all(not r.get("added") and not r.get("removed") for r in retried.values())
    assert retried["invite"]["already_members"] == [login] and retried["removal"]["not_members"] == [login]

    groups_only = client.patch(f"{TEAMS}/{team}", headers=bearer("admin"), json={
        "identity_groups": {"okta": ["Developers"]}}).json()
    [(_, _, conf, _)] = dag_runs(groups_only["runs"][0]["dag_run_id"])
    assert set(run_steps(conf)) == {("google", "remove")}  # okta unchanged, the channel unchanged
    assert login not in group_members(sandbox, "google", "developers@officeflow.test")


def test_leaving_one_team_keeps_what_another_of_the_persons_teams_grants(client, world, sandbox):
    """Ada is in Platform and in Core; Core grants Google's engineering@ and #team-platform too. Leaving Platform
    takes her out of the rest only; when Core then stops granting the channel, she leaves it."""
    login = "ada.lovelace@officeflow.test"
    provision(sandbox, login, "Ada")
    admin, hr, platform = bearer("admin"), bearer("hr"), world[ACME]
    core = client.post(f"{ORGS}/{ACME}/teams", headers=admin, json={
        "name": "Core", "identity_groups": {"google": ["engineering@officeflow.test"]},
        "slack_channel": "team-platform"}).json()["id"]
    for team in (platform, core):
        added = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA).json()
        run_steps(dag_runs(added["dag_run_id"])[0][2])

    removed = client.delete(f"{TEAMS}/{platform}/members/{login}", headers=hr).json()
    [(_, _, conf, _)] = dag_runs(removed["dag_run_id"])
    assert conf["kept"] == {"identity_groups": {"google": ["engineering@officeflow.test"]},
                            "slack_channels": ["team-platform"]}
    results = run_steps(conf)
    assert set(results) == {("microsoft", "remove"), ("okta", "remove")}  # nothing asked of Google or Slack
    assert login in group_members(sandbox, "google", "engineering@officeflow.test")
    assert login in slack_members(sandbox, "team-platform")
    assert login not in group_members(sandbox, "okta", "Engineering")

    moved = client.patch(f"{TEAMS}/{core}", headers=admin, json={"slack_channel": "team-core"}).json()
    [(_, _, conf, _)] = dag_runs(moved["runs"][0]["dag_run_id"])
    assert conf["kept"] == {"identity_groups": {}, "slack_channels": []}  # Platform is no longer hers
    run_steps(conf)
    assert login in slack_members(sandbox, "team-core") and login not in slack_members(sandbox, "team-platform")


def test_leaving_without_a_slack_account_or_a_channel_succeeds(client, world, sandbox):
    """Nothing to remove is what a person leaving expects: no Slack account, or a channel that is gone."""
    hr, team = bearer("hr"), world[ACME]
    added = client.post(f"{TEAMS}/{team}/members", headers=hr, json=ADA).json()  # never given accounts
    removed = client.delete(f"{TEAMS}/{team}/members/{added['member']['id']}", headers=hr).json()
    [(_, _, conf, _)] = dag_runs(removed["dag_run_id"])
    results = run_steps(conf)
    assert results["removal"]["channel_id"] is None  # #team-platform was never created
    assert all(results[(p, "remove")]["account_id"] is None for p in GROUPS)

    sandbox.client.post("/slack/_sandbox/users", json={"email": "someone@officeflow.test"}).raise_for_status()
    CreateChannelOperator(task_id="c", name="team-platform", invite_emails=["someone@officeflow.test"]).execute({})
    assert run_steps(conf)["removal"]["no_slack_account"] == ["ada.lovelace@officeflow.test"]
    assert [r for r in sandbox.requests("slack") if r["path"] == "/api/conversations.kick"] == []


def test_the_workflow_refuses_what_it_cannot_do(sandbox):
    conf = {"action": "add", "member": {"email": "nobody@officeflow.test"},
            "team": {"id": "t1", "identity_groups": {"okta": ["Engineering"]}, "slack_channel": None}}
    with pytest.raises(AirflowFailException, match=r"no account for nobody@officeflow\.test"):
        run_steps(conf)
    assert run_steps({**conf, "action": "remove"})[("okta", "remove")]["account_id"] is None  # nothing to remove
    with pytest.raises(AirflowFailException, match=r"no account for nobody@officeflow\.test"):
        run_steps({**conf, "action": "sync", "previous": {"identity_groups": {}, "slack_channel": None}})
    with pytest.raises(teams.InvalidMembershipConf) as problems:
        teams.membership_plan({"action": "join", "member": {"email": "x"},
                               "team": {"identity_groups": {"azure": ["x"]}, "slack_channel": "#No"}})
    for problem in ("action must be one of add, remove, sync", "member.email", "team.id is required",
                    "unknown identity provider 'azure'", "team.slack_channel"):
        assert problem in str(problems.value)
    with pytest.raises(teams.InvalidMembershipConf, match=r"previous \(the team's identity_groups and slack"):
        teams.membership_plan({**conf, "action": "sync"})
    okta_calls = [r for r in sandbox.requests("okta") if "/groups" in r["path"] and r["method"] == "PUT"]
    assert okta_calls == []
