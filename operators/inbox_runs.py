"""Start the runs of events a DAG recorded in the inbox (HR events from Kafka, the Workday reconciliation).

:func:`start_recorded_runs` maps the provider's ``TriggerDagRunOperator`` over the runs a task returned
(``trigger_dag_id``, ``trigger_run_id``, ``conf``, ``note``: include.officeflow.inbound_events.record_event). The run
id is the one derived from the inbox event, so a run that exists already counts as started; the inbox event then
becomes ``triggered``, or ``rejected`` when Airflow refuses the conf. Other failures (the API server away) leave it
``pending`` for the gateway's dispatcher to retry, as a webhook's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from include.officeflow import inbound_events as inbound


def _started(context: Any) -> None:
    """The run exists: its inbox event becomes ``triggered`` (unless the gateway's dispatcher got there first)."""
    from include.officeflow.store.db import task_store_url

    inbound.mark_triggered(context["task"].trigger_run_id, store_url=task_store_url())


def _not_started(context: Any) -> None:
    """Airflow refused the run (its conf does not match the workflow's params: HTTP 400): the inbox event becomes
    ``rejected`` with the reason."""
    from include.officeflow.store.db import task_store_url

    refusal = inbound.refusal(context.get("exception"))
    if refusal is not None:
        inbound.mark_refused(context["task"].trigger_run_id, refusal, store_url=task_store_url())


def start_recorded_runs(runs: Any) -> Any:
    """One ``start_workflow`` task instance per run of ``runs`` (a task's XCom list)."""
    return TriggerDagRunOperator.partial(
        task_id="start_workflow", task_display_name="Start the workflow", skip_when_already_exists=True,
        on_success_callback=_started, on_retry_callback=_not_started, on_failure_callback=_not_started,
        retries=1, retry_delay=timedelta(seconds=10), retry_exponential_backoff=False,
    ).expand_kwargs(runs)
