"""Workflow insights: statistics of the recent runs of every workflow and task, the figures an AI may use to
suggest improvements, the check that each suggestion is grounded in one of them, and the report.

Pure: the run history comes in as the plain dicts :class:`operators.hooks.airflow_api.AirflowApiHook` reads from
Airflow's REST API (``GET /api/v2/dags/~/dagRuns``, ``POST /api/v2/dags/~/dagRuns/~/taskInstances/list``), only
the fields below; nothing here does I/O.

What the REST fields give, and what they do not:

- **runs, successes, failures, failure rate** of a workflow: its runs that finished (``success`` / ``failed``)
  and started in the window; of a task: its task instances that ran to ``success`` or ``failed`` in those runs
  (each mapped instance counts). ``skipped`` and ``upstream_failed`` instances never ran and are left out;
  runs and tasks still going are left out until they finish.
- **retries**: task instances with ``try_number`` > 1 (a cleared and re-run task counts as retried too:
  the API cannot tell the two apart); ``extra_tries`` is the sum of ``try_number - 1``.
- **duration** (p50 / p95 / max): a task instance's ``duration`` (its last try; ``end_date - start_date``
  when absent); a run's ``end_date - start_date``.
- **queue wait**: ``queued_when`` -> ``start_date`` of a task instance's last try (waiting for a worker or a
  pool slot); a run's ``queued_at`` -> ``start_date`` (waiting for ``max_active_runs``).
- **deferred wait** (approvals, deferrable operators, sensors in reschedule mode): such a task keeps the
  ``start_date`` of its first start and is queued again when its trigger fires, so ``queued_when`` comes *after*
  ``start_date``; ``queued_when - start_date`` is then the wait (plus the seconds it ran before deferring), and
  its queue wait before the first start cannot be read any more. The API keeps no per-deferral timestamps, so
  a task that deferred several times shows one wait from its first start to its last resume.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FINISHED = ("success", "failed")
#: At most this many figures go to the model and into the report, the highest impact first.
MAX_FIGURES = 40
#: Impact of one failure, in seconds: someone has to look at it, re-run it, tell people.
FAILURE_COST_SECONDS = 600.0
#: Impact of one retry: the task's retry delay at least (OfficeFlow's default is 30 s, doubling).
RETRY_COST_SECONDS = 60.0
#: Durations and waits shorter than this are not worth a figure.
MIN_SECONDS = 1.0
UNITS = {"failure_rate": "%", "failures": "count", "retries": "count", "duration_p50": "s", "duration_p95": "s",
         "duration_max": "s", "queue_wait_p95": "s", "deferred_wait_p95": "s"}


# --- statistics ----------------------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _seconds(start: Any, end: Any) -> float | None:
    first, last = _time(start), _time(end)
    if first is None or last is None:
        return None
    return (last - first).total_seconds()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between the closest ranks (NumPy's
    default); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"count", "p50", "p95", "max"}`` of seconds, rounded to milliseconds."""
    return {"count": len(values), "p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3) if values else 0.0}


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def compute_stats(runs: Iterable[Mapping[str, Any]], task_instances: Iterable[Mapping[str, Any]], *,
                  period_days: int, since: str, until: str, dag_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Per workflow and per task, over the finished runs in ``runs`` and their task instances.

    ``runs``: ``{dag_id, run_id, state, queued_at, start_date, end_date}``; ``task_instances``: ``{dag_id, run_id,
    task_id, map_index, state, try_number, start_date, end_date, duration, queued_when}`` (ISO 8601 strings).
    ``dag_ids``: the workflows the history was read for (empty: all). Returns a JSON-able dict (an XCom):
    ``{period_days, since, until, dag_ids, runs, workflows: [{dag_id, runs, successes,
    failures, failure_rate, duration, queue_wait, tasks: [{task_id, runs, successes, failures, failure_rate,
    retries, extra_tries, duration, queue_wait, deferred_wait}]}]}``, workflows and tasks sorted by id.
    """
    finished = {(r["dag_id"], r["run_id"]): r for r in runs if r.get("state") in FINISHED and r.get("start_date")}
    tis: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for ti in task_instances:
        if (ti["dag_id"], ti["run_id"]) in finished and ti.get("state") in FINISHED:
            tis[(ti["dag_id"], ti["task_id"])].append(ti)
    by_dag: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for (dag_id, _), run in finished.items():
        by_dag[dag_id].append(run)
    workflows = []
    for dag_id in sorted(by_dag):
        dag_runs = by_dag[dag_id]
        failures = sum(1 for r in dag_runs if r["state"] == "failed")
        durations = [s for r in dag_runs if (s := _seconds(r["start_date"], r.get("end_date"))) is not None]
        waits = [max(s, 0.0) for r in dag_runs if (s := _seconds(r.get("queued_at"), r["start_date"])) is not None]
        tasks = [_task_stats(task_id, tis[(d, task_id)]) for d, task_id in sorted(tis) if d == dag_id]
        workflows.append({"dag_id": dag_id, "runs": len(dag_runs), "successes": len(dag_runs) - failures,
                          "failures": failures, "failure_rate": _rate(failures, len(dag_runs)),
                          "duration": spread(durations), "queue_wait": spread(waits), "tasks": tasks})
    return {"period_days": period_days, "since": since, "until": until, "dag_ids": sorted(dag_ids),
            "runs": len(finished), "workflows": workflows}


def _task_stats(task_id: str, instances: list[Mapping[str, Any]]) -> dict[str, Any]:
    failures = sum(1 for ti in instances if ti["state"] == "failed")
    tries = [int(ti.get("try_number") or 1) for ti in instances]
    durations, queue_waits, deferred_waits = [], [], []
    for ti in instances:
        duration = ti.get("duration")
        duration = float(duration) if duration is not None else _seconds(ti.get("start_date"), ti.get("end_date"))
        if duration is not None:
            durations.append(max(duration, 0.0))
        queued_to_start = _seconds(ti.get("queued_when"), ti.get("start_date"))
        if queued_to_start is None:
            continue
        if queued_to_start >= 0:
            queue_waits.append(queued_to_start)
        else:  # queued again after it started: it deferred (or was rescheduled) and resumed
            deferred_waits.append(-queued_to_start)
    return {"task_id": task_id, "runs": len(instances), "successes": len(instances) - failures,
            "failures": failures, "failure_rate": _rate(failures, len(instances)),
            "retries": sum(1 for t in tries if t > 1), "extra_tries": sum(t - 1 for t in tries if t > 1),
            "duration": spread(durations), "queue_wait": spread(queue_waits), "deferred_wait": spread(deferred_waits)}


# --- figures -------------------------------------------------------------------------------------------------


def _figure(task: str, metric: str, value: float, impact: float) -> dict[str, Any]:
    unit = UNITS[metric]
    shown: float | int = int(value) if unit == "count" else round(float(value), 1)
    return {"task": task, "metric": metric, "value": shown, "unit": unit, "_impact": impact}


def figures(stats: Mapping[str, Any], limit: int = MAX_FIGURES) -> list[dict[str, Any]]:
    """The figures that matter, the highest impact first, at most ``limit``:
    ``[{"task": "<dag_id>.<task_id>", "metric", "value", "unit": "s" | "%" | "count"}]``.

    Per task: ``failure_rate`` and ``failures`` when it failed, ``retries`` when it was retried, ``duration_p50``
    / ``duration_p95`` / ``duration_max``, ``queue_wait_p95`` and ``deferred_wait_p95`` when they reach
    :data:`MIN_SECONDS` (``duration_max`` only when it stands out from p95). Impact is the time at stake over the
    period: a failure counts :data:`FAILURE_COST_SECONDS`, a retry :data:`RETRY_COST_SECONDS`, a duration or wait
    its value times the task's runs. Values are rounded to 0.1 (counts are whole)."""
    found: list[dict[str, Any]] = []
    for workflow in stats.get("workflows", []):
        for task in workflow["tasks"]:
            name, runs = f"{workflow['dag_id']}.{task['task_id']}", task["runs"]
            if task["failures"]:
                impact = task["failures"] * FAILURE_COST_SECONDS
                found.append(_figure(name, "failure_rate", task["failure_rate"], impact))
                found.append(_figure(name, "failures", task["failures"], impact))
            if task["retries"]:
                found.append(_figure(name, "retries", task["retries"], task["extra_tries"] * RETRY_COST_SECONDS))
            duration = task["duration"]
            if duration["count"] and duration["p95"] >= MIN_SECONDS:
                found.append(_figure(name, "duration_p95", duration["p95"], duration["p95"] * runs))
                found.append(_figure(name, "duration_p50", duration["p50"], duration["p50"] * runs))
                if duration["max"] >= 2 * duration["p95"]:
                    found.append(_figure(name, "duration_max", duration["max"], duration["max"]))
            for metric, key in (("queue_wait_p95", "queue_wait"), ("deferred_wait_p95", "deferred_wait")):
                wait = task[key]
                if wait["count"] and wait["p95"] >= MIN_SECONDS:
                    found.append(_figure(name, metric, wait["p95"], wait["p95"] * wait["count"]))
    found.sort(key=lambda f: (-f["_impact"], f["task"], f["metric"]))
    return [{k: v for k, v in f.items() if k != "_impact"} for f in found[:limit]]


# --- the AI's suggestions and their grounding ------------------------------------------------------------------


class Suggestion(BaseModel):
    """One suggestion, naming the figure it rests on."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(max_length=250, description="The figure's task, exactly as given: <dag_id>.<task_id>.")
    metric: str = Field(max_length=40, description="The figure's metric, exactly as given, e.g. failure_rate.")
    value: float = Field(description="The figure's value, exactly as given.")
    suggestion: str = Field(max_length=400, description="What to change, and why this figure says so.")


class InsightSuggestions(BaseModel):
    """The answer of the ``workflow_insights`` prompt: at most five suggestions."""

    model_config = ConfigDict(extra="forbid")

    suggestions: list[Suggestion] = Field(max_length=5)


def _matches(value: float, figure: Mapping[str, Any]) -> bool:
    if figure["unit"] == "count":
        return value == figure["value"]
    return abs(value - float(figure["value"])) <= max(0.5, 0.01 * abs(float(figure["value"])))


def grounded(figures_: Sequence[Mapping[str, Any]], suggestions: Iterable[Suggestion | Mapping[str, Any]]
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(kept, dropped)``: a suggestion is kept only when its task and metric are one of ``figures_`` and its value
    is that figure's (counts exactly; seconds and percentages within 0.5 or 1 %, what rounding explains). Kept
    ones carry the figure's unit and value; dropped ones say why (``reason``)."""
    index = {(f["task"], f["metric"]): f for f in figures_}
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for item in suggestions:
        suggestion = item.model_dump() if isinstance(item, BaseModel) else dict(item)
        figure = index.get((str(suggestion.get("task")), str(suggestion.get("metric"))))
        try:
            value = float(suggestion.get("value"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = math.nan
        if figure is None:
            dropped.append({**suggestion, "reason": "names no figure (task and metric)"})
        elif not _matches(value, figure):
            dropped.append({**suggestion, "reason": f"value {suggestion.get('value')} is not the figure's "
                                                    f"{figure['value']}"})
        else:
            kept.append({**suggestion, "value": figure["value"], "unit": figure["unit"]})
    return kept, dropped


def source_note(ai: Mapping[str, Any] | None, kept: Sequence[Any], dropped: Sequence[Any]) -> str:
    """Where the suggestions come from, or why there are none, from the AI step's result (its XCom:
    ``{"data", "source", "reason", "prompt", "model", ...}``)."""
    ai = ai or {}
    source, reason = ai.get("source"), ai.get("reason")
    if source != "ai":
        why = {"off": "AI is off for this organization", "budget": "the organization's monthly AI budget is spent",
               "error": "the AI service failed"}.get(str(source), "the AI step gave no answer")
        return f"no AI suggestions: {why}" + (f" ({reason})" if reason else "")
    if not kept:
        total = len(dropped)
        return ("no AI suggestions: the model made none" if not total else
                f"no AI suggestions: none of the model's {total} suggestion(s) named a figure with its value")
    note = f"suggestions by {ai.get('model') or 'the model'} ({ai.get('prompt') or 'workflow_insights'})"
    if dropped:
        note += f"; {len(dropped)} more dropped as not grounded in the figures"
    return note


# --- the report ----------------------------------------------------------------------------------------------


def _number(value: float | int, unit: str) -> str:
    if unit == "count":
        return str(int(value))
    return f"{float(value):.1f} {unit}" if unit == "s" else f"{float(value):.1f} %"


def period(stats: Mapping[str, Any]) -> str:
    """``last 30 days (2026-11-01 to 2026-12-01)``, plus ``, workflows a, b`` when only some were read."""
    text = f"last {stats['period_days']} days ({str(stats['since'])[:10]} to {str(stats['until'])[:10]})"
    return text + (f", workflows {', '.join(stats['dag_ids'])}" if stats.get("dag_ids") else "")


def report_markdown(stats: Mapping[str, Any], kept: Sequence[Mapping[str, Any]], source_note: str,
                    figures_: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The report: the workflows' runs, the figures that matter (``figures_``, default :func:`figures`) and the
    kept suggestions, or ``source_note`` (``"no AI suggestions: <reason>"``) when there are none."""
    shown = figures(stats) if figures_ is None else figures_
    lines = [f"*Workflow insights: {period(stats)}*", ""]
    if not stats.get("workflows"):
        lines.append("No workflow run finished in this period.")
    else:
        lines += ["| workflow | runs | failed | failure rate | duration p50 | duration p95 |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {w['dag_id']} | {w['runs']} | {w['failures']} | {_number(w['failure_rate'], '%')} | "
                  f"{_number(w['duration']['p50'], 's')} | {_number(w['duration']['p95'], 's')} |"
                  for w in stats["workflows"]]
    if shown:
        lines += ["", "*Figures that matter*", "", "| task | metric | value |", "|---|---|---|"]
        lines += [f"| {f['task']} | {f['metric']} | {_number(f['value'], f['unit'])} |" for f in shown]
    lines += ["", "*Suggestions*", ""]
    if kept:
        lines += [f"- {s['task']} {s['metric']} = {_number(s['value'], s['unit'])}: {s['suggestion']}" for s in kept]
        lines += ["", f"_{source_note}_"]
    else:
        lines.append(source_note)
    return "\n".join(lines)


def report_variables(stats: Mapping[str, Any], figures_: Sequence[Mapping[str, Any]],
                     kept: Sequence[Mapping[str, Any]], source_note: str) -> dict[str, Any]:
    """The variables of the ``workflow_insights`` document template: the same content as the Markdown."""
    return {
        "period": period(stats),
        "workflows": [{"dag_id": w["dag_id"], "runs": w["runs"], "failures": w["failures"],
                       "failure_rate": _number(w["failure_rate"], "%"), "p50": _number(w["duration"]["p50"], "s"),
                       "p95": _number(w["duration"]["p95"], "s")} for w in stats.get("workflows", [])],
        "figures": [{"task": f["task"], "metric": f["metric"], "value": _number(f["value"], f["unit"])}
                    for f in figures_],
        "suggestions": [{"task": s["task"], "metric": s["metric"], "value": _number(s["value"], s["unit"]),
                         "text": s["suggestion"]} for s in kept],
        "source_note": source_note,
    }
