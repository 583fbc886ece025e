"""Workflow insights (include/officeflow/insights.py): statistics of hand-made run history, the figures, the
grounding of suggestions and the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from include.officeflow import insights

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def run(run_id: str, state: str = "success", *, start: float = 0, end: float = 100, queued: float | None = None,
        dag_id: str = "employee_onboarding") -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, "state": state, "queued_at": at(start if queued is None else queued),
            "start_date": at(start), "end_date": at(end)}


def ti(run_id: str, task_id: str, state: str = "success", *, start: float = 0, duration: float | None = 10,
       queued: float | None = None, tries: int = 1, dag_id: str = "employee_onboarding",
       map_index: int = -1) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index, "state": state,
            "try_number": tries, "start_date": at(start),
            "end_date": at(start + duration) if duration is not None else None, "duration": duration,
            "queued_when": at(start if queued is None else queued)}


def history() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Four finished onboarding runs (one failed), one still running, one document_retention run."""
    runs = [run("r1", end=100, queued=-5), run("r2", end=200, queued=-1), run("r3", end=300),
            run("r4", "failed", end=400), run("r5", "running", end=0),
            run("d1", end=30, dag_id="document_retention")]
    tis = [
        # provision_account: durations 10, 20, 30, 40 s; r4's failed after 3 tries; r2's retried once
        ti("r1", "provision_account", duration=10, queued=-2), ti("r2", "provision_account", duration=20, tries=2),
        ti("r3", "provision_account", duration=30, queued=-4), ti("r4", "provision_account", "failed", duration=40,
                                                                   tries=3),
        # approval: deferred; resumed (queued again) 3600 s and 7200 s after its first start
        ti("r1", "equipment.approval", start=10, duration=3610, queued=3610),
        ti("r2", "equipment.approval", start=10, duration=7210, queued=7210),
        # never ran, or still running, or of an unfinished run: left out
        ti("r4", "summarise", "upstream_failed", duration=None), ti("r3", "summarise", "skipped", duration=0),
        ti("r5", "provision_account", "running", duration=None), ti("r5", "summarise", duration=999),
        ti("d1", "purge_deleted_documents", duration=0.2),
    ]
    return runs, tis


@pytest.fixture
def stats() -> dict[str, Any]:
    runs, tis = history()
    return insights.compute_stats(runs, tis, period_days=30, since=at(-86400), until=at(86400))


def task(stats: dict[str, Any], dag_id: str, task_id: str) -> dict[str, Any]:
    workflow = next(w for w in stats["workflows"] if w["dag_id"] == dag_id)
    return next(t for t in workflow["tasks"] if t["task_id"] == task_id)


def test_per_workflow_runs_failures_durations_and_queue_waits(stats):
    assert [w["dag_id"] for w in stats["workflows"]] == ["document_retention", "employee_onboarding"]
    assert stats["runs"] == 5  # r5 is still running
    onboarding = stats["workflows"][1]
    assert (onboarding["runs"], onboarding["successes"], onboarding["failures"]) == (4, 3, 1)
    assert onboarding["failure_rate"] == 25.0
    assert onboarding["duration"] == {"count": 4, "p50": 250.0, "p95": 385.0, "max": 400.0}
    assert onboarding["queue_wait"] == {"count": 4, "p50": 0.5, "p95": 4.4, "max": 5.0}
    assert [t["task_id"] for t in onboarding["tasks"]] == ["equipment.approval", "provision_account"]


def test_per_task_failures_retries_durations_and_waits(stats):
    provision = task(stats, "employee_onboarding", "provision_account")
    assert (provision["runs"], provision["successes"], provision["failures"], provision["failure_rate"]) == (4, 3, 1,
                                                                                                            25.0)
    assert (provision["retries"], provision["extra_tries"]) == (2, 3)
    assert provision["duration"] == {"count": 4, "p50": 25.0, "p95": 38.5, "max": 40.0}
    assert provision["queue_wait"] == {"count": 4, "p50": 1.0, "p95": 3.7, "max": 4.0}
    assert provision["deferred_wait"]["count"] == 0

    approval = task(stats, "employee_onboarding", "equipment.approval")
    # queued again after its first start: a deferred wait, and no readable queue wait
    assert approval["deferred_wait"] == {"count": 2, "p50": 5400.0, "p95": 7020.0, "max": 7200.0}
    assert approval["queue_wait"]["count"] == 0
    assert approval["duration"]["max"] == 7210.0


def test_a_task_without_duration_takes_end_minus_start_and_no_history_gives_no_workflows():
    item = ti("r1", "t", duration=None)
    item["end_date"], item["duration"] = at(12.5), None
    stats = insights.compute_stats([run("r1")], [item], period_days=7, since=at(0), until=at(1))
    assert stats["workflows"][0]["tasks"][0]["duration"]["p50"] == 12.5
    empty = insights.compute_stats([], [], period_days=7, since=at(0), until=at(1))
    assert (empty["runs"], empty["workflows"]) == (0, [])
    assert insights.figures(empty) == []


def test_percentiles_interpolate_between_ranks():
    assert insights.percentile([], 95) == 0.0
    assert insights.percentile([7.0], 95) == 7.0
    assert insights.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert insights.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_figures_are_flat_meaningful_and_highest_impact_first(stats):
    found = insights.figures(stats)
    approval = "employee_onboarding.equipment.approval"
    assert found[:2] == [{"task": approval, "metric": "duration_p95", "value": 7030.0, "unit": "s"},
                         {"task": approval, "metric": "deferred_wait_p95", "value": 7020.0, "unit": "s"}]
    by_key = {(f["task"], f["metric"]): f for f in found}
    provision = "employee_onboarding.provision_account"
    assert by_key[(provision, "failure_rate")] == {"task": provision, "metric": "failure_rate", "value": 25.0,
                                                  "unit": "%"}
    assert by_key[(provision, "failures")]["value"] == 1 and by_key[(provision, "retries")]["value"] == 2
    assert (by_key[(provision, "duration_p95")]["value"], by_key[(provision, "duration_p50")]["value"]) == (38.5, 25.0)
    assert by_key[(provision, "queue_wait_p95")] == {"task": provision, "metric": "queue_wait_p95", "value": 3.7,
                                                    "unit": "s"}
    # nothing worth a figure: a 0.2 s task, no failures of the approval, max not far above p95
    assert not [f for f in found if f["task"].startswith("document_retention.")]
    assert (provision, "duration_max") not in by_key
    assert ("employee_onboarding.equipment.approval", "failure_rate") not in by_key
    assert all(set(f) == {"task", "metric", "value", "unit"} and f["unit"] in ("s", "%", "count") for f in found)
    assert insights.figures(stats, limit=3) == found[:3]


def test_figures_are_bounded():
    runs = [run(f"r{i}") for i in range(3)]
    tis = [ti(f"r{i}", f"task_{n:02d}", "failed" if i == 0 else "success", duration=5 + n, tries=2)
           for i in range(3) for n in range(30)]
    stats = insights.compute_stats(runs, tis, period_days=30, since=at(0), until=at(1))
    assert len(insights.figures(stats)) == insights.MAX_FIGURES


def suggestion(task: str, metric: str, value: float, text: str = "Add a retry delay.") -> dict[str, Any]:
    return {"task": task, "metric": metric, "value": value, "suggestion": text}


def test_grounding_keeps_a_suggestion_naming_a_figure_with_its_value(stats):
    found = insights.figures(stats)
    provision = "employee_onboarding.provision_account"
    kept, dropped = insights.grounded(found, [
        suggestion(provision, "failure_rate", 25.0),
        suggestion(provision, "duration_p95", 38.6),  # rounding
        insights.Suggestion(task=provision, metric="retries", value=2, suggestion="Back off longer."),
    ])
    assert dropped == []
    assert [(k["metric"], k["value"], k["unit"]) for k in kept] == [("failure_rate", 25.0, "%"),
                                                                     ("duration_p95", 38.5, "s"),
                                                                     ("retries", 2, "count")]


def test_grounding_drops_made_up_tasks_metrics_and_values(stats):
    found = insights.figures(stats)
    provision = "employee_onboarding.provision_account"
    kept, dropped = insights.grounded(found, [
        suggestion("employee_onboarding.send_welcome_email", "failure_rate", 25.0),  # no such figure
        suggestion(provision, "cpu_usage", 25.0),  # no such metric
        suggestion(provision, "failure_rate", 30.0),  # not the figure's value
        suggestion(provision, "retries", 3),  # counts must be exact
        {"task": provision, "metric": "duration_p95", "value": "fast", "suggestion": "x"},  # not a number
    ])
    assert kept == []
    assert [d["reason"] for d in dropped] == [
        "names no figure (task and metric)", "names no figure (task and metric)",
        "value 30.0 is not the figure's 25.0", "value 3 is not the figure's 2", "value fast is not the figure's 38.5"]


def test_the_answer_model_is_strict():
    assert insights.InsightSuggestions.model_json_schema()["additionalProperties"] is False
    with pytest.raises(ValidationError):
        insights.InsightSuggestions(suggestions=[suggestion("a.b", "retries", 1)] * 6)
    with pytest.raises(ValidationError):
        insights.Suggestion(**suggestion("a.b", "retries", 1, "x" * 401))
    with pytest.raises(ValidationError):
        insights.Suggestion(**suggestion("a.b", "retries", 1), extra="no")


@pytest.mark.parametrize(("ai", "kept", "dropped", "note"), [
    ({"source": "off", "reason": None}, [], [], "no AI suggestions: AI is off for this organization"),
    ({"source": "budget", "reason": "12.10 of 10.00 USD"}, [], [],
     "no AI suggestions: the organization's monthly AI budget is spent (12.10 of 10.00 USD)"),
    ({"source": "error", "reason": "429 after 3 retries"}, [], [],
     "no AI suggestions: the AI service failed (429 after 3 retries)"),
    (None, [], [], "no AI suggestions: the AI step gave no answer"),
    ({"source": "ai", "data": {"suggestions": []}}, [], [], "no AI suggestions: the model made none"),
    ({"source": "ai"}, [], [{}, {}], "no AI suggestions: none of the model's 2 suggestion(s) named a figure with "
                                     "its value"),
    ({"source": "ai", "model": "gpt-4o-mini", "prompt": "workflow_insights@1"}, [{}], [{}],
     "suggestions by gpt-4o-mini (workflow_insights@1); 1 more dropped as not grounded in the figures"),
])
def test_the_source_note_says_where_suggestions_come_from_or_why_there_are_none(ai, kept, dropped, note):
    assert insights.source_note(ai, kept, dropped) == note


def test_report_with_suggestions(stats):
    found = insights.figures(stats)
    provision = "employee_onboarding.provision_account"
    kept, _ = insights.grounded(found, [suggestion(provision, "failure_rate", 25, "Check the provider's quota.")])
    text = insights.report_markdown(stats, kept, "suggestions by m (workflow_insights@1)")
    assert text.startswith("*Workflow insights: last 30 days (2026-11-01 to 2026-11-03)*")
    assert "| employee_onboarding | 4 | 1 | 25.0 % | 250.0 s | 385.0 s |" in text
    assert "| employee_onboarding.equipment.approval | deferred_wait_p95 | 7020.0 s |" in text
    assert "- employee_onboarding.provision_account failure_rate = 25.0 %: Check the provider's quota." in text
    assert text.endswith("_suggestions by m (workflow_insights@1)_")
    variables = insights.report_variables(stats, found, kept, "suggestions by m")
    assert variables["suggestions"] == [{"task": provision, "metric": "failure_rate", "value": "25.0 %",
                                         "text": "Check the provider's quota."}]
    assert variables["workflows"][1] == {"dag_id": "employee_onboarding", "runs": 4, "failures": 1,
                                         "failure_rate": "25.0 %", "p50": "250.0 s", "p95": "385.0 s"}
    assert {"task": provision, "metric": "retries", "value": "2"} in variables["figures"]


def test_report_without_suggestions_says_why(stats):
    text = insights.report_markdown(stats, [], "no AI suggestions: AI is off for this organization")
    assert text.endswith("*Suggestions*\n\nno AI suggestions: AI is off for this organization")
    assert "| employee_onboarding.provision_account | failure_rate | 25.0 % |" in text
    empty = insights.compute_stats([], [], period_days=7, since=at(0), until=at(1))
    quiet = insights.report_markdown(empty, [], "no AI suggestions: the model made none")
    assert "No workflow run finished in this period." in quiet and "Figures that matter" not in quiet


def test_a_report_on_some_workflows_names_them():
    some = insights.compute_stats([], [], period_days=7, since="2026-11-01T00:00:00+00:00",
                                  until="2026-11-08T00:00:00+00:00", dag_ids=["offboarding", "employee_onboarding"])
    assert insights.period(some) == "last 7 days (2026-11-01 to 2026-11-08), workflows employee_onboarding, offboarding"
    every = insights.compute_stats([], [], period_days=7, since="2026-11-01T00:00:00+00:00",
                                   until="2026-11-08T00:00:00+00:00")
    assert insights.period(every) == "last 7 days (2026-11-01 to 2026-11-08)" and every["dag_ids"] == []
