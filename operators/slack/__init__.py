"""Slack: Block Kit messages from templates, onboarding channels, approvals and workflow notifications.

Everything goes through :class:`operators.hooks.slack.OfficeFlowSlackHook` (providers-slack's
``SlackHook``: slack_sdk's ``WebClient``, bounded rate-limit retries, Slack errors mapped onto
:mod:`include.officeflow.errors`) and the Airflow connection ``officeflow_slack``.

- :mod:`~operators.slack.messages`: :class:`SlackMessageOperator` (a template or text to a channel, a
  person's DM or a thread);
- :mod:`~operators.slack.channels`: :class:`CreateChannelOperator`, :class:`RemoveFromChannelOperator`,
  :class:`ArchiveChannelOperator`;
- :mod:`~operators.slack.notifier`: :class:`OfficeFlowSlackNotifier`, ``officeflow_failure_notifier``,
  ``officeflow_success_notifier``;
- :mod:`~operators.slack.approvals`: :class:`SlackApprovalOperator` (Airflow's HITL ``ApprovalOperator``
  with Approve/Reject buttons);
- :mod:`~operators.slack.templates`: ``include/templates/slack/<name>.json.j2`` rendered to Block Kit.

Slack's permanent errors (``invalid_auth``, ``channel_not_found``, ``invalid_blocks`` …) fail the task
without Airflow retries (``AirflowFailException``); transient ones (``ratelimited`` with a long
``Retry-After``, ``internal_error``, 5xx) raise ``AirflowException`` so Airflow retries.
"""

from operators.slack.approvals import SlackApprovalOperator
from operators.slack.channels import ArchiveChannelOperator, CreateChannelOperator, RemoveFromChannelOperator
from operators.slack.messages import SlackMessageOperator
from operators.slack.notifier import OfficeFlowSlackNotifier, officeflow_failure_notifier, officeflow_success_notifier

__all__ = ["ArchiveChannelOperator", "CreateChannelOperator", "OfficeFlowSlackNotifier", "RemoveFromChannelOperator",
           "SlackApprovalOperator", "SlackMessageOperator", "officeflow_failure_notifier",
           "officeflow_success_notifier"]
