"""# Team membership

A person joins or leaves a team, or the team's groups or Slack channel change (the teams API starts this run:
`POST`/`DELETE /officeflow/api/v1/teams/{id}/members` and `PATCH /officeflow/api/v1/teams/{id}`):

```text
plan (checks the conf) ──┬─ group_changes ── identity_groups[google add] / [okta remove] / …   into or out of groups
                         ├─ slack_invite ── invite_to_channel                                   the channel to join
                         └─ slack_removal ── remove_from_channel                                the channel to leave
```

- `add`: into the team's groups, invited to its channel (created when it does not exist yet);
- `remove`: out of the team's groups and its channel;
- `sync` (the team was edited; the conf's `previous` is its old mapping): into the new groups and out of the
  ones the mapping dropped, for each provider whose groups changed; invited to the new channel and out of the
  old one when the channel changed.

What the person's other teams still grant (the conf's `kept`) is never removed.

One mapped `identity_groups` task per provider and direction; the account must exist to be added
(`identity_provisioning` or `employee_onboarding` creates it). A person with no account or no Slack account,
or a channel that no longer exists, leaves nothing to remove: those steps succeed. Safe to re-run: memberships
are checked before every change, and someone already out of the channel is left as they are.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from operators.identity import GroupMembershipOperator
from operators.slack import CreateChannelOperator, RemoveFromChannelOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "team_membership",
    display_name="Team membership",
    description="Add a person to a team's identity-provider groups and Slack channel, remove them from both, or "
                "move them to the team's new groups and channel; started by the teams API.",
    owner="people-team",
    doc_md=__doc__,
    tags=["teams", "people"],
    params={
        "action": Param("add", type="string", enum=["add", "remove", "sync"], title="Action",
                        description="add: join the team; remove: leave it; sync: follow a change of the team's "
                                    "groups or channel."),
        "member": Param({}, type="object", title="Member",
                        description='The person: {"email", "display_name", …} (the teams API fills it).'),
        "team": Param({}, type="object", title="Team",
                      description='The team: {"id", "name", "identity_groups": {"google": [...], ...}, '
                                  '"slack_channel"} (the teams API fills it).'),
        "previous": Param({}, type="object", title="Previous mapping",
                          description='sync only: the team\'s {"identity_groups", "slack_channel"} before the '
                                      "change (the teams API fills it)."),
        "kept": Param({}, type="object", title="Kept through other teams",
                      description='remove and sync: {"identity_groups": {...}, "slack_channels": [...]} the '
                                  "person's other teams grant, never taken away (the teams API fills it)."),
    },
) as dag:

    @task(multiple_outputs=True, retries=0)
    def plan(params: dict | None = None) -> dict[str, Any]:
        """What to change, from the run's conf, checked before any provider is called."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.officeflow.teams import InvalidMembershipConf, membership_plan

        try:
            return membership_plan(params or {})
        except InvalidMembershipConf as exc:  # every problem listed; no retry will fix the input
            raise AirflowFailException(str(exc)) from exc

    @task
    def group_changes(identity: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``[{"provider", "action", "groups"}, …]``: one mapped task each (Airflow maps over a task's return)."""
        return identity

    @task(multiple_outputs=True)
    def channel_change(channel: str | None, email: str) -> dict[str, Any]:
        """The channel and the person for the Slack step after it; skips that step when there is no channel."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not channel:
            raise AirflowSkipException("no Slack channel to change")
        return {"channel": channel, "emails": [email]}

    steps = plan()
    GroupMembershipOperator.partial(task_id="identity_groups", login=steps["email"]) \
        .expand_kwargs(group_changes(steps["identity"]))

    invite = channel_change.override(task_id="slack_invite")(steps["invite_channel"], steps["email"])
    CreateChannelOperator(task_id="invite_to_channel", name=invite["channel"], invite_emails=invite["emails"])

    removal = channel_change.override(task_id="slack_removal")(steps["remove_channel"], steps["email"])
    RemoveFromChannelOperator(task_id="remove_from_channel", channel=removal["channel"], emails=removal["emails"])
