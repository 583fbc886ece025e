"""Approvals in Slack: Airflow's human-in-the-loop :class:`ApprovalOperator` with Approve/Reject buttons.

A click reaches the gateway's ``POST /officeflow/slack/interactions``
(``plugins/officeflow_gateway/slack_interactions.py``), which records it as the HITL response.

The approval's domain events (docs/events.md) are written by the operator, in the task: the request and the
answer live in Airflow's human-in-the-loop table, which the store cannot share a transaction with, and the task
is the one place every request and every answer passes (from Slack, the Airflow UI or the REST API).
``com.officeflow.approval.requested`` once the request is stored in Airflow and before anyone is asked;
``com.officeflow.approval.decided`` when the task resumes with the answer, before the run goes on. An event
that cannot be written fails the task, as any step that cannot write its change to the store does.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.execution_time.hitl import HITLUser

from include.officeflow.errors import InvalidInput, ServiceError
from include.officeflow.events.outbox import add_event_once, stable_event_id
from include.officeflow.events.values import id_or_digest
from include.officeflow.store import get_engine
from include.officeflow.store.db import task_store_url
from include.officeflow.templating import mrkdwn_escape
from operators.base import for_airflow
from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook
from operators.slack.base import PostOnce, check_emails

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

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The answer (or the timeout) arrived: ``approval.decided``, then Airflow's handling of it."""
        approval_event(context, "decided", self._decision(event))
        return super().execute_complete(context=context, event=event)

    def _decision(self, event: dict[str, Any]) -> dict[str, Any]:
        """The decision's event data: ``approved`` / ``rejected`` / ``timed_out`` / ``error``, and who decided by
        id: the Airflow user id, or, for a decision from Slack (where the responder is the approver's e-mail),
        the approver's Slack user id; never a name or an e-mail address."""
        if "error" in event:
            decision = "timed_out" if event.get("error_type") == "timeout" else "error"
            return {"decision": decision, "chosen_options": [], "approver_user_id": None,
                    "approver_slack_user_id": None, "responded_at": None}
        chosen = [str(option) for option in event.get("chosen_options") or []]
        decision = {self.APPROVE: "approved", self.REJECT: "rejected"}.get(chosen[0] if chosen else "", "other")
        responder = str((event.get("responded_by_user") or {}).get("id") or "")
        user_id, slack_id = (responder or None), None
        if responder and not _plain_id(responder):
            user_id = None
            if responder.lower() in {str(e).lower() for e in self.approvers}:
                try:
                    slack_id = self.hook.user_id_by_email(responder)
                except ServiceError as exc:
                    self.log.warning("The approver's Slack id is unknown for the decided event: %s", exc)
        responded_at = event.get("responded_at")
        return {"decision": decision, "chosen_options": chosen, "approver_user_id": user_id,
                "approver_slack_user_id": slack_id,
                "responded_at": responded_at.isoformat() if isinstance(responded_at, datetime) else None}


def _plain_id(value: str) -> bool:
    """True when event data may hold ``value`` (not an e-mail address or a credential)."""
    return id_or_digest(value) == value


def approval_event(context: Context, action: str, details: dict[str, Any]) -> None:
    """Write ``com.officeflow.approval.<action>`` (requested, decided) of the context's task instance to the
    store (the task's store: the ``officeflow_db`` connection). The approval id is the task instance's id (the
    key of its HITL request; a new try asks again under a new id), also the subject; the event id is derived
    from it, so a task that resumes twice with one answer writes one event."""
    ti = context["ti"]
    approval_id = str(ti.id)
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    data = {"approval_id": approval_id, "dag_id": id_or_digest(ti.dag_id), "run_id": id_or_digest(ti.run_id),
            "task_id": id_or_digest(ti.task_id), "map_index": ti.map_index, "try_number": ti.try_number, **details}
    with get_engine(task_store_url()).begin() as conn:
        add_event_once(conn, event_id=stable_event_id("approval", action, approval_id), area="approval",
                       action=action, subject=approval_id, data=data,
                       organization_id=_attribute(conf.get("organization_id")),
                       correlation_id=_attribute(conf.get("correlation_id")))


def _attribute(value: Any) -> str | None:
    """A run conf's ``organization_id`` / ``correlation_id`` as an event attribute: a plain id that fits."""
    return value if isinstance(value, str) and 0 < len(value) <= 64 and _plain_id(value) else None


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
        approval_event(context, "requested", {"approver_slack_user_ids": sorted(ids)})
        blocks = approval_blocks(str(op.subject), str(op.body) if op.body else None, value,
                                 op.generate_link_to_ui(task_instance=ti))
        posted = op.hook.post_once(**PostOnce.arguments(PostOnce.of(context, ti.task_id, "approval_request")),
                                   channel=str(op.channel), text=f"Approval needed: {op.subject}", blocks=blocks)
        op.log.info("approval request posted to %s (ts %s) for %s", posted["channel"], posted["ts"],
                    sorted(ids.values()))
