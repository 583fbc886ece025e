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


def test_the_dag_checks_first_then_changes_groups_and_channel_in_parallel(dag):
    tasks = dag.task_dict
    assert tasks["plan"].downstream_task_ids == {"providers", "identity_groups", "slack_invite"}
    assert tasks["providers"].downstream_task_ids == {"identity_groups"}
    assert tasks["slack_invite"].downstream_task_ids == {"invite_to_channel"}
    # The same operators as the HR workflows: identity groups per provider (mapped), Slack's channel invite.
    assert tasks["identity_groups"].operator_name == "GroupMembershipOperator"
    assert tasks["invite_to_channel"].operator_name == "CreateChannelOperator"
    assert tasks["plan"].retries == 0  # no retry fixes a bad conf
    assert {"action", "member", "team", "organization_id", "correlation_id"} <= set(dag.params.keys())
    assert dag.params["action"] == "add"
    assert set(dag.access_control) == {"HR Manager"} and dag.owner == "people-team"
    assert not dag.is_paused_upon_creation


def test_the_plan_lists_the_providers_with_groups_and_the_channel():
    assert membership_plan(CONF) == {
        "action": "add", "email": "ada@example.com", "slack_channel": "team-platform",
        "identity": [{"provider": "google", "groups": ["eng@example.com"]},
                     {"provider": "okta", "groups": ["Engineering"]}]}


def test_leaving_changes_the_groups_and_leaves_the_channel():
    plan = membership_plan({**CONF, "action": "remove"})
    assert plan["action"] == "remove" and plan["slack_channel"] is None and len(plan["identity"]) == 2


def test_a_team_without_groups_or_channel_does_nothing():
    plan = membership_plan({**CONF, "team": {"id": "t-1", "identity_groups": {}, "slack_channel": None}})
    assert plan["identity"] == [] and plan["slack_channel"] is None


def test_a_bad_conf_lists_every_problem():
    with pytest.raises(InvalidMembershipConf) as raised:
        membership_plan({"action": "join", "member": {"email": "ada"}, "team": {
            "identity_groups": {"google": "eng@example.com", "azure": []}, "slack_channel": "Team Platform"}})
    message = str(raised.value)
    for problem in ("action must be one of add, remove, got 'join'", "member.email must be an e-mail address",
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
