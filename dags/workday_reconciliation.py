"""# Workday reconciliation

Starts the HR workflows of the hires, terminations and job changes Workday's notifications missed (a failed
integration step, a paused subscription, an endpoint that was down longer than Workday retried). Runs on
`OFFICEFLOW_WORKDAY_RECONCILE_SCHEDULE` (hourly by default) and whenever an admin triggers it (docs/gateway.md,
"Workday reconciliation"):

```text
find_missed_changes  reads the workers report (RaaS, connection OFFICEFLOW_WORKDAY_CONN_ID); each change effective in
                     the last OFFICEFLOW_WORKDAY_RECONCILE_WINDOW_DAYS days that no inbox event knows is recorded
                     (unique per worker, change and date: a second pass records nothing)
start_workflow       one per recorded change: the workflow's run, its id derived from the inbox event
```

Without the Workday connection the first task is skipped: there is nothing to reconcile with.
"""

# Airflow parses only the files of dags/ that mention both "airflow" and "dag" (core.dag_discovery_safe_mode)
# and skips the others without a word: this line makes sure this file is one (tests/unit/dags checks each is).

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from include.officeflow.settings import get_settings
from operators.inbox_runs import start_recorded_runs
from operators.workflow_dag import workflow_dag

log = logging.getLogger(__name__)
settings = get_settings()

with workflow_dag(
    "workday_reconciliation",
    display_name="Workday reconciliation",
    description="Start the HR workflows of the hires, terminations and job changes Workday's notifications missed.",
    owner="it-team",
    doc_md=__doc__,
    tags=["events", "it"],
    params={},
    schedule=settings.workday_reconcile_schedule,
    max_active_runs=1,
    with_run_params=False,
):

    @task(task_display_name="Find the changes the notifications missed")
    def find_missed_changes() -> list[dict[str, Any]]:
        """The runs to start: one per change of the workers report that no inbox event knows."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.officeflow.store.db import task_store_url
        from include.officeflow.workday_reconciliation import reconcile
        from operators.hooks.workday import WorkdayHook

        hook = WorkdayHook(settings.workday_conn_id)
        if not hook.connection_exists():
            raise AirflowSkipException(f"no Workday connection {settings.workday_conn_id!r}: nothing to reconcile "
                                       "(docs/gateway.md, \"Workday reconciliation\")")
        summary = reconcile(hook.get_workers(), store_url=task_store_url())
        log.info("Workday reconciliation: %s", summary.counts())
        return summary.runs

    start_recorded_runs(find_missed_changes())
