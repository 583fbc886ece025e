"""Approvals in Slack: Airflow's human-in-the-loop :class:`ApprovalOperator` with Approve/Reject buttons.

A click reaches the gateway's ``POST /officeflow/slack/interactions``
(``plugins/officeflow_gateway/slack_interactions.py``), which records it as the HITL response.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.execution_time.hitl import HITLUser

from include.officeflow.errors import InvalidInput, ServiceError
from include.officeflow.templating import mrkdwn_escape
from operators.base import for_airflow
from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook
from operators.slack.base import check_emails

if TYPE_CHECKING:
    from airflow.sdk import Context

#: ``action_id`` of the two buttons; the gateway's ``/officeflow/slack/interactions`` maps them to options.
APPROVE_ACTION_ID = "officeflow_approve"
REJECT_ACTION_ID = "officeflow_reject"
MAX_BUTTON_VALUE = 2000  # Slack's limit on a button's ``value``


def approval_blocks(subject: str, body: str | None, value: str, ui_url: str) -> list[dict[str, Any]]:
    """Block Kit of an approval request: subject, details, Approve/Reject buttons (both carrying
    ``value``: which task instance, and who may decide) and a link to the Airflow UI."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": subject[:150]}}]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn_escape(body)[:3000]}})
    blocks.append({"type": "actions", "block_id": "officeflow_approval", "elements": [
        {"type": "button", "action_id": APPROVE_ACTION_ID, "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT_ACTION_ID, "style": "danger", "value": value,
         "text": {"type": "plain_text", "text": "Reject"}}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"Or decide in <{ui_url}|Airflow>."}]})
    return blocks


class SlackApprovalOperator(ApprovalOperator):
    """An :class:`ApprovalOperator` whose request is also posted to Slack with Approve/Reject buttons.

    :param approvers: Slack users' e-mail addresses (resolved with ``users.lookupByEmail`` when the task
        starts waiting); only they can decide from Slack (others get an ephemeral "not allowed"). (templated)
    :param channel: Where the request is posted (id or ``#name``). (templated)
    :param ui_approvers: Airflow user ids that may also decide in the UI. When given, the approvers'
        e-mails and these ids become the HITL ``assigned_users`` (Airflow then refuses anyone else); when
        empty, any Airflow user allowed to respond to the DAG's HITL tasks can decide in the UI.
    :param conn_id: The Slack connection. Default ``officeflow_slack``.
    :param kwargs: ``ApprovalOperator``'s own (``subject``, ``body``, ``response_timeout`` …).

    A click reaches ``POST /officeflow/slack/interactions`` and is recorded as the HITL response, with
    ``responded_by`` = the approver's e-mail; the Airflow UI's "required actions" page works too.

    .. code-block:: python

        SlackApprovalOperator(task_id="approval", subject="Laptop for Ada", channel="#it-approvals",
                              approvers=["grace@example.com"])
    """

    template_fields: Collection[str] = (*ApprovalOperator.template_fields, "approvers", "channel")

    def __init__(self, *, approvers: Sequence[str], channel: str, ui_approvers: Sequence[str] = (),
                 conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        if not approvers:
            raise ValueError("approvers must name at least one Slack user e-mail")
        assigned: list[HITLUser] | None = None
        if ui_approvers:
            assigned = [HITLUser(id=str(e).lower(), name=str(e)) for e in approvers]
            assigned += [HITLUser(id=str(u), name=str(u)) for u in ui_approvers]
        kwargs.setdefault("assigned_users", assigned)
        super().__init__(**kwargs)
        self.approvers, self.channel, self.ui_approvers, self.conn_id = list(approvers), channel, ui_approvers, conn_id

    @cached_property
    def hook(self) -> OfficeFlowSlackHook:
        return OfficeFlowSlackHook(slack_conn_id=self.conn_id)

    def execute(self, context: Context) -> Any:
        self.notifiers = [*self.notifiers, _SlackApprovalRequest(self)]
        return super().execute(context)


class _SlackApprovalRequest(BaseNotifier):
    """Called by :meth:`HITLOperator.execute` once the HITL request is stored: posts the buttons
    (the operator's fields are already rendered)."""

    def __init__(self, operator: SlackApprovalOperator) -> None:
        super().__init__()
        self.operator = operator

    def notify(self, context: Context) -> None:
        try:
            self._post(context)
        except ServiceError as exc:
            raise for_airflow(exc, f"Posting the approval request failed: {exc}") from exc

    def _post(self, context: Context) -> None:
        op, ti = self.operator, context["ti"]
        emails = [str(e) for e in op.approvers]
        check_emails(emails)
        ids = {op.hook.user_id_by_email(email): email.lower() for email in emails}
        value = json.dumps({"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
                            "map_index": ti.map_index, "approvers": ids}, separators=(",", ":"))
        if len(value) > MAX_BUTTON_VALUE:
            raise InvalidInput("too many approvers for one Slack button (value over 2000 characters)")
        blocks = approval_blocks(str(op.subject), str(op.body) if op.body else None, value,
                                 op.generate_link_to_ui(task_instance=ti))
        posted = op.hook.call_method("chat.postMessage", channel=str(op.channel),
                                     text=f"Approval needed: {op.subject}", blocks=blocks)
        op.log.info("approval request posted to %s (ts %s) for %s", posted["channel"], posted["ts"],
                    sorted(ids.values()))
