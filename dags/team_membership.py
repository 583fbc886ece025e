"""# Team membership

A person joins or leaves a team (the teams API starts this run: `POST`/`DELETE
/officeflow/api/v1/teams/{id}/members`). The team maps to identity-provider groups and a Slack channel:

```text
plan (checks the conf) ──┬─ providers ── identity_groups[google] / [microsoft] / [okta]   into (or out of) the groups
                         └─ slack_invite ── invite_to_channel                               joining: the channel
```

One mapped task per provider the team has groups in; the account must exist (`identity_provisioning` or
`employee_onboarding` creates it). The channel is created when it does not exist yet. Leaving removes the
groups; the Slack channel is left as it is (the Slack operators do not remove members). Safe to re-run:
memberships are checked before every change.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task

from operators.identity import GroupMembershipOperator
from operators.slack import CreateChannelOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "team_membership",
    display_name="Team membership",
    description="Add a person to a team's identity-provider groups and Slack channel, or remove them from the "
                "groups; started by the teams API.",
    owner="people-team",
    doc_md=__doc__,
    tags=["teams", "people"],
    params={
        "action": Param("add", type="string", enum=["add", "remove"], title="Action",
                        description="add: join the team; remove: leave it."),
        "member": Param({}, type="object", title="Member",
                        description='The person: {"email", "display_name", …} (the teams API fills it).'),
        "team": Param({}, type="object", title="Team",
                      description='The team: {"id", "name", "identity_groups": {"google": [...], ...}, '
                                  '"slack_channel"} (the teams API fills it).'),
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
    def providers(identity: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``[{"provider", "groups"}, …]``: one mapped task each (Airflow maps over a task's return value)."""
        return identity

    steps = plan()
    GroupMembershipOperator.partial(task_id="identity_groups", login=steps["email"], action=steps["action"]) \
        .expand_kwargs(providers(steps["identity"]))

    @task(multiple_outputs=True)
    def slack_invite(channel: str | None, email: str) -> dict[str, Any]:
        """The channel to invite to; skips the invite when the team has none or the person leaves."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not channel:
            raise AirflowSkipException("no Slack channel to invite to")
        return {"channel": channel, "emails": [email]}

    invite = slack_invite(steps["slack_channel"], steps["email"])
    CreateChannelOperator(task_id="invite_to_channel", name=invite["channel"], invite_emails=invite["emails"])
