"""# Workflow insights

Every Monday at 06:00 UTC, reads how every workflow (or the `workflows` asked for) ran over the last `days`
(default 30), asks the AI for improvements grounded in those numbers only, posts the report to Slack and stores
it as a document:

```text
compute_stats ── suggest ── report ─┬─ store_report   (PDF: reports/workflow_insights/<date>)
                                    └─ post_report    (Slack: OFFICEFLOW_INSIGHTS_SLACK_CHANNEL)
```

- **History**: DAG runs and task instances read through Airflow's REST API (connection `officeflow_airflow_api`,
  a read-only service user): tasks have no metadata-DB access. The task that reads them reduces them to
  statistics at once, so the raw history never becomes an XCom.
- **Statistics** per workflow and task: runs, failures and failure rate, retries, duration p50/p95/max, queue
  wait and deferred (approval) wait; the figures that matter most (at most 40) go to the AI.
- **Suggestions** (prompt `workflow_insights`): each names a task, a metric and its value; one that does not
  match a figure is dropped. AI off, out of budget or failing: the report says "no AI suggestions" and why.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from include.officeflow import workflow_params as fields
from include.officeflow.settings import get_settings
from operators.ai import StructuredOutputOperator
from operators.documents import RenderDocumentOperator
from operators.slack import SlackMessageOperator
from operators.workflow_dag import workflow_dag

settings = get_settings()

with workflow_dag(
    "workflow_insights",
    display_name="Workflow insights",
    description="Weekly statistics of every workflow's runs (failures, retries, durations, waits) with AI "
                "suggestions grounded in them, posted to Slack and stored as a document.",
    owner="it-team",
    doc_md=__doc__,
    tags=["insights", "it"],
    params={"days": fields.days("Period (days)", "How many days of run history the report covers.", default=30,
                                maximum=365),
            "workflows": fields.text_list("Workflows", "DAG ids to report on, one per line; empty: every workflow.")},
    schedule="0 6 * * 1",
    max_active_runs=1,
    with_run_params=False,
):

    @task(multiple_outputs=True)  # suggest reads figures, report reads stats
    def compute_stats(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The runs and task instances that started in the period, read through the REST API, as statistics per
        workflow and task, and the figures that matter most."""
        from datetime import UTC, datetime, timedelta

        from include.officeflow import insights
        from include.officeflow.errors import ServiceError, with_retries
        from operators.base import for_airflow
        from operators.hooks.airflow_api import AirflowApiHook

        days = int((params or {}).get("days") or 30)
        dag_ids = [str(d).strip() for d in (params or {}).get("workflows") or [] if str(d).strip()]
        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(days=days)
        hook = AirflowApiHook()
        try:
            runs = hook.dag_runs(since, dag_ids=dag_ids,
                                 call=lambda page: with_retries(page, describe="Reading DAG runs"))
            tis = hook.task_instances(since, dag_ids=dag_ids,
                                      call=lambda page: with_retries(page, describe="Reading task instances"))
        except ServiceError as exc:
            raise for_airflow(exc, f"Reading the run history failed: {exc}") from exc
        stats = insights.compute_stats(runs, tis, period_days=days, since=since.isoformat(),
                                       until=until.isoformat(), dag_ids=dag_ids)
        return {"stats": stats, "figures": insights.figures(stats)}

    numbers = compute_stats()

    suggest = StructuredOutputOperator(task_id="suggest", prompt="workflow_insights",
                                       variables={"figures": numbers["figures"], "period_days": "{{ params.days }}"})

    @task(multiple_outputs=True)  # the document and the Slack message read their parts
    def report(stats: dict[str, Any], figures: list[dict[str, Any]], ai: dict[str, Any] | None,
               dag_run: Any = None) -> dict[str, Any]:
        """Keep the suggestions grounded in a figure; the report as Markdown and as the document's variables."""
        from include.officeflow import insights

        kept, dropped = insights.grounded(figures, ((ai or {}).get("data") or {}).get("suggestions") or [])
        note = insights.source_note(ai, kept, dropped)
        key = f"reports/workflow_insights/{dag_run.run_after:%Y-%m-%d}"
        return {"markdown": insights.report_markdown(stats, kept, note, figures) + f"\n\nStored as document {key}.",
                "document": insights.report_variables(stats, figures, kept, note), "document_key": key,
                "kept": kept, "dropped": dropped}

    result = report(numbers["stats"], numbers["figures"], suggest.output)

    RenderDocumentOperator(task_id="store_report", template="workflow_insights", variables=result["document"],
                           logical_key=result["document_key"], title="Workflow insights",
                           tags={"kind": "workflow_insights"}, readers=["role:IT Operator", "role:Auditor"])
    SlackMessageOperator(task_id="post_report", text=result["markdown"], channel=settings.insights_slack_channel)
