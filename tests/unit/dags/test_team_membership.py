"""team_membership: the DAG's shape, and how it reads the conf the teams API gives it (include/officeflow/teams.py).
The steps against the sandbox: tests/integration/plugins/test_teams_api.py; a whole run: tests/e2e/test_teams_e2e.py."""

from __future__ import annotations

import pytest

from include.officeflow.teams import InvalidMembershipConf, channel_name, identity_groups, membership_plan
from tests.harness.environment import REPO_ROOT

CONF = {"action": "add", "organization_id": "acme", "correlation_id": "c-1", "source": "teams_api",
        "member": {"email": "Ada@Example.com", "display_name": "Ada"},
        "team": {"id": "t-1", "name": "Platform", "slack_channel": "team-platform",
                 "identity_groups": {"google": ["eng@example.com"], "okta": ["Engineering"], "microsoft": []}}}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "team_membership.py"))
    assert bag.import_errors == {}
    return bag.dags["team_membership"]


def test_the_dag_checks_first_then_changes_groups_and_channels_in_parallel(dag):
    tasks = dag.task_dict
    assert tasks["plan"].downstream_task_ids == {"group_changes", "identity_groups", "slack_invite", "slack_removal"}
    assert tasks["group_changes"].downstream_task_ids == {"identity_groups"}
    assert tasks["slack_invite"].downstream_task_ids == {"invite_to_channel"}
    assert tasks["slack_removal"].downstream_task_ids == {"remove_from_channel"}
    # The same operators as the HR workflows: identity groups per provider and direction (mapped), Slack's
    # channel invite, and the channel removal.
    assert tasks["identity_groups"].operator_name == "GroupMembershipOperator"
    assert tasks["invite_to_channel"].operator_name == "CreateChannelOperator"
    assert tasks["remove_from_channel"].operator_name == "RemoveFromChannelOperator"
    assert tasks["plan"].retries == 0  # no retry fixes a bad conf
    assert {"action", "member", "team", "previous", "kept", "organization_id", "correlation_id"} <= set(
        dag.params.keys())
    assert dag.params["action"] == "add"
    assert dag.params.get_param("action").schema["enum"] == ["add", "remove", "sync"]
    assert set(dag.access_control) == {"HR Manager"} and dag.owner == "people-team"
    assert not dag.is_paused_upon_creation


def test_joining_adds_to_every_group_and_invites_to_the_channel():
    assert membership_plan(CONF) == {
        "action": "add", "email": "ada@example.com", "invite_channel": "team-platform", "remove_channel": None,
        "identity": [{"provider": "google", "action": "add", "groups": ["eng@example.com"]},
                     {"provider": "okta", "action": "add", "groups": ["Engineering"]}]}


def test_leaving_removes_from_every_group_and_the_channel():
    assert membership_plan({**CONF, "action": "remove"}) == {
        "action": "remove", "email": "ada@example.com", "invite_channel": None, "remove_channel": "team-platform",
        "identity": [{"provider": "google", "action": "remove", "groups": ["eng@example.com"]},
                     {"provider": "okta", "action": "remove", "groups": ["Engineering"]}]}


def sync(team: dict, previous: dict) -> dict:
    return membership_plan({**CONF, "action": "sync", "team": {**CONF["team"], **team}, "previous": previous})


def test_a_sync_moves_groups_per_provider_that_changed_and_the_channel_when_it_changed():
    plan = sync({"identity_groups": {"google": ["eng@example.com", "dev@example.com"], "okta": ["Engineering"],
                                     "microsoft": ["Developers"]}, "slack_channel": "team-core"},
                {"identity_groups": {"google": ["eng@example.com", "old@example.com"], "okta": ["Engineering"],
                                     "microsoft": []}, "slack_channel": "#team-platform"})
    assert plan["action"] == "sync" and plan["email"] == "ada@example.com"
    assert plan["identity"] == [  # okta is unchanged: no task for it
        {"provider": "google", "action": "add", "groups": ["eng@example.com", "dev@example.com"]},
        {"provider": "google", "action": "remove", "groups": ["old@example.com"]},
        {"provider": "microsoft", "action": "add", "groups": ["Developers"]}]
    assert (plan["invite_channel"], plan["remove_channel"]) == ("team-core", "team-platform")


def test_a_sync_that_drops_a_provider_or_the_channel_only_removes():
    plan = sync({"identity_groups": {}, "slack_channel": None},
                {"identity_groups": {"okta": ["Engineering", "Developers"]}, "slack_channel": "team-platform"})
    assert plan["identity"] == [{"provider": "okta", "action": "remove", "groups": ["Engineering", "Developers"]}]
    assert (plan["invite_channel"], plan["remove_channel"]) == (None, "team-platform")
    first_channel = sync({"identity_groups": {"okta": ["Engineering"]}},
                         {"identity_groups": {"okta": ["Engineering"]}, "slack_channel": None})
    assert (first_channel["identity"], first_channel["invite_channel"], first_channel["remove_channel"]) == (
        [], "team-platform", None)


def test_a_sync_needs_the_previous_mapping_and_checks_it():
    for previous in (None, {}, {"identity_groups": {}}):  # {}: the trigger form's default
        with pytest.raises(InvalidMembershipConf, match=r"previous \(the team's identity_groups and slack_channel"):
            membership_plan({**CONF, "action": "sync", "previous": previous})
    with pytest.raises(InvalidMembershipConf) as raised:
        sync({}, {"identity_groups": {"azure": ["x"]}, "slack_channel": "Team Platform"})
    assert "previous.identity_groups: unknown identity provider 'azure'" in str(raised.value)
    assert "previous.slack_channel: invalid Slack channel" in str(raised.value)


KEPT = {"identity_groups": {"google": ["eng@example.com"]}, "slack_channels": ["#team-platform"]}


def test_what_another_team_grants_is_kept_when_leaving():
    plan = membership_plan({**CONF, "action": "remove", "kept": KEPT})
    assert plan["identity"] == [{"provider": "okta", "action": "remove", "groups": ["Engineering"]}]
    assert plan["remove_channel"] is None
    joining = membership_plan({**CONF, "kept": KEPT})  # kept never narrows what joining gives
    assert [c["provider"] for c in joining["identity"]] == ["google", "okta"]
    assert joining["invite_channel"] == "team-platform"


def test_what_another_team_grants_is_kept_when_a_team_stops_granting_it():
    plan = membership_plan({**CONF, "action": "sync", "kept": KEPT,
                            "team": {**CONF["team"], "identity_groups": {"okta": ["Engineering"]},
                                     "slack_channel": "team-core"},
                            "previous": {"identity_groups": {"google": ["eng@example.com", "old@example.com"],
                                                             "okta": ["Engineering"]},
                                         "slack_channel": "team-platform"}})
    assert plan["identity"] == [{"provider": "google", "action": "remove", "groups": ["old@example.com"]}]
    assert (plan["invite_channel"], plan["remove_channel"]) == ("team-core", None)


def test_kept_is_checked():
    with pytest.raises(InvalidMembershipConf) as raised:
        membership_plan({**CONF, "action": "remove",
                         "kept": {"identity_groups": {"azure": ["x"]}, "slack_channels": ["Team X"]}})
    assert "kept.identity_groups: unknown identity provider 'azure'" in str(raised.value)
    assert "kept.slack_channels: invalid Slack channel" in str(raised.value)
    for bad in (["eng"], {"slack_channels": "team-x"}):
        with pytest.raises(InvalidMembershipConf, match="kept"):
            membership_plan({**CONF, "action": "remove", "kept": bad})


def test_a_team_without_groups_or_channel_does_nothing():
    plan = membership_plan({**CONF, "team": {"id": "t-1", "identity_groups": {}, "slack_channel": None}})
    assert plan["identity"] == [] and plan["invite_channel"] is None and plan["remove_channel"] is None


def test_a_bad_conf_lists_every_problem():
    with pytest.raises(InvalidMembershipConf) as raised:
        membership_plan({"action": "join", "member": {"email": "ada"}, "team": {
            "identity_groups": {"google": "eng@example.com", "azure": []}, "slack_channel": "Team Platform"}})
    message = str(raised.value)
    for problem in ("action must be one of add, remove, sync, got 'join'", "member.email must be an e-mail address",
                    "team.id is required", "google: groups must be a list", "team.slack_channel: invalid"):
        assert problem in message, problem
    with pytest.raises(InvalidMembershipConf, match=r"member\.email"):
        membership_plan({})


@pytest.mark.parametrize(("value", "name"), [("#team-x", "team-x"), ("team_x", "team_x"), ("", None), (None, None)])
def test_channel_names(value, name):
    assert channel_name(value) == name


@pytest.mark.parametrize("value", ["#Team", "team x", "x" * 81])
def test_channel_names_slack_refuses(value):
    with pytest.raises(ValueError, match="invalid Slack channel"):
        channel_name(value)


def test_identity_groups_are_unique_per_provider_and_empty_ones_dropped():
    assert identity_groups({"okta": [" A ", "A", "B"], "google": []}) == {"okta": ["A", "B"]}
    with pytest.raises(ValueError, match="unknown identity provider"):
        identity_groups({"azure": ["x"]})
