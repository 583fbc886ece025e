"""The dashboard's data for one caller and period: the store's figures (include/officeflow/dashboard.py) joined
with Airflow's (airflow_history.py), scoped to the caller's organizations and readable workflows.

One JSON document feeds every chart of ``/officeflow/admin/dashboard`` (``GET /officeflow/api/v1/dashboard``);
docs/observability.md ("Dashboard") describes each figure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from include.officeflow import dashboard as figures
from plugins.officeflow_gateway import airflow_history, endpoints
from plugins.officeflow_gateway.auth import Caller

#: Built-in endpoints have no row in ``webhook_endpoints``: their organization (see api/events.py).
BUILTIN_ENDPOINTS = {endpoints.BUILTIN_BAMBOOHR: "default"}


def build(caller: Caller, days: int, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the last ``days`` UTC days (today included) the caller may see."""
    now = now or datetime.now(UTC)
    period = figures.period_days(days, now.date())
    since = figures.period_start(days, now.date())
    organizations = caller.organizations
    dag_ids = airflow_history.readable_dag_ids(caller.user)

    run_rows = airflow_history.runs_per_day(since, dag_ids=dag_ids, organizations=organizations)
    workflows = sorted({dag_id for dag_id, *_ in run_rows})
    by_workflow = {dag_id: figures.daily_series([(day, state, n) for d, day, state, n in run_rows if d == dag_id],
                                                period, figures.RUN_STATES)
                   for dag_id in workflows}
    all_runs = figures.daily_series([(day, state, n) for _, day, state, n in run_rows], period, figures.RUN_STATES)

    events = figures.triggered_events(since, organizations=organizations, builtin=BUILTIN_ENDPOINTS)
    events = [event for event in events if event[0] in dag_ids]
    lead = figures.lead_times(events, airflow_history.run_ends(((d, r) for d, r, _ in events), dag_ids=dag_ids))

    outcomes = figures.daily_series(
        figures.webhook_outcomes(since, organizations=organizations, builtin=BUILTIN_ENDPOINTS),
        period, figures.OUTCOMES)
    email = figures.daily_series(figures.email_rows(period, organizations=organizations), period,
                                 figures.EMAIL_STATUSES)
    waits = figures.approval_waits(airflow_history.approvals(since, dag_ids=dag_ids, organizations=organizations),
                                   now)

    run_totals = figures.totals(all_runs)
    finished = run_totals.get("success", 0) + run_totals.get("failed", 0)
    return {
        "days": days,
        "since": since.isoformat(),
        "generated_at": now.isoformat(),
        "day_labels": [day.isoformat() for day in period],
        "organizations": None if organizations is None else sorted(organizations),
        "runs": {"states": list(all_runs), "all": all_runs, "totals": run_totals,
                 "success_rate": figures.rate(run_totals.get("success", 0), finished),
                 "workflows": [{"dag_id": dag_id, "series": by_workflow[dag_id],
                                "totals": figures.totals(by_workflow[dag_id])} for dag_id in workflows]},
        "lead_time": lead,
        "webhooks": {"outcomes": list(outcomes), "series": outcomes, "totals": figures.totals(outcomes)},
        "approvals": waits,
        "email": {"statuses": list(email), "series": email, **figures.email_summary(email)},
    }
