"""What Airflow's metadata DB tells Prometheus, read at scrape time by the api-server (which has the DB): workflow
runs by organization, workflow and state (so they survive restarts), and the approvals (human-in-the-loop
requests) waiting and their age.

Label values are bounded by what exists: ``workflow_id`` by the DAGs, ``organization_id`` by the store's
organizations (a run's conf naming any other one counts as ``<other>``; no organization: ``""``). The
queries are grouped counts bounded by a statement timeout; the run counts are cached a few seconds per
process, since every worker and replica may be scraped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from include.officeflow.store import session_scope
from include.officeflow.store.models import Organization
from include.officeflow.store_metrics import age_seconds, bound_statements

log = logging.getLogger(__name__)

OTHER_ORGANIZATION = "<other>"
FINISHED = ("success", "failed")
IN_PROGRESS = ("queued", "running")


class KnownOrganizations:
    """The store's organization ids, re-read at most every ``ttl_seconds``; the last answer is kept while the
    store does not answer (so the labels do not flap)."""

    def __init__(self, ttl_seconds: float = 60.0, timeout_seconds: float = 2.0) -> None:
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._ids: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> frozenset[str]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl_seconds:
                try:
                    with session_scope() as session:
                        bound_statements(session, self.timeout_seconds)
                        self._ids = frozenset(session.scalars(select(Organization.id)))
                    self._read_at = time.monotonic()
                except Exception as exc:
                    log.warning("Organizations unavailable for metric labels: %s", exc)
            return self._ids


class AirflowCollector(Collector):
    """Workflow runs and waiting approvals from Airflow's metadata DB."""

    def __init__(self, organizations: Callable[[], frozenset[str]], *, timeout_seconds: float = 2.0,
                 runs_ttl_seconds: float = 10.0) -> None:
        self.organizations = organizations
        self.timeout_seconds = timeout_seconds
        self.runs_ttl_seconds = runs_ttl_seconds
        self._runs: list[Any] = []
        self._runs_read_at = float("-inf")
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("officeflow_airflow_metrics_up", "1 when Airflow's metadata DB answered the scrape.")
        try:
            runs, approvals = self._read()
        except Exception as exc:  # the metadata DB away or too slow: say so, keep serving the other series
            log.warning("Airflow metrics unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._run_families(runs)
        yield from self._approval_families(approvals)

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only (nothing read at registration)

    def _read(self) -> tuple[list[Any], list[Any]]:
        from airflow.models.dagrun import DagRun
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        waiting = (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED, TaskInstanceState.RUNNING)
        with self._lock, create_session() as session:
            bound_statements(session, self.timeout_seconds)
            if time.monotonic() - self._runs_read_at >= self.runs_ttl_seconds:
                organization = DagRun.conf["organization_id"].as_string()
                self._runs = list(session.execute(
                    select(DagRun.dag_id, DagRun.state, organization, func.count())
                    .where(DagRun.state.in_(FINISHED + IN_PROGRESS))
                    .group_by(DagRun.dag_id, DagRun.state, organization)
                ).all())
                self._runs_read_at = time.monotonic()
            approvals = session.execute(
                select(TaskInstance.dag_id, func.count(), func.min(HITLDetail.created_at))
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .where(HITLDetail.responded_at.is_(None), TaskInstance.state.in_(waiting))
                .group_by(TaskInstance.dag_id)
            ).all()
            return self._runs, list(approvals)

    def _run_families(self, runs: list[Any]) -> list[Metric]:
        known = self.organizations()
        labels = ["organization_id", "workflow_id", "status"]
        executions = CounterMetricFamily("officeflow_workflow_executions", "Finished workflow runs (Airflow DAG "
                                         "runs) by organization, workflow and final state.", labels=labels)
        in_progress = GaugeMetricFamily("officeflow_workflow_runs_in_progress", "Workflow runs queued or running, "
                                        "by organization and workflow.", labels=labels)
        totals: dict[tuple[str, str, str], int] = {}
        for dag_id, state, organization_id, count in runs:
            if organization_id is None:
                organization_id = ""
            elif organization_id not in known:
                organization_id = OTHER_ORGANIZATION
            key = (organization_id, dag_id, str(state))
            totals[key] = totals.get(key, 0) + count
        for key, count in sorted(totals.items()):
            (executions if key[2] in FINISHED else in_progress).add_metric(list(key), count)
        return [executions, in_progress]

    @staticmethod
    def _approval_families(approvals: list[Any]) -> list[Metric]:
        waiting = GaugeMetricFamily("officeflow_approvals_waiting", "Approvals (human-in-the-loop requests) "
                                    "waiting for a decision, by workflow.", labels=["workflow_id"])
        oldest = GaugeMetricFamily("officeflow_approvals_oldest_waiting_age_seconds", "Age of the oldest "
                                   "approval waiting for a decision, by workflow.", labels=["workflow_id"])
        now = datetime.now(UTC)
        for dag_id, count, created_at in approvals:
            waiting.add_metric([dag_id], count)
            oldest.add_metric([dag_id], age_seconds(created_at, now))
        return [waiting, oldest]
