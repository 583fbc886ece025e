"""Workflow notifications in Slack: :class:`OfficeFlowSlackNotifier` and the notifiers every DAG uses."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

from airflow.providers.slack.notifications.slack import SlackNotifier
from slack_sdk.errors import SlackApiError

from operators.base import for_airflow
from operators.hooks.slack import DEFAULT_CONN_ID, OfficeFlowSlackHook
from operators.slack.templates import render_message

DEFAULT_ALERT_CHANNEL = "#officeflow-alerts"


def airflow_ui_url(dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None,
                   try_number: int | None = None) -> str:
    """The Airflow UI page of a run or task instance (``[api] base_url``, i.e. AIRFLOW__API__BASE_URL)."""
    from airflow.configuration import conf

    base = str(conf.get("api", "base_url", fallback="http://localhost:8080/")).rstrip("/")
    url = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    if task_id:
        url += f"/tasks/{quote(task_id, safe='')}"
        if map_index is not None and map_index >= 0:
            url += f"/mapped/{map_index}"
        if try_number:
            url += f"?try_number={try_number}"
    return url


def workflow_variables(context: Any, status: str) -> dict[str, Any]:
    """What the ``workflow_failed`` template needs, from a task- or DAG-level callback context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run, dag = context.get("dag_run"), context.get("dag")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None)
                 or "unknown")
    run_id = str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id") or "")
    task_id = str(getattr(ti, "task_id", "") or "") if ti is not None else ""
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    exception = context.get("exception")
    if exception is not None and not isinstance(exception, str):
        error = f"{type(exception).__name__}: {exception}"
    else:
        error = str(exception or context.get("reason") or "")
    return {"status": status, "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
            "error": error, "url": airflow_ui_url(dag_id, run_id, task_id, map_index, try_number)}


class OfficeFlowSlackNotifier(SlackNotifier):
    """providers-slack's ``SlackNotifier`` with OfficeFlow's message (the ``workflow_failed`` template):
    workflow, run, task, error and a link to the task instance in the Airflow UI; usable as
    ``on_failure_callback`` / ``on_success_callback``.

    :param status: ``"failed"`` or ``"succeeded"``.
    :param channel: Where to post. Default ``#officeflow-alerts``. (templated)
    :param slack_conn_id: The Slack connection. Default ``officeflow_slack``. (templated)
    :param template: The Slack template (``include/templates/slack/<template>.json.j2``).
    :param kwargs: Everything else ``SlackNotifier`` accepts (``username`` defaults to ``OfficeFlow``).

    Only ``channel`` and ``slack_conn_id`` are Jinja-templated (the message is built in :meth:`notify`,
    so an error text with ``{{`` in it is never rendered as a template). It posts through
    :class:`OfficeFlowSlackHook` (bounded rate-limit retries; a failure raises ``AirflowException``,
    or ``AirflowFailException`` when permanent).

    .. code-block:: python

        DAG(..., on_failure_callback=OfficeFlowSlackNotifier(status="failed", channel="#hr-alerts"))
    """

    template_fields: Sequence[str] = ("channel", "slack_conn_id")

    def __init__(self, *, status: str = "failed", channel: str = DEFAULT_ALERT_CHANNEL,
                 slack_conn_id: str = DEFAULT_CONN_ID, template: str = "workflow_failed", **kwargs: Any) -> None:
        if status not in ("failed", "succeeded"):
            raise ValueError("status must be 'failed' or 'succeeded'")
        kwargs.setdefault("username", "OfficeFlow")
        super().__init__(slack_conn_id=slack_conn_id, channel=channel, **kwargs)
        self.status, self.template = status, template

    @cached_property
    def hook(self) -> OfficeFlowSlackHook:
        return OfficeFlowSlackHook(slack_conn_id=self.slack_conn_id, base_url=self.base_url, timeout=self.timeout,
                                   proxy=self.proxy, retry_handlers=self.retry_handlers)

    def _prepare(self, context: Any) -> None:
        self.text, blocks = render_message(self.template, workflow_variables(context, self.status))
        self.blocks = blocks

    def notify(self, context: Any) -> None:
        self._prepare(context)
        try:
            super().notify(context)
        except SlackApiError as exc:
            error = self.hook.error_for("chat.postMessage", exc)
            raise for_airflow(error, str(error)) from None

    async def async_notify(self, context: Any) -> None:
        self._prepare(context)
        await super().async_notify(context)


#: ``on_failure_callback=officeflow_failure_notifier`` on every OfficeFlow DAG (posts to #officeflow-alerts).
officeflow_failure_notifier = OfficeFlowSlackNotifier(status="failed")
officeflow_success_notifier = OfficeFlowSlackNotifier(status="succeeded")
